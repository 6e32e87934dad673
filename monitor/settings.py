"""Settings for the proxy and pipeline: defaults < environment (`CUEWATCH_*`) < CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.routes import Route, RouteTable


def flag(name: str) -> str:
    """The command-line flag of a setting."""
    return "--" + name.replace("_", "-")


class Settings(BaseSettings):
    """Everything `cuewatch serve` can be told. Each field is also `CUEWATCH_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="CUEWATCH_", extra="forbid")

    upstream: AnyHttpUrl = Field(
        AnyHttpUrl("https://api.openai.com"),
        description="Base URL of the model API; the request path is appended to it, after any path the base "
        "has (https://host/prefix).",
    )
    upstream_anthropic: AnyHttpUrl | None = Field(
        None, description="Separate base URL for Anthropic /v1/messages (default: `upstream`)."
    )
    routes: list[Route] = Field(
        [],
        description="Extra routes, tried before the defaults: PATTERN=DIALECT[@UPSTREAM], a path glob and one of "
        "openai, anthropic, responses, passthrough (docs/routes.md; env: a JSON list of {path, dialect, upstream}).",
    )
    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8080, ge=0, le=65535, description="Listen port.")
    policy: Path | None = Field(None, description="Policy YAML file (unset: observe and record only).")
    policy_poll_s: float = Field(1.0, ge=0, description="Check the policy file for changes this often (0: never).")
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token for /admin/* (unset: admin API off). A flag shows in the process list: "
        "prefer the env var or admin_token_file.",
    )
    admin_token_file: Path | None = Field(None, description="File holding the admin token.")

    # Upstream client.
    connect_timeout_s: float = Field(10.0, gt=0, description="Longest wait to connect to the upstream (then 502).")
    read_timeout_s: float = Field(
        600.0, gt=0, description="Longest wait for the response headers or for the next chunk."
    )
    pool_size: int = Field(1024, ge=1, description="Max concurrent upstream connections.")
    keepalive_s: float = Field(30.0, gt=0, description="Idle upstream connections are closed after this long.")
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1, description="Larger requests get 413.")

    # Pipeline and traffic log.
    log_dir: Path = Field(Path("cuewatch-logs"), description="Traffic log folder.")
    spill_dir: Path | None = Field(
        None,
        description="Where records wait when the queue is full or the log cannot be written (default: spill/ "
        "in log_dir; put it on another volume so a full log disk still spills).",
    )
    queue_size: int = Field(10_000, ge=1, description="Records held in memory before spilling.")
    journal: bool = Field(
        True,
        description="Write each record to a journal in spill_dir before it waits in memory, so a killed process "
        "loses none (about 0.03 ms per request on the request path).",
    )
    record_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Most response bytes (after decompression) read into a record; longer ones are marked "
        "truncated. The client always gets every byte.",
    )
    segment_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="A log segment is rotated at this size.")
    segment_max_age_s: float = Field(3600.0, gt=0, description="A log segment is rotated after this long.")
    gzip: bool = Field(False, description="Gzip log segments.")
    fsync: Literal["always", "interval", "never"] = Field(
        "interval", description="When log writes are flushed to disk: every write, every fsync_interval_s, or never."
    )
    fsync_interval_s: float = Field(1.0, gt=0, description="Flush period of fsync=interval.")
    redact_prompts: bool = Field(False, description="Store digests instead of prompt text.")
    redact_secrets: bool = Field(
        True,
        description="Replace credential-looking text (provider keys, bearer tokens, key= parameters, webhook URLs) "
        "in every stored field; process logs are always scrubbed.",
    )

    # Evidence and alerts (docs/evidence.md).
    public_url: AnyHttpUrl | None = Field(
        None,
        description="Base URL at which people reach this process's admin pages (e.g. https://cuewatch.example.com); "
        "alerts link to each finding's evidence page under it.",
    )
    log_location: str | None = Field(
        None,
        description="Where people off this host find the traffic log (a URL or object-store path, e.g. "
        "s3://bucket/cuewatch-logs); the commands in alerts and evidence pages name it instead of log_dir.",
    )
    evidence_logs: list[Path] = Field(
        [],
        description="Log folders the evidence pages read besides log_dir (e.g. the other workers' logs, which hold "
        "the example exchanges of findings raised here; env: a JSON list).",
    )
    instance: str | None = Field(None, description="`instance` label on alerts (default: the host name).")
    environment: str | None = Field(None, description="`environment` label on alerts (e.g. prod, staging).")

    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces): each exchange is exported as "
        "an OpenTelemetry GenAI span, findings as its events (needs the otel extra; in-process transport).",
    )

    # Transport: where exchanges go after the response (docs/deploy.md).
    transport: Literal["inprocess", "redis"] = Field(
        "inprocess",
        description="inprocess: this process runs the detectors and alerts; redis: publish exchanges to a Redis "
        "stream that `cuewatch worker` processes.",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL (may hold a password; never logged)."
    )
    redis_prefix: str = Field("cuewatch", min_length=1, description="Prefix of every Redis key cuewatch uses.")
    redis_maxlen: int = Field(
        1_000_000, ge=1000, description="Approximate cap on the exchange stream's length (older entries trimmed)."
    )
    redis_timeout_s: float = Field(2.0, gt=0, description="Connect and command timeout towards Redis.")

    feature_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Feature workers in this process: 1 is a thread; more are processes, each with its own copy "
        "of the embedding model and a share of the cores, each batch split among them.",
    )

    # Worker (`cuewatch worker`).
    worker_id: str | None = Field(None, description="Consumer name in Redis (default: hostname-pid).")
    lease_ttl_s: float = Field(
        15.0, gt=0, description="A dead worker's partitions move to another after this long without renewal."
    )
    snapshot_interval_s: float = Field(
        1.0, gt=0, description="Detector state is saved (and entries acknowledged) this often, and at shutdown."
    )
    worker_batch: int = Field(256, ge=1, description="Most stream entries read per step.")
    worker_role: Literal["detectors", "features"] = Field(
        "detectors",
        description="detectors: hold partitions, run the detectors and alerts; features: compute the model-based "
        "features of every exchange once, for the detector workers that set features_from=redis.",
    )
    features_from: Literal["local", "redis"] = Field(
        "local",
        description="Where a detector worker gets model-based features: local (its own feature_workers) or redis "
        "(rows the feature workers wrote; a row still missing after feature_wait_s is computed locally).",
    )
    feature_wait_s: float = Field(
        10.0,
        ge=0,
        description="With features_from=redis: longest wait for the next feature row of a batch (rows still "
        "missing then are computed locally).",
    )
    feature_batch: int = Field(
        64,
        ge=1,
        description="With worker_role=features: entries read per step (small, so the feature workers share the "
        "work evenly and rows reach the detector workers steadily).",
    )
    feature_ttl_s: float = Field(
        600.0, gt=0, description="With worker_role=features: feature rows expire from Redis after this long."
    )

    # Process.
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Process log level.")
    log_format: Literal["json", "console"] = Field("json", description="Process log format (stderr).")
    access_log: bool = Field(True, description="One log line per request, model calls and passthrough alike.")

    @field_validator("upstream", "upstream_anthropic")
    @classmethod
    def _no_trailing_slash(cls, v: AnyHttpUrl | None) -> AnyHttpUrl | None:
        return AnyHttpUrl(str(v).rstrip("/")) if v is not None else None

    def admin_secret(self) -> str | None:
        """The admin token from the setting or its file, or None when the admin API is off."""
        if self.admin_token is not None:
            return self.admin_token.get_secret_value() or None
        if self.admin_token_file is not None:
            return self.admin_token_file.read_text(encoding="utf-8").strip() or None
        return None

    def alert_labels(self) -> dict[str, str]:
        """The labels every alert of this process carries: instance (default: the host name) and
        environment (when set)."""
        import socket

        labels = {"instance": self.instance or socket.gethostname()}
        if self.environment:
            labels["environment"] = self.environment
        return labels

    def log_shown(self) -> str:
        """The log location shown to people: `log_location`, else `log_dir`."""
        return self.log_location or str(self.log_dir)

    def public_base(self) -> str | None:
        return str(self.public_url).rstrip("/") if self.public_url is not None else None

    def alert_store(self, shared: bool | None = None) -> Any:
        """The alert store (`monitor.plugins.STORES`): the one in Redis that every replica and
        worker shares (`shared`; default: with the redis transport), else SQLite in log_dir."""
        from monitor.plugins import STORES

        if shared if shared is not None else self.transport == "redis":
            url = self.redis_url.get_secret_value()
            return STORES.create("redis", {"url": url, "prefix": self.redis_prefix, "timeout_s": self.redis_timeout_s})
        return STORES.create("sqlite", {"path": self.log_dir / "alerts.sqlite"})

    def redis_display(self) -> str:
        """The Redis URL with any password hidden, for logs."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.redis_url.get_secret_value())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def spill_path(self) -> Path:
        return self.spill_dir if self.spill_dir is not None else self.log_dir / "spill"

    def upstream_for(self, dialect: str) -> str:
        """Base URL (no trailing slash) for a dialect."""
        url = self.upstream_anthropic if dialect == "anthropic" and self.upstream_anthropic else self.upstream
        return str(url).rstrip("/")

    def route_table(self) -> RouteTable:
        return RouteTable(self.routes, self.upstream_for("openai"), self.upstream_for("anthropic"))
