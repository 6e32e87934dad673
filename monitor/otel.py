"""OpenTelemetry export: each exchange as a span, by the GenAI semantic conventions, to OTLP.

Set `otlp_endpoint` (`CUEWATCH_OTLP_ENDPOINT`, e.g. `http://collector:4318/v1/traces`) and install
the `otel` extra; the proxy then adds this stage to its pipeline, after the analysis engine, so a
team's existing tracing (Langfuse, Datadog, Grafana Tempo, Honeycomb...) sees the model calls:

- span `"{operation} {model}"`, kind CLIENT, from the request's arrival to the answer's end;
- `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
  `gen_ai.response.finish_reasons`, `gen_ai.usage.input_tokens` / `output_tokens`,
  `gen_ai.response.id` (the upstream's request id), `http.response.status_code`, `error.type`
  when the exchange did not end `ok`;
- the experiment as `cuewatch.experiment`, `cuewatch.arm`, `cuewatch.mode`, `cuewatch.origin`,
  `cuewatch.pair_id`, and the record's id as `cuewatch.exchange_id`;
- each finding the detectors raised on the exchange as an event `cuewatch.finding` (detector,
  metric, severity, summary, e-value).

Prompt and answer text are never exported (they stay in the traffic log). Spans are batched and
sent from the SDK's own thread; a collector that is down costs dropped spans, never a request.
"""

from __future__ import annotations

from typing import Any

from monitor.records import Exchange, Finding

_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "responses": "openai"}
_OPERATION = {"openai": "chat", "anthropic": "chat", "responses": "chat"}


class OtelStage:
    """Pipeline stage exporting exchanges as spans; subscribe `on_findings` to the engine."""

    def __init__(self, endpoint: str, service_name: str = "cuewatch") -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            from monitor.errors import ConfigError

            raise ConfigError("otlp_endpoint needs the otel extra: pip install 'cuewatch[otel]'") from exc
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5)))
        self.tracer = self.provider.get_tracer("cuewatch")
        self._findings: dict[str, list[Finding]] = {}  # exchange id -> findings raised on it
        self.exported = 0

    async def on_findings(self, found: list[Finding]) -> None:
        """Engine subscriber: keep each finding for the span of the exchange that raised it
        (the engine runs before this stage, so that span is made in the same batch)."""
        for f in found:
            if f.exchange_id is not None:
                self._findings.setdefault(f.exchange_id, []).append(f)

    async def __call__(self, batch: list[Exchange]) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        for ex in batch:
            start = int(ex.time.timestamp() * 1e9)
            end = start + int((ex.timings.total_ms or 0.0) * 1e6)
            operation = _OPERATION.get(ex.dialect, "chat")
            span = self.tracer.start_span(
                f"{operation} {ex.model or ''}".strip(),
                kind=SpanKind.CLIENT,
                start_time=start,
                attributes=_attributes(ex, operation),
            )
            for f in self._findings.pop(ex.id, []):
                span.add_event(
                    "cuewatch.finding",
                    {
                        "cuewatch.detector": f.detector,
                        "cuewatch.metric": f.metric,
                        "cuewatch.severity": f.severity,
                        "cuewatch.summary": f.summary[:500],
                        "cuewatch.e_value": float(f.e_value),
                        "cuewatch.finding_id": f.id,
                    },
                    timestamp=int(f.time.timestamp() * 1e9),
                )
            if ex.outcome != "ok":
                span.set_status(Status(StatusCode.ERROR, ex.error or ex.outcome))
            span.end(end_time=max(end, start))
            self.exported += 1
        if len(self._findings) > 10_000:  # findings whose exchange never came: do not grow forever
            self._findings.clear()

    def close(self) -> None:
        self.provider.shutdown()  # flushes what is batched


def _attributes(ex: Exchange, operation: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": _PROVIDER.get(ex.dialect, ex.dialect),
        "http.response.status_code": ex.status,
        "cuewatch.exchange_id": ex.id,
        "cuewatch.origin": ex.origin,
        "cuewatch.outcome": ex.outcome,
    }
    optional = {
        "gen_ai.request.model": ex.model,
        "gen_ai.response.id": ex.upstream_request_id,
        "gen_ai.usage.input_tokens": ex.usage.input_tokens,
        "gen_ai.usage.output_tokens": ex.usage.output_tokens,
        "cuewatch.experiment": ex.experiment,
        "cuewatch.arm": ex.arm,
        "cuewatch.mode": ex.mode,
        "cuewatch.pair_id": ex.pair_id,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    if ex.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = [ex.finish_reason]
    if ex.outcome != "ok":
        attrs["error.type"] = ex.outcome
    return attrs
