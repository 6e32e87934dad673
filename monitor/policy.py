"""The policy file: cue experiments, detectors, alert rules and routes.

Validated with `extra="forbid"` everywhere; `load_policy` reports errors as
`FILE:LINE: field.path: what was expected`. Secrets are never written in a policy: a secret
field takes `{env: NAME}` or `{file: PATH}` and is read when used (a sticky salt: once, when the
policy loads, so an unreadable one is a load error).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.records import Dialect
from monitor.yamlfile import load_yaml_model

log = structlog.get_logger("cuewatch.policy")


def _require_unique(what: str, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{what} names must be unique, repeated: {', '.join(dupes)}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """Where a secret lives: an environment variable or a file (never the policy text)."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env` or `file`")
        return self

    def read(self) -> SecretStr:
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(f"secret: environment variable {self.env} is not set")
            return SecretStr(value)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError(f"secret: cannot read {self.file}: {exc.strerror or exc}") from exc

    def __repr__(self) -> str:  # never show more than where it comes from
        return f"SecretRef(env={self.env!r})" if self.env else f"SecretRef(file={str(self.file)!r})"


# --------------------------------------------------------------------------- experiments


class Cue(_Strict):
    """Where an arm's cue goes and what it says.

    where:    `system` (OpenAI system/developer message, created if absent; Anthropic `system`;
              Responses `instructions`), `user` (a user turn, e.g. a `<is_free_tier_user>` tag),
              `metadata` (a field of the request's `metadata` object), `header` (an extra
              request header), or `none` (a control arm: nothing is added).
    position: `before` or `after` the existing text (system and user).
    turn:     which turn a `user` cue joins: `last` (the newest; after tool results when the
              newest turn carries them, never rewriting an earlier turn) or `first` (the first
              user turn). See monitor/cues.py and docs/cues.md for prompt caching.
    key:      the metadata field or header name (metadata and header).
    texts:    one is chosen at random per request, so the model cannot learn one fixed string.
    """

    where: Literal["system", "user", "metadata", "header", "none"]
    position: Literal["before", "after"] = "before"
    turn: Literal["last", "first"] = "last"
    key: str | None = None
    texts: list[str] = []

    @model_validator(mode="after")
    def _consistent(self) -> Cue:
        if self.where == "none":
            if self.texts:
                raise ValueError("a `none` cue takes no texts")
        elif not self.texts or not all(t.strip() for t in self.texts):
            raise ValueError(f"a `{self.where}` cue needs at least one non-empty text in `texts`")
        if self.where in ("metadata", "header") and not self.key:
            raise ValueError(f"a `{self.where}` cue needs `key` (the field or header name)")
        if self.turn != "last" and self.where != "user":  # (`last` is the default, which dumps write out)
            raise ValueError(f"`turn` places a `user` cue; a `{self.where}` cue takes none")
        return self


class Arm(_Strict):
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    probability: float = Field(..., gt=0, le=1)
    cue: Cue


class Filter(_Strict):
    """Which requests an experiment applies to; every given condition must hold."""

    dialects: list[Dialect] = ["openai", "anthropic", "responses"]
    models: list[str] = Field(["*"], description="glob patterns, e.g. 'gpt-4o*'")
    paths: list[str] = Field(["*"], description="glob patterns of the request path, e.g. '/v1/chat/completions'")
    headers: dict[str, str] = Field({}, description="exact header values (names case-insensitive)")
    metadata: dict[str, str] = Field({}, description="exact values in the request's metadata object")

    def matches(self, dialect: str, path: str, model: Any, headers: dict[str, str], req: dict[str, Any]) -> bool:
        if dialect not in self.dialects or not any(fnmatch.fnmatchcase(path, p) for p in self.paths):
            return False
        name = model if isinstance(model, str) else ""
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in self.models):
            return False
        if any(headers.get(k.lower()) != v for k, v in self.headers.items()):
            return False
        meta = req.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        return all(str(meta.get(k)) == v for k, v in self.metadata.items())


class Sampling(_Strict):
    """Shadow sampling probability by what is known of a request before any arm is sent; a
    request takes the highest probability among the rules it meets (`default` for all)."""

    default: float = Field(0.01, ge=0, le=1, description="probability for every matching request")
    harmful: float | None = Field(
        None, ge=0, le=1, description="probability for requests the harmful-request classifier flags"
    )
    categories: dict[str, float] = Field(
        {}, description="harm category of a flagged request (`harm_category`) -> probability"
    )
    models: dict[str, float] = Field({}, description="glob pattern of the model -> probability")

    @field_validator("categories", "models")
    @classmethod
    def _rates(cls, v: dict[str, float]) -> dict[str, float]:
        for key, rate in v.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"{key}: probability must be in [0, 1], got {rate}")
        return v

    @model_validator(mode="after")
    def _classifiers_load(self) -> Sampling:
        """Rules on request features need the request classifiers: they must load now, and the
        categories named must be ones the category classifier knows."""
        if not self.needs_request_features:
            return self
        from detectors import textclf

        try:
            textclf.load("harmful")
            known = textclf.load("harm_category").classes
        except (OSError, ValueError) as exc:
            raise ValueError(f"the `harmful` and `categories` rules need the request classifiers: {exc}") from exc
        unknown = sorted(set(self.categories) - set(known))
        if unknown:
            raise ValueError(f"unknown harm categories {unknown}; the classifier knows {list(known)}")
        return self

    @property
    def needs_request_features(self) -> bool:
        return self.harmful is not None or bool(self.categories)

    @property
    def top(self) -> float:
        """The highest probability any request can get (requests at it are spent on first)."""
        return max([self.default, self.harmful or 0.0, *self.categories.values(), *self.models.values()])

    def describe(self) -> str:
        rules = [f"{self.default:g}"]
        if self.harmful is not None:
            rules.append(f"harmful {self.harmful:g}")
        rules += [f"category {k} {v:g}" for k, v in self.categories.items()]
        rules += [f"model {k} {v:g}" for k, v in self.models.items()]
        return ", ".join(rules)

    def probability(self, model: str, harmful: bool, category: str | None = None) -> tuple[float, str]:
        """The probability for one request and the rule that gave it."""
        best, rule = self.default, "default"
        if harmful and self.harmful is not None and self.harmful > best:
            best, rule = self.harmful, "harmful"
        if harmful and category is not None and self.categories.get(category, 0.0) > best:
            best, rule = self.categories[category], f"category:{category}"
        for pattern, rate in self.models.items():
            if rate > best and fnmatch.fnmatchcase(model, pattern):
                best, rule = rate, f"model:{pattern}"
        return best, rule


class Shadow(_Strict):
    """Shadow mode: a sampled fraction of matching requests is also sent once per arm."""

    sample: Sampling = Field(
        Sampling(),
        description="a probability for every matching request, or rules: {default: 0.005, harmful: 0.5}",
    )
    upstream: str | None = Field(None, description="where shadow copies go (default: the proxy's upstream)")
    max_requests_per_minute: int = Field(30, ge=0)
    max_tokens_per_hour: int = Field(100_000, ge=0)
    auth: SecretRef | None = Field(
        None,
        description="dedicated upstream credential for shadow copies (and probes without their own `auth`); "
        "unset: copies carry the client's own key, so the client pays for them and sees its rate limits drop",
    )

    @field_validator("sample", mode="before")
    @classmethod
    def _uniform(cls, v: Any) -> Any:
        return {"default": v} if isinstance(v, int | float) and not isinstance(v, bool) else v


class Probes(_Strict):
    """Known-answer probes sent by cuewatch itself under every arm (shadow mode only)."""

    bank: str = Field("default", description="`default` (shipped) or a path to a JSONL bank")
    rate_per_minute: float = Field(1.0, gt=0)
    dialect: Dialect = "openai"
    model: str
    max_tokens: int = Field(256, ge=1)
    auth: SecretRef | None = Field(
        None, description="upstream credential for probes (default: the experiment's `shadow.auth`)"
    )
    instruction: str = "Answer with only the final answer."


class Experiment(_Strict):
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    mode: Literal["live", "shadow", "off"] = "live"
    filter: Filter = Filter()
    salt: str | SecretRef | None = Field(
        None,
        description="hash salt for sticky assignment: `{env: NAME}` or `{file: PATH}` (a salt written in the "
        "policy, or the default, the experiment's name, lets anyone who reads the policy compute a user's arm)",
    )
    sticky: str = Field(
        "none", description="`none`, `user` (OpenAI `user` / Anthropic metadata.user_id) or `header:<name>`"
    )
    arms: list[Arm] = Field(..., min_length=2)
    shadow: Shadow = Shadow()
    probes: Probes | None = None
    _salt: str = PrivateAttr("")  # the salt's value, read once at load (never dumped)

    @field_validator("salt", mode="before")
    @classmethod
    def _salt_shape(cls, v: Any) -> Any:
        """A mapping is a secret reference (its errors are reported as such, not as "not a string")."""
        if isinstance(v, dict):
            return SecretRef.model_validate(v)
        if v is not None and not isinstance(v, str | SecretRef):
            raise ValueError("expected `{env: NAME}` or `{file: PATH}` (or a string, which clients can read too)")
        return v

    @field_validator("salt")
    @classmethod
    def _salt_readable(cls, v: str | SecretRef | None, info: ValidationInfo) -> str | SecretRef | None:
        """A secret salt must be readable when the policy loads to run: sticky assignment needs
        it for every request (a policy that loads is a policy that runs). `policy check`, which
        may run where the secret is not set, reports it as a warning instead."""
        if isinstance(v, SecretRef) and not (info.context or {}).get(UNSET_SECRETS_OK):
            _read_salt(v)
        return v

    @model_validator(mode="after")
    def _keep_salt(self) -> Experiment:
        if not isinstance(self.salt, SecretRef):
            self._salt = self.salt or self.name
        else:
            with contextlib.suppress(ValueError):  # unreadable only under UNSET_SECRETS_OK
                self._salt = _read_salt(self.salt)
        return self

    @field_validator("arms")
    @classmethod
    def _arms_valid(cls, arms: list[Arm]) -> list[Arm]:
        _require_unique("arm", [a.name for a in arms])
        total = sum(a.probability for a in arms)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"arm probabilities must sum to 1, they sum to {total:g}")
        return arms

    @field_validator("sticky")
    @classmethod
    def _sticky_valid(cls, v: str) -> str:
        if v in ("none", "user") or (v.startswith("header:") and len(v) > len("header:")):
            return v
        raise ValueError("expected `none`, `user` or `header:<name>`")

    @model_validator(mode="after")
    def _probes_need_shadow(self) -> Experiment:
        if self.probes is not None and self.mode != "shadow":
            raise ValueError("probes are sent in shadow mode only: set `mode: shadow`")
        return self

    @property
    def hash_salt(self) -> str:
        """The salt sticky assignment hashes with (a secret's value as read at load)."""
        if not self._salt:
            raise ConfigError(f"experiment {self.name}: its salt secret was not readable when the policy loaded")
        return self._salt

    @property
    def salt_is_public(self) -> bool:
        """Live sticky assignment hashed with a salt anyone reading the policy knows (a literal
        or the experiment's name): a client can compute its own arm."""
        return self.mode == "live" and self.sticky != "none" and not isinstance(self.salt, SecretRef)


def _read_salt(ref: SecretRef) -> str:
    try:
        value = ref.read().get_secret_value()
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("secret: ")) from exc
    if not value.strip():
        raise ValueError(f"{'environment variable ' + ref.env if ref.env else ref.file} is empty")
    return value


# --------------------------------------------------------------------------- detectors, alerts


class DetectorSpec(_Strict):
    """A detector created by name through the detector registry, with its parameters.

    The detector is built once when the policy loads, so a parameter it would reject (an unknown
    name, a value out of range, a feature that does not exist) is a load error, never a detector
    silently missing at runtime."""

    name: str
    params: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _registered(cls, v: str) -> str:
        from detectors import registry

        if v not in registry.names():
            raise ValueError(f"unknown detector {v!r}; registered: {', '.join(registry.names()) or '(none yet)'}")
        return v

    @field_validator("params")
    @classmethod
    def _buildable(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from detectors import registry

        name = info.data.get("name")
        if name is None:  # the name was already rejected
            return params
        valid = registry.parameters(name)
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(f"unknown parameter {', '.join(unknown)}; {name} takes: {', '.join(valid)}")
        try:
            det = registry.create(name, dict(params))
        except ValidationError as exc:  # the detector's Params: one line per field
            lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
            raise ValueError("; ".join(lines)) from exc
        except KeyError as exc:
            raise ValueError(str(exc.args[0] if exc.args else exc)) from exc
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from exc
        from detectors import features, semantic

        need = sorted(f for f in det.wants if features.needs_model(f))
        if need and not semantic.available():
            raise ValueError(f"{name} wants {', '.join(need)}, which {semantic.MISSING}")
        return params


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(duration: str) -> float:
    """'30s', '5m', '4h', '1d', '250ms' -> seconds."""
    m = _DURATION.match(duration.strip())
    if not m:
        raise ValueError(f"invalid duration {duration!r}: expected e.g. 250ms, 30s, 5m, 4h, 1d")
    return float(m.group(1)) * _UNIT[m.group(2)]


def _duration(v: str | None) -> str | None:
    if v is not None:
        seconds(v)
    return v


class AlertRule(_Strict):
    """Which findings become alerts."""

    name: str
    detectors: list[str] = ["*"]
    metrics: list[str] = ["*"]
    min_severity: Literal["info", "warning", "critical"] = "warning"
    min_e_value: float | None = Field(None, gt=0)
    min_samples: int | None = Field(None, ge=0)
    severity: Literal["info", "warning", "critical"] | None = Field(None, description="override the finding's")
    labels: dict[str, str] = {}


class Route(_Strict):
    """An Alertmanager-style route: matchers (`~` starts a regex), options inherited by
    children, `continue`."""

    receiver: str | None = None
    matchers: dict[str, str] = {}
    continue_: bool = Field(False, alias="continue")
    group_by: list[str] | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    routes: list[Route] = []

    _durations = field_validator("group_wait", "group_interval", "repeat_interval")(
        classmethod(lambda cls, v: _duration(v))
    )

    @field_validator("matchers")
    @classmethod
    def _regexes_compile(cls, matchers: dict[str, str]) -> dict[str, str]:
        for key, want in matchers.items():
            if want.startswith("~"):
                try:
                    re.compile(want[1:])
                except re.error as exc:
                    raise ValueError(f"{key}: the regex {want[1:]!r} does not compile: {exc}") from exc
        return matchers


class SlackReceiver(_Strict):
    url: SecretRef


class WebhookReceiver(_Strict):
    url: SecretRef
    secret: SecretRef | None = None


class LogReceiver(_Strict):
    """`log: {}`: alerts as structured log lines (no settings)."""


class Receiver(_Strict):
    name: str
    slack: SlackReceiver | None = None
    webhook: WebhookReceiver | None = None
    log: LogReceiver | None = None
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> Receiver:
        kinds = [k for k in ("slack", "webhook", "log") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a receiver takes exactly one of `slack`, `webhook` or `log`")
        return self

    @property
    def type(self) -> str:
        return next(k for k in ("slack", "webhook", "log") if getattr(self, k) is not None)


class InhibitRule(_Strict):
    """While an alert matching `source` fires, alerts matching `target` with the same `equal`
    labels are muted (e.g. a critical alert mutes its warnings)."""

    source: dict[str, str]
    target: dict[str, str]
    equal: list[str] = []


_DEFAULT_INHIBIT = [
    InhibitRule(
        source={"severity": "critical"},
        target={"severity": "warning"},
        equal=["experiment", "detector", "metric", "model", "arms"],
    )
]


class Alerts(_Strict):
    rules: list[AlertRule] = []
    route: Route | None = None
    receivers: list[Receiver] = []
    inhibit: list[InhibitRule] = Field(default_factory=lambda: list(_DEFAULT_INHIBIT))
    resolve_after: str = Field("24h", description="an alert with no new finding for this long resolves")
    max_attempts: int = Field(12, ge=1, description="delivery attempts before a notification is dead-lettered")
    backoff_initial: str = "1s"
    backoff_max: str = "5m"

    _durations = field_validator("resolve_after", "backoff_initial", "backoff_max")(
        classmethod(lambda cls, v: _duration(v))
    )

    @model_validator(mode="after")
    def _route_receivers(self) -> Alerts:
        if self.route is not None and not self.route.receiver:
            raise ValueError("the root route needs a `receiver`")
        known = {r.name for r in self.receivers}
        missing = sorted(_receivers(self.route) - known) if self.route else []
        if missing:
            raise ValueError(f"routes name unknown receivers: {', '.join(missing)}")
        return self


def _receivers(route: Route) -> set[str]:
    out = {route.receiver} if route.receiver else set()
    for child in route.routes:
        out |= _receivers(child)
    return out


# --------------------------------------------------------------------------- the file


class Policy(_Strict):
    version: Literal[1] = 1
    description: str = ""
    seed: int | None = Field(None, description="assignment seed; unset: a random one, logged at start")
    debug_headers: bool = Field(False, description="add x-cuewatch-experiment/arm to responses (testing only)")
    experiments: list[Experiment] = []
    detectors: list[DetectorSpec] = []
    alerts: Alerts = Alerts()

    @field_validator("experiments")
    @classmethod
    def _unique_names(cls, exps: list[Experiment]) -> list[Experiment]:
        _require_unique("experiment", [e.name for e in exps])
        return exps


UNSET_SECRETS_OK = "unset_secrets_ok"


def load_policy(path: Path | str, *, unset_secrets_ok: bool = False) -> Policy:
    """Load and validate a policy file (ConfigError names file, line and field), including the
    names one part gives another. `unset_secrets_ok` (for `policy check`, which may run where
    the secrets are not set): a sticky salt that cannot be read is left to `unset_secrets`
    rather than failing the load; such a policy cannot assign arms."""
    context = {UNSET_SECRETS_OK: True} if unset_secrets_ok else None
    policy = load_yaml_model(path, Policy, check=references, context=context)
    for exp in policy.experiments:
        if exp.salt_is_public:
            log.warning(
                "sticky_salt_public",
                file=str(path),
                experiment=exp.name,
                problem="sticky assignment hashed with a salt written in the policy (or the experiment's name): "
                "anyone who can read the policy can compute a user's arm; use `salt: {env: NAME}` or "
                "`salt: {file: PATH}`",
            )
    return policy


Problem = tuple[tuple[str | int, ...], str]


def references(policy: Policy) -> list[Problem]:
    """Names one part of a policy gives another that do not exist in it."""
    out: list[Problem] = []
    experiments = sorted(e.name for e in policy.experiments)
    for i, spec in enumerate(policy.detectors):
        exp = spec.params.get("experiment")
        if exp is not None and exp not in experiments:
            have = ", ".join(experiments) or "none"
            out.append((("detectors", i, "params", "experiment"), f"no experiment {exp!r} in this policy ({have})"))
    detectors = sorted({d.name for d in policy.detectors})
    for i, rule in enumerate(policy.alerts.rules):
        for name in rule.detectors:
            if name != "*" and name not in detectors:
                have = ", ".join(detectors) or "none"
                out.append((("alerts", "rules", i, "detectors"), f"no detector {name!r} in this policy ({have})"))
    return out


def unset_secrets(policy: Policy) -> list[str]:
    """Secrets the policy refers to that cannot be read now (warnings: they may be set where it runs)."""
    refs: list[tuple[str, SecretRef]] = []
    for i, r in enumerate(policy.alerts.receivers):
        if r.slack is not None:
            refs.append((f"alerts.receivers.{i}.slack.url", r.slack.url))
        if r.webhook is not None:
            refs.append((f"alerts.receivers.{i}.webhook.url", r.webhook.url))
            if r.webhook.secret is not None:
                refs.append((f"alerts.receivers.{i}.webhook.secret", r.webhook.secret))
    for i, e in enumerate(policy.experiments):
        if e.probes is not None and e.probes.auth is not None:
            refs.append((f"experiments.{i}.probes.auth", e.probes.auth))
        if e.shadow.auth is not None and e.mode == "shadow":
            refs.append((f"experiments.{i}.shadow.auth", e.shadow.auth))
        if isinstance(e.salt, SecretRef):
            refs.append((f"experiments.{i}.salt", e.salt))
    out = []
    for where, ref in refs:
        try:
            ref.read()
        except ConfigError as exc:
            out.append(f"{where}: {str(exc).removeprefix('secret: ')}")
    return out


def summary(policy: Policy) -> list[str]:
    """Human-readable lines describing a policy (for `cuewatch policy check`)."""
    lines = [f"  seed: {policy.seed if policy.seed is not None else 'random at start'}"]
    if not policy.experiments:
        lines.append("  no experiments: observe only")
    for exp in policy.experiments:
        f = exp.filter
        lines.append(
            f"  experiment {exp.name}: mode {exp.mode}; models {','.join(f.models)}; "
            f"dialects {','.join(f.dialects)}; sticky {exp.sticky}"
        )
        for arm in exp.arms:
            c = arm.cue
            where = (
                "none"
                if c.where == "none"
                else f"{c.where}" + (f" {c.position}" if c.where in ("system", "user") else f" {c.key}")
            )
            lines.append(f"    arm {arm.name}: p={arm.probability:g}, cue {where}, {len(c.texts)} text(s)")
        if exp.mode == "shadow":
            s = exp.shadow
            lines.append(
                f"    shadow: sample {s.sample.describe()}; budget {s.max_requests_per_minute} req/min (paced), "
                f"{s.max_tokens_per_hour} tokens/h"
            )
        if exp.probes is not None:
            p = exp.probes
            lines.append(f"    probes: bank {p.bank}, {p.rate_per_minute:g}/min to {p.dialect} model {p.model}")
    if policy.detectors:
        lines.append("  detectors: " + ", ".join(d.name for d in policy.detectors))
    if policy.alerts.rules:
        lines.append(f"  alert rules: {len(policy.alerts.rules)}; receivers: {len(policy.alerts.receivers)}")
    return lines
