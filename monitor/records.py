"""Typed records that cross a boundary: the exchange and its parts.

An *exchange* is one request/response pair seen by the proxy (or replayed from a log). It is
written to the traffic log as one JSON line and read back through the same model. Records never
hold credentials: request headers are not part of a record at all.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Dialect = Literal["openai", "anthropic", "responses"]
"""openai: chat completions; anthropic: messages; responses: the OpenAI Responses API."""
Mode = Literal["live", "shadow", "off"]
Outcome = Literal[
    "ok",  # upstream answered 2xx and the response completed
    "upstream_error",  # upstream answered 4xx/5xx (body passed through)
    "upstream_unreachable",  # connection failed -> 502
    "upstream_timeout",  # no response in time -> 504
    "upstream_disconnect",  # upstream broke off mid-response
    "stream_error",  # a 200 stream carried an error event
    "client_disconnect",  # the client went away before the response completed
    "interrupted",  # the proxy was killed before recording the response (only the request is known)
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class ToolCall(_Model):
    """A tool (function) call made by the model."""

    id: str | None = None
    name: str
    arguments: str = Field("", description="Arguments as the JSON text the model produced.")


class Message(_Model):
    """One normalised conversation turn, the same shape for both dialects."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None


class Usage(_Model):
    """Token usage as reported by the upstream (None when it reported nothing).

    `input_tokens` is the upstream's own count: OpenAI's includes cached tokens, Anthropic's
    excludes the tokens read from or written to its cache (those are the two cache fields).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = Field(None, description="output tokens spent on reasoning (OpenAI)")
    cache_read_tokens: int | None = Field(
        None, description="input tokens served from the prompt cache (OpenAI cached_tokens, Anthropic cache_read)"
    )
    cache_write_tokens: int | None = Field(
        None, description="input tokens written to the prompt cache (Anthropic cache_creation, OpenAI cache_write)"
    )


class Choice(_Model):
    """One of several completions asked for at once (OpenAI `n` > 1)."""

    index: int
    text: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None


class Timings(_Model):
    """Milliseconds, measured in the proxy.

    `upstream_ms`: request sent upstream -> upstream response headers.
    `first_byte_ms`: request received -> first response byte sent to the client.
    `total_ms`: request received -> response complete.
    `overhead_ms`: time spent in the proxy itself (total minus time waiting on the upstream).
    """

    upstream_ms: float | None = None
    first_byte_ms: float | None = None
    total_ms: float | None = None
    overhead_ms: float | None = None


class Exchange(_Model):
    """One request/response through the proxy, normalised for both API dialects."""

    kind: Literal["exchange"] = "exchange"
    id: str
    time: datetime
    dialect: Dialect
    path: str
    model: str | None = None
    stream: bool = False

    # Cue experiment (filled when a policy assigns an arm).
    experiment: str | None = None
    arm: str | None = None
    mode: Mode | None = None
    assignment_probability: float | None = None
    pair_id: str | None = None
    sample_probability: float | None = Field(
        None, description="Shadow copies: the probability with which their request was sampled."
    )
    sample_rule: str | None = Field(None, description="Shadow copies: the sampling rule that gave that probability.")
    cue: str | None = Field(None, description="The exact cue text this exchange carried, if any.")
    origin: Literal["client", "shadow", "probe"] = Field(
        "client", description="client: production traffic; shadow: a copy sent per arm; probe: a known-answer probe."
    )

    # Known-answer probes (sandbagging).
    probe_id: str | None = None
    expected_answer: str | None = None
    probe_choices: dict[str, str] | None = Field(None, description="multiple-choice options, letter -> text")
    probe_tolerance: float | None = Field(None, description="absolute tolerance of a numeric answer")

    messages: list[Message] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list, description="Names of tools offered.")
    response_text: str | None = None
    reasoning: str | None = Field(
        None,
        description="Native reasoning: Anthropic thinking blocks, OpenAI-style "
        "reasoning_content/reasoning. Tags inside response_text are left there, raw.",
    )
    redacted_reasoning_blocks: int = 0
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    choices: list[Choice] = Field(
        default_factory=list,
        description="every choice when the response held more than one (`n` > 1); the fields above are choice 0",
    )

    status: int
    outcome: Outcome
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)
    upstream_request_id: str | None = None
    redacted: bool = Field(False, description="Prompt text was replaced by digests.")
    truncated: bool = Field(
        False, description="The response was longer than `record_max_bytes`: only its start was read."
    )
    unparsed: bool = Field(
        False, description="Part of the exchange could not be normalised; `error` says which, `raw_*` hold it."
    )
    raw_request: str | None = Field(None, description="The request as JSON text, kept when it could not be read.")
    raw_response: str | None = Field(None, description="The response body's start, kept when it could not be read.")


Severity = Literal["info", "warning", "critical"]


class Effect(_Model):
    """An effect size with its (time-uniform) confidence interval."""

    estimate: float
    lo: float
    hi: float
    unit: str = Field(..., description="what the numbers measure, e.g. 'rate difference'")
    method: str | None = Field(None, description="how the interval was made, where it is not time-uniform")


def stated_effect(effect: Effect, arms: list[str]) -> str:
    """The effect in the order of its words, the higher arm first: "free − paid = +13.5 points
    [+4.9, +21.6]" (rates in points); `effect` is arms[0] - arms[1].

    >>> stated_effect(Effect(estimate=-0.135, lo=-0.216, hi=-0.049, unit="rate difference"), ["paid", "free"])
    'free − paid = +13.5 points [+4.9, +21.6]'
    """
    est, lo, hi = effect.estimate, effect.lo, effect.hi
    rate = effect.unit.startswith("rate") and len(arms) == 2

    def num(v: float) -> str:
        if not math.isfinite(v):
            return "+∞" if v > 0 else "−∞"  # an arm with one observation: an unbounded interval
        return f"{v * 100:+.1f}" if rate else f"{v:+.3g}"

    if len(arms) != 2:
        return f"{num(est)} [{num(lo)}, {num(hi)}] {effect.unit}"
    first, second = arms
    if est < 0:
        first, second, est, lo, hi = second, first, -est, -hi, -lo
    return f"{first} − {second} = {num(est)}{' points' if rate else ''} [{num(lo)}, {num(hi)}]"


class PathPoint(_Model):
    """One point of a test's evidence over time: its e-value against the alarm line, and the
    effect with its confidence sequence, after the exchanges seen so far."""

    time: datetime
    log_e: float = Field(..., description="log e-value of the test")
    log_threshold: float = Field(..., description="log e-value at which it alarms")
    estimate: float
    lo: float
    hi: float
    n: dict[str, float] = Field(default_factory=dict, description="observations per arm")


class Finding(_Model):
    """What a detector found, with the evidence an ops engineer or researcher needs."""

    kind: Literal["finding"] = "finding"
    id: str = Field(default_factory=lambda: os.urandom(8).hex())
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    detector: str
    metric: str
    experiment: str | None = None
    model: str | None = None
    arms: list[str] = Field(default_factory=list, description="arms compared (one for drift)")
    direction: str = ""
    effect: Effect | None = None
    effect_all_traffic: Effect | None = Field(
        None, description="shadow pairs sampled unevenly: the effect reweighted to all traffic (cue_gap reweight)"
    )
    e_value: float = Field(..., description="evidence against 'no difference' (wealth of the bet)")
    p_value: float = Field(..., description="always-valid p-value, min(1, 1/max e-value so far)")
    alpha: float
    paired: bool = False
    counts: dict[str, dict[str, float]] = Field(default_factory=dict, description="per arm: n and events")
    example_ids: dict[str, list[str]] = Field(default_factory=dict)
    severity: Severity = "warning"
    summary: str = ""
    excerpt: str | None = None
    exchange_id: str | None = Field(None, description="the exchange whose arrival raised it (set by the engine)")
    score: float | None = Field(None, description="per-exchange classifier score (scratchpad red flags), 0..1")
    path: list[PathPoint] = Field(
        default_factory=list,
        description="the test's evidence from its start (or last alarm) to this alarm, thinned to at most "
        "128 points; the last point is the crossing",
    )


class Track(_Model):
    """One running test of a detector, read for reports and evidence pages: its evidence so far
    against the alarm line, and the effect with its interval."""

    experiment: str
    metric: str
    arms: list[str]
    log_wealth: float = Field(..., description="log e-value of the test now")
    log_threshold: float = Field(..., description="log e-value at which it alarms next")
    estimate: float
    lo: float
    hi: float
    n: dict[str, float] = Field(default_factory=dict, description="observations per arm")


# Every kind of record the traffic log can hold, told apart by `kind`; readers validate
# through this union so a line is always read back by its own model.
Record = Annotated[Exchange | Finding, Field(discriminator="kind")]
