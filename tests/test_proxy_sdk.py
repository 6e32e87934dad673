"""The official OpenAI and Anthropic SDKs, unmodified except base_url, through the proxy to the
simulated upstream: the client sees exactly what the upstream sent, and each exchange yields
exactly one correct record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from monitor._procs import ServerProcess
from tests._support import records, sim_requests
from tests.conftest import SDKClients

TOOLS_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
TOOLS_ANTHROPIC = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


_CLIENTS = SDKClients()  # the helpers below hand out clients; each test's are closed when it ends


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    _CLIENTS.close()


def _oa(proxy: ServerProcess) -> openai.OpenAI:
    return _CLIENTS.openai(proxy.url + "/v1")


def _an(proxy: ServerProcess) -> anthropic.Anthropic:
    return _CLIENTS.anthropic(proxy.url)


def _sent_by_upstream(sim: ServerProcess, request_id: str) -> str:
    entry = next(e for e in sim_requests(sim.url) if e.get("request_id") == request_id)
    return str(entry["sent_sha256"])


def test_openai_non_stream(proxy: ServerProcess, sim: ServerProcess, tmp_path: Path) -> None:
    """A plain OpenAI chat completion arrives intact and is recorded once, normalised."""
    client = _oa(proxy)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-sim",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about tea."}],
    )
    body = raw.http_response.content
    assert hashlib.sha256(body).hexdigest() == _sent_by_upstream(sim, raw.headers["x-request-id"])
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert float(raw.headers["x-cuewatch-overhead-ms"]) >= 0
    [rec] = records(tmp_path / "logs", 1)
    assert rec.id == raw.headers["x-cuewatch-request-id"]
    assert (rec.dialect, rec.model, rec.status, rec.outcome, rec.stream) == ("openai", "gpt-sim", 200, "ok", False)
    assert [(m.role, m.text) for m in rec.messages] == [("system", "Be brief."), ("user", "Tell me about tea.")]
    assert rec.response_text == completion.choices[0].message.content
    assert rec.reasoning == completion.choices[0].message.model_extra["reasoning_content"]
    assert rec.usage.output_tokens == completion.usage.completion_tokens
    assert rec.finish_reason == "stop"
    assert rec.upstream_request_id == raw.headers["x-request-id"]
    assert rec.timings.total_ms is not None and rec.timings.upstream_ms is not None


def test_openai_stream_byte_identical(proxy: ServerProcess, sim: ServerProcess, tmp_path: Path) -> None:
    """An OpenAI SSE stream reaches the client byte for byte as the upstream sent it."""
    client = _oa(proxy)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-sim",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Explain photosynthesis in a paragraph please."}],
    ) as resp:
        got = b"".join(resp.iter_bytes())
        rid = resp.headers["x-request-id"]
    assert hashlib.sha256(got).hexdigest() == _sent_by_upstream(sim, rid)
    assert got.endswith(b"data: [DONE]\n\n")
    [rec] = records(tmp_path / "logs", 1)
    assert rec.stream and rec.outcome == "ok" and rec.finish_reason == "stop"
    assert rec.response_text and rec.response_text.startswith(("Happy", "Here", "Good"))
    assert rec.reasoning and rec.usage.output_tokens


def test_openai_stream_parsed_by_sdk_matches_record(proxy: ServerProcess, tmp_path: Path) -> None:
    """The text the SDK assembles from the stream equals the record's response text."""
    stream = _oa(proxy).chat.completions.create(
        model="gpt-sim", stream=True, messages=[{"role": "user", "content": "Name three rivers."}]
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    [rec] = records(tmp_path / "logs", 1)
    assert rec.response_text == text


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_calls(proxy: ServerProcess, tmp_path: Path, stream: bool) -> None:
    """OpenAI tool calls (whole and streamed in fragments) are recorded with their arguments."""
    client = _oa(proxy)
    msgs = [{"role": "user", "content": "What's the weather in Oslo?"}]
    if stream:
        name, args = "", ""
        for chunk in client.chat.completions.create(model="gpt-sim", messages=msgs, tools=TOOLS_OPENAI, stream=True):
            for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
    else:
        call = client.chat.completions.create(model="gpt-sim", messages=msgs, tools=TOOLS_OPENAI)
        tc = call.choices[0].message.tool_calls[0]
        name, args = tc.function.name, tc.function.arguments
    [rec] = records(tmp_path / "logs", 1)
    assert rec.tools == ["get_weather"]
    assert [(t.name, t.arguments) for t in rec.tool_calls] == [(name, args)] == [("get_weather", '{"city":"example"}')]
    assert rec.finish_reason == "tool_calls"


def test_anthropic_non_stream_with_thinking(proxy: ServerProcess, sim: ServerProcess, tmp_path: Path) -> None:
    """An Anthropic message with a thinking block is passed intact; the record holds the thinking."""
    client = _an(proxy)
    raw = client.messages.with_raw_response.create(
        model="claude-sim",
        max_tokens=256,
        thinking={"type": "enabled", "budget_tokens": 128},
        system="You are helpful.",
        messages=[{"role": "user", "content": "What is 12 * 12?"}],
    )
    assert hashlib.sha256(raw.http_response.content).hexdigest() == _sent_by_upstream(sim, raw.headers["x-request-id"])
    msg = raw.parse()
    thinking = next(b for b in msg.content if b.type == "thinking").thinking
    text = next(b for b in msg.content if b.type == "text").text
    [rec] = records(tmp_path / "logs", 1)
    assert (rec.dialect, rec.model, rec.outcome) == ("anthropic", "claude-sim", "ok")
    assert [(m.role, m.text) for m in rec.messages] == [("system", "You are helpful."), ("user", "What is 12 * 12?")]
    assert rec.reasoning == thinking and rec.response_text == text
    assert rec.finish_reason == "end_turn"
    assert rec.usage.input_tokens == msg.usage.input_tokens


def test_anthropic_stream_with_thinking_byte_identical(
    proxy: ServerProcess, sim: ServerProcess, tmp_path: Path
) -> None:
    """An Anthropic SSE stream with thinking_delta events is byte-identical and fully recorded."""
    client = _an(proxy)
    with client.messages.with_streaming_response.create(
        model="claude-sim",
        max_tokens=256,
        stream=True,
        thinking={"type": "enabled", "budget_tokens": 128},
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is 40 + 2?"}]}],
    ) as resp:
        got = b"".join(resp.iter_bytes())
        rid = resp.headers["x-request-id"]
    assert hashlib.sha256(got).hexdigest() == _sent_by_upstream(sim, rid)
    assert b"thinking_delta" in got and got.rstrip().endswith(b'{"type":"message_stop"}')
    deltas = [
        json.loads(line[len(b"data: ") :])["delta"]
        for line in got.splitlines()
        if line.startswith(b"data: ") and b'"content_block_delta"' in line
    ]
    thinking = "".join(d.get("thinking", "") for d in deltas if d["type"] == "thinking_delta")
    text = "".join(d.get("text", "") for d in deltas if d["type"] == "text_delta")
    [rec] = records(tmp_path / "logs", 1)
    assert rec.stream and rec.reasoning == thinking and rec.response_text == text and thinking and text
    assert rec.finish_reason == "end_turn" and rec.usage.output_tokens


def test_anthropic_sdk_stream_helper(proxy: ServerProcess, tmp_path: Path) -> None:
    """The SDK's streaming helper assembles the same message the record holds."""
    with _an(proxy).messages.stream(
        model="claude-sim",
        max_tokens=256,
        thinking={"type": "enabled", "budget_tokens": 128},
        messages=[{"role": "user", "content": "Tell me about otters."}],
    ) as stream:
        final = stream.get_final_message()
    [rec] = records(tmp_path / "logs", 1)
    assert rec.response_text == next(b.text for b in final.content if b.type == "text")
    assert rec.reasoning == next(b.thinking for b in final.content if b.type == "thinking")


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use(proxy: ServerProcess, tmp_path: Path, stream: bool) -> None:
    """Anthropic tool_use blocks (and streamed input_json_delta) are recorded as tool calls."""
    client = _an(proxy)
    kwargs = dict(
        model="claude-sim",
        max_tokens=256,
        tools=TOOLS_ANTHROPIC,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    )
    if stream:
        with client.messages.stream(**kwargs) as s:  # type: ignore[arg-type]
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kwargs)  # type: ignore[arg-type]
    block = next(b for b in msg.content if b.type == "tool_use")
    [rec] = records(tmp_path / "logs", 1)
    assert rec.tools == ["get_weather"]
    assert [(t.name, t.id) for t in rec.tool_calls] == [("get_weather", block.id)]
    assert __import__("json").loads(rec.tool_calls[0].arguments) == block.input == {"city": "example"}
    assert rec.finish_reason == "tool_use"


def test_tool_result_turns_are_normalised(proxy: ServerProcess, tmp_path: Path) -> None:
    """A conversation with an Anthropic tool result is normalised into tool turns."""
    _an(proxy).messages.create(
        model="claude-sim",
        max_tokens=64,
        messages=[
            {"role": "user", "content": "Weather in Rome?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Rome"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 24C"}]},
        ],
    )
    [rec] = records(tmp_path / "logs", 1)
    roles = [(m.role, m.text, m.tool_call_id) for m in rec.messages]
    assert roles == [("user", "Weather in Rome?", None), ("assistant", "", None), ("tool", "Sunny, 24C", "toolu_1")]
    assert rec.messages[1].tool_calls[0].arguments == '{"city":"Rome"}'


def test_many_exchanges_one_record_each(proxy: ServerProcess, tmp_path: Path) -> None:
    """Each of many mixed exchanges yields exactly one record, with its own id."""
    oa, an = _oa(proxy), _an(proxy)
    ids = []
    for i in range(10):
        r1 = oa.chat.completions.with_raw_response.create(
            model="gpt-sim", stream=bool(i % 2), messages=[{"role": "user", "content": f"question {i}"}]
        )
        if i % 2:
            for _ in r1.parse():
                pass
        ids.append(r1.headers["x-cuewatch-request-id"])
        r2 = an.messages.with_raw_response.create(
            model="claude-sim", max_tokens=32, messages=[{"role": "user", "content": f"q {i}"}]
        )
        ids.append(r2.headers["x-cuewatch-request-id"])
    recs = records(tmp_path / "logs", 20)
    assert sorted(r.id for r in recs) == sorted(ids)
