"""Extra traffic cuewatch sends itself, always off the request path: shadow copies of sampled
production requests (one per arm, sharing a pair id) and known-answer probes under every arm.

Their responses are analysed only, never returned to a client; their failures are recorded and
never touch the production response.

Credentials: a shadow copy carries the client's own headers, key included, unless the experiment
has `shadow.auth`; then it carries that key instead and none of the client's credential or
account headers (the client neither pays for its copies nor sees its rate limits spent on them).
Probes use `probes.auth`, else `shadow.auth`. A key is never logged.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog

from monitor.capture import Capture, to_exchange
from monitor.dialects import PATHS, auth_headers, build_request
from monitor.errors import ConfigError, UpstreamError, UpstreamTimeout
from monitor.experiments import Plan, Variant
from monitor.pipeline import Pipeline
from monitor.policy import Experiment, SecretRef
from monitor.probes import Probe, load_bank
from monitor.records import Dialect
from monitor.reload import PolicyHolder
from monitor.routes import RouteTable
from proxy._upstream import upstream_errors

log = structlog.get_logger("cuewatch.shadow")

# Client headers that authenticate or name the client's account upstream (OpenAI, Anthropic,
# Azure, Google; cookies): dropped from a copy that carries the experiment's own credential.
CLIENT_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "openai-organization", "openai-project", "cookie"}
)


def copy_headers(dialect: Dialect, client: dict[str, str], key: str) -> dict[str, str]:
    """Headers of a copy sent with a dedicated `key`: the client's, less its credential and
    account headers, plus `key` in the dialect's auth header (`Authorization: Bearer` for OpenAI
    and Responses, `x-api-key` for Anthropic); in `api-key` when the client used that one (Azure)."""
    kept = {k: v for k, v in client.items() if k.lower() not in CLIENT_CREDENTIAL_HEADERS}
    if any(k.lower() == "api-key" for k in client):
        return {**auth_headers(dialect, None), **kept, "api-key": key}
    return {**auth_headers(dialect, key), **kept}


class ShadowSender:
    """Sends variants concurrently in background tasks and hands their captures to the pipeline."""

    def __init__(self, pipeline: Pipeline, routes: RouteTable, holder: PolicyHolder) -> None:
        self.pipeline = pipeline
        self.routes = routes
        self.holder = holder
        self.session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: dict[tuple[str, str], int] = {}  # (experiment, outcome) -> count
        self.pairs: dict[tuple[str, str, str], int] = {}  # (experiment, sampling rule, harmful) -> pairs sent
        self._no_credential: set[str] = set()  # experiments whose shadow.auth could not be read (logged once)

    def consider(
        self, dialect: Dialect, path: str, headers: dict[str, str], plan: Plan, original: dict[str, Any]
    ) -> None:
        """Decide in the background whether a shadow-mode request is sampled (its rules may need
        the harmful-request classifier, which never runs on the request path), then send it."""
        self._track(asyncio.create_task(self._consider(dialect, path, headers, plan, original)))

    async def _consider(
        self, dialect: Dialect, path: str, headers: dict[str, str], plan: Plan, original: dict[str, Any]
    ) -> None:
        harmful: bool | None = None
        category: str | None = None
        if plan.experiment.shadow.sample.needs_request_features:
            try:
                harmful, category = await asyncio.to_thread(request_harm, dialect, original)
            except Exception as exc:  # a broken classifier costs the rule, never the request
                log.error("shadow_sampling_classifier_failed", experiment=plan.experiment.name, error=repr(exc))
        experiments = self.holder.experiments
        if plan.experiment not in experiments.policy.experiments:
            return  # the policy was reloaded without it meanwhile
        try:
            sampled = experiments.sample(plan, dialect, original, bool(harmful), category)
        except Exception as exc:  # a request the cue code cannot handle: production is unaffected
            log.error("shadow_copy_failed", experiment=plan.experiment.name, error=repr(exc))
            return
        if sampled is not None:
            exp = plan.experiment
            if exp.shadow.auth is not None:
                key = self._dedicated_key(exp.name, exp.shadow.auth)
                if key is None:  # never fall back to the client's key: that is the side channel
                    self.sent[(exp.name, "no_credential")] = self.sent.get((exp.name, "no_credential"), 0) + len(
                        sampled.variants
                    )
                    return
                headers = copy_headers(dialect, headers, key)
            flagged = "unknown" if harmful is None else str(harmful).lower()
            pair = (exp.name, sampled.labels["sample_rule"], flagged)
            self.pairs[pair] = self.pairs.get(pair, 0) + 1
            self.launch(dialect, path, headers, sampled, original)

    def _dedicated_key(self, experiment: str, ref: SecretRef) -> str | None:
        """The experiment's shadow credential, or None (logged once until it can be read again)."""
        try:
            key = ref.read().get_secret_value()
            if not key:
                raise ConfigError(f"secret: {ref.file} is empty")
        except ConfigError as exc:  # names the variable or file, never a value
            if experiment not in self._no_credential:
                self._no_credential.add(experiment)
                log.error("shadow_copies_disabled", experiment=experiment, error=str(exc))
            return None
        self._no_credential.discard(experiment)
        return key

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def launch(
        self,
        dialect: Dialect,
        path: str,
        headers: dict[str, str],
        plan: Plan,
        original: dict[str, Any],
        origin: str = "shadow",
    ) -> None:
        """Send each variant of `plan`; records keep `original` (the prompt without a cue), and
        the cue each copy carried in their `cue` field, as live records do."""
        for variant in plan.variants:
            self._track(asyncio.create_task(self._send(dialect, path, headers, plan, variant, original, origin)))

    async def _send(
        self,
        dialect: Dialect,
        path: str,
        headers: dict[str, str],
        plan: Plan,
        v: Variant,
        original: dict[str, Any],
        origin: str,
    ) -> None:
        exp = plan.experiment
        # `path` may carry the client's query string (Azure's api-version); the record keeps the path.
        bare = path.partition("?")[0]
        base = (exp.shadow.upstream or self.routes.target("POST", bare).base).rstrip("/")
        labels = {
            **plan.labels,
            "arm": v.arm.name,
            "assignment_probability": v.arm.probability,
            "cue": v.cue_text,
            "origin": origin,
        }
        cap = Capture.start(os.urandom(12).hex(), datetime.now(UTC), dialect, bare, original, labels)
        t0 = time.perf_counter()
        assert self.session is not None
        try:
            with upstream_errors(f"{origin} request's upstream"):
                async with self.session.post(
                    base + path, data=orjson.dumps(v.request), headers={**headers, **v.headers}
                ) as r:
                    cap.timings.upstream_ms = round((time.perf_counter() - t0) * 1000, 3)
                    cap.status, cap.content_type = r.status, r.headers.get("Content-Type")
                    cap.content_encoding = r.headers.get("Content-Encoding")
                    cap.upstream_request_id = r.headers.get("request-id") or r.headers.get("x-request-id")
                    cap.outcome = "ok" if r.status < 400 else "upstream_error"
                    cap.body = await r.read()
        except UpstreamError as exc:
            timed_out = isinstance(exc, UpstreamTimeout)
            cap.status = cap.status or (504 if timed_out else 502)
            cap.outcome = "upstream_timeout" if timed_out else "upstream_unreachable"
            cap.error = f"{exc} ({type(exc.__cause__).__name__}: {exc.__cause__})"
        except Exception as exc:  # never let a shadow failure escape into the event loop
            cap.status, cap.outcome, cap.error = 502, "upstream_unreachable", f"{origin} request failed: {exc!r}"
        cap.timings.total_ms = round((time.perf_counter() - t0) * 1000, 3)
        key = (exp.name, cap.outcome)
        self.sent[key] = self.sent.get(key, 0) + 1
        try:
            # Only the usage is read here (the budget needs it now, and with the Redis transport
            # the record is made elsewhere): no secret scrubbing; a long answer, off the loop.
            usage = (await asyncio.to_thread(to_exchange, cap, redact_secrets=False)).usage
            tokens = (usage.input_tokens or 0) + (usage.output_tokens or 0)
        except Exception:
            tokens = 0
        budget = self.holder.budgets.get(exp.name)
        if budget is not None:
            budget.charge_tokens(tokens)
        self.pipeline.submit(cap)

    async def close(self, wait_s: float = 30.0) -> None:
        """Let in-flight shadow requests finish (their records matter), up to `wait_s`; a
        sampling decision still pending may start sends, which are waited for too."""
        deadline = time.monotonic() + wait_s
        while self._tasks and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait(list(self._tasks), timeout=left)


class ProbeScheduler:
    """Sends probes for every shadow experiment that has `probes`, at its rate, under every arm."""

    def __init__(self, sender: ShadowSender, holder: PolicyHolder, tick_s: float = 0.05) -> None:
        self.sender = sender
        self.holder = holder
        self.tick_s = tick_s
        self._banks: dict[str, list[Probe]] = {}
        self._due: dict[str, float] = {}
        self._warned: set[str] = set()
        self._rng = random.Random(f"{holder.seed}:probes")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            for exp in self.holder.policy.experiments:
                if exp.probes is None or exp.mode != "shadow":
                    continue
                due = self._due.setdefault(exp.name, now)
                if now >= due:
                    self._due[exp.name] = now + 60.0 / exp.probes.rate_per_minute
                    self._send(exp)

    def _send(self, exp: Experiment) -> None:
        assert exp.probes is not None
        cfg = exp.probes
        try:
            bank = self._banks.get(cfg.bank) or self._banks.setdefault(cfg.bank, load_bank(cfg.bank))
            auth = cfg.auth or exp.shadow.auth
            headers = auth_headers(cfg.dialect, auth.read().get_secret_value() if auth else None)
        except ConfigError as exc:
            if exp.name not in self._warned:
                self._warned.add(exp.name)
                log.error("probes_disabled", experiment=exp.name, error=str(exc))
            return
        budget = self.holder.budgets.get(exp.name)
        if budget is not None and not budget.try_take(len(exp.arms)):
            return
        probe = self._rng.choice(bank)
        req = build_request(
            cfg.dialect, cfg.model, cfg.max_tokens, [{"role": "user", "content": probe.prompt(cfg.instruction)}]
        )
        experiments = self.holder.experiments
        plan = Plan(
            exp,
            {
                "experiment": exp.name,
                "mode": "shadow",
                "pair_id": os.urandom(8).hex(),
                "probe_id": probe.id,
                "expected_answer": probe.answer,
                "probe_choices": probe.choices,
                "probe_tolerance": probe.tolerance if probe.format == "number" else None,
            },
        )
        plan.variants = [experiments.variant(cfg.dialect, req, arm) for arm in exp.arms]
        self.sender.launch(cfg.dialect, PATHS[cfg.dialect], headers, plan, req, origin="probe")


def request_harm(dialect: Dialect, req: dict[str, Any]) -> tuple[bool, str | None]:
    """The `harmful` and `harm_category` features of a request, before any arm is sent (the
    live features' code)."""
    from detectors import features
    from monitor.dialects import request_messages
    from monitor.records import Exchange

    ex = Exchange.model_construct(
        id="sampling",
        time=datetime.now(UTC),
        dialect=dialect,
        path="",
        status=0,
        outcome="ok",
        messages=request_messages(dialect, req),
        cue=None,
    )
    row = features.compute_batch([ex], {"harmful", "harm_category"})[0]
    return bool(row["harmful"]), row["harm_category"]
