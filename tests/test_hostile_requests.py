"""Nothing the proxy forwards goes unrecorded, and the proxy never answers 5xx of its own: request
and response bodies of any JSON shape (fuzzed) still make a record, and through the proxy
odd shapes reach the upstream and the log instead of a proxy-made 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor._procs import ServerProcess
from monitor.capture import Capture, to_exchange
from tests._support import API_KEY, records, start_proxy, wait_for

_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["type", "role", "content", "text", "id", "name", "input", "output"]), inner)
    ),
    max_leaves=20,
)
_KEYS = ["messages", "input", "instructions", "system", "tools", "functions", "model", "stream", "metadata", "n"]
_requests = st.dictionaries(
    st.sampled_from(_KEYS),
    _json
    | st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "tool_calls",
                    "tool_call_id",
                    "call_id",
                    "function_call",
                    "name",
                    "arguments",
                ]
            ),
            _json,
        ),
        max_size=4,
    ),
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)  # the proxy-level fuzz (test_fuzz.py) covers the same shapes end to end
@given(dialect=st.sampled_from(["openai", "anthropic", "responses"]), req=_requests, body=_json, sse=st.booleans())
def test_any_shape_still_makes_a_record(dialect: str, req: dict[str, Any], body: Any, sse: bool) -> None:
    cap = Capture.start("fuzz", datetime.now(UTC), dialect, "/v1/x", req, {})  # type: ignore[arg-type]
    cap.status = 200
    if sse:
        cap.content_type = "text/event-stream"
        cap.body = b"event: x\ndata: " + orjson.dumps(body) + b"\n\ndata: " + orjson.dumps([body]) + b"\n\n"
    else:
        cap.content_type = "application/json"
        cap.body = orjson.dumps(body)
    ex = to_exchange(cap)
    assert ex.id == "fuzz" and ex.dialect == dialect
    orjson.loads(ex.model_dump_json())  # and it can be written


LIVE = """version: 1
experiments:
  - name: tier
    arms:
      - {name: a, probability: 0.5, cue: {where: system, texts: [CUE-A]}}
      - {name: b, probability: 0.5, cue: {where: user, texts: [CUE-B]}}
"""


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": 5},
        {"model": "m", "messages": True},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": 5, "functions": True},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": _deep(300)},
    ],
    ids=["messages-number", "messages-bool", "tools-number", "nested-300"],
)
def test_odd_requests_forwarded_and_recorded(tmp_path: Path, sim: ServerProcess, body: dict[str, Any]) -> None:
    """Under a live policy the proxy forwards odd shapes (the upstream judges them) and records
    each one; a request too deep to re-encode with its cue goes out as sent, outside the experiment."""
    policy = tmp_path / "live.yaml"
    policy.write_text(LIVE)
    proxy = start_proxy(tmp_path, sim.url, policy=policy)
    try:
        r = httpx.post(
            proxy.url + "/v1/chat/completions",
            content=json.dumps(body).encode(),  # (orjson writes 255 levels at most)
            headers={"content-type": "application/json", "authorization": f"Bearer {API_KEY}"},
            timeout=30,
        )
        rid = r.headers["x-cuewatch-request-id"]
        rec = wait_for(lambda: next((x for x in records(tmp_path / "logs") if x.id == rid), None))
    finally:
        proxy.stop()
    assert r.status_code < 500, r.text  # the upstream's answer (a 400 for a wrong type), not a proxy-made 500
    assert rec is not None and rec.status == r.status_code
    if body.get("metadata"):
        assert rec.experiment is None and rec.cue is None
        assert "cue_not_applied" in (proxy.log_path.read_text() if proxy.log_path else "")
    else:
        assert rec.experiment == "tier"
