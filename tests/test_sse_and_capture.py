"""SSE parsing under any chunking, and normalising captures of both dialects."""

from __future__ import annotations

import gzip
import itertools
import zlib
from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from monitor.capture import Capture, to_exchange
from monitor.sse import Event, parse_events

STREAM = (
    b': comment\n\nevent: message_start\ndata: {"a": 1}\n\n'
    b"data: line one\r\ndata: line two\r\n\r\n"
    b"id: 7\rdata: cr only\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    Event("message_start", '{"a": 1}'),
    Event("message", "line one\nline two"),
    Event("message", "cr only", "7"),
    Event("message", "[DONE]", "7"),  # the last event id persists (WHATWG spec)
]


def test_sse_whole_stream() -> None:
    """Comments are skipped; LF, CRLF and CR line ends and multi-line data are parsed."""
    assert parse_events([STREAM]) == EXPECTED


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12))
def test_sse_any_chunking(cuts: list[int]) -> None:
    """The same events come out however the bytes were split into chunks."""
    bounds = [0, *sorted(set(cuts)), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert parse_events(chunks) == EXPECTED


def test_sse_truncated_stream_flushes_last_event() -> None:
    """A stream cut before its blank line still yields the event it was carrying."""
    assert parse_events([b"data: partial"]) == [Event("message", "partial")]
    assert parse_events([b"data: cut after a lone CR\r"]) == [Event("message", "cut after a lone CR")]


def test_sse_long_stream_in_one_chunk() -> None:
    """A whole captured stream of many events (how records parse it) gives every event."""
    body = b"".join(b"data: %d\r\n\n" % i for i in range(20_000))
    events = parse_events([body])
    assert len(events) == 20_000 and events[-1] == Event("message", "19999")


def _cap(body: bytes, dialect: str = "openai", ctype: str = "application/json", **kw: object) -> Capture:
    return Capture(
        id="x",
        time=datetime.now(UTC),
        dialect=dialect,
        path="/v1/chat/completions",  # type: ignore[arg-type]
        request={"model": "m", "messages": [{"role": "user", "content": "secret prompt"}]},
        status=200,
        outcome="ok",
        body=body,
        content_type=ctype,
        **kw,
    )  # type: ignore[arg-type]


OA = {
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi", "reasoning": "think"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}


def test_gzip_and_deflate_bodies_are_decoded() -> None:
    """Compressed upstream bodies (passed to the client as-is) are decoded for the record."""
    raw = orjson.dumps(OA)
    for enc, data in (("gzip", gzip.compress(raw)), ("deflate", zlib.compress(raw))):
        ex = to_exchange(_cap(data, content_encoding=enc))
        assert (ex.response_text, ex.reasoning, ex.usage.input_tokens) == ("hi", "think", 3), enc
    ex = to_exchange(_cap(b"\x00\x01", content_encoding="br"))
    assert ex.response_text is None and ex.error and "br" in ex.error


def test_redaction_replaces_prompt_text() -> None:
    """With redaction on, prompts become digests; the response stays for the detectors."""
    ex = to_exchange(_cap(orjson.dumps(OA)), redact_prompts=True)
    assert ex.redacted and "secret prompt" not in ex.model_dump_json()
    assert ex.messages[0].text.startswith("[redacted len=13 sha256=") and ex.response_text == "hi"


def test_openai_stream_with_reasoning_and_refusal_fields() -> None:
    """OpenAI-compatible streams with `reasoning` (not `reasoning_content`) are understood."""
    frames = [
        {"choices": [{"index": 0, "delta": {"reasoning": "Let me think. "}}]},
        {"choices": [{"index": 0, "delta": {"reasoning": "Done."}}]},
        {"choices": [{"index": 0, "delta": {"content": "<think>x</think>Answer"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
    ]
    body = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames) + b"data: [DONE]\n\n"
    ex = to_exchange(_cap(body, ctype="text/event-stream"))
    assert ex.reasoning == "Let me think. Done."
    assert ex.response_text == "<think>x</think>Answer"  # tags stay raw for the detectors
    assert ex.finish_reason == "length" and ex.stream


def _sse(frames: list[dict]) -> bytes:
    return b"".join(b"event: " + f["type"].encode() + b"\ndata: " + orjson.dumps(f) + b"\n\n" for f in frames)


def test_anthropic_stream_interleaved_blocks_are_assembled() -> None:
    """Thinking, text and tool-input deltas interleaved across blocks end up in their own blocks."""
    frames = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 4}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "So: "}},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t", "name": "f"}},
    ]
    for i in range(300):
        frames.append({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "t"}})
        frames.append({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": f"{i} "}})
    frames += [
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"q": '}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
    ]
    ex = to_exchange(_cap(_sse(frames), dialect="anthropic", ctype="text/event-stream"))
    assert ex.reasoning == "t" * 300
    assert ex.response_text == "So: " + "".join(f"{i} " for i in range(300))
    assert [(c.name, c.arguments) for c in ex.tool_calls] == [("f", '{"q": 1}')]
    assert ex.finish_reason == "tool_use" and ex.usage.output_tokens == 9


def test_anthropic_block_started_again_drops_its_deltas() -> None:
    """A content block started a second time at the same index replaces what its deltas built."""
    frames = [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "dropped"}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "kept: "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "yes"}},
    ]
    ex = to_exchange(_cap(_sse(frames), dialect="anthropic", ctype="text/event-stream"))
    assert ex.response_text == "kept: yes"


def test_responses_stream_cut_short_is_assembled_from_deltas() -> None:
    """A Responses stream with no terminal event keeps what its item and delta events built; an
    item sent whole replaces what its deltas had built."""
    frames = [
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "message", "content": []}},
        *({"type": "response.output_text.delta", "output_index": 0, "delta": f"{i} "} for i in range(300)),
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": '{"dropped": '},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "true}"},
        {"type": "response.output_item.done", "output_index": 1, "item": {"type": "function_call", "name": "g",
                                                                            "arguments": "{}", "call_id": "c"}},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "late"},  # after done
    ]  # fmt: skip
    cap = _cap(_sse(frames), dialect="responses", ctype="text/event-stream")
    cap.path = "/v1/responses"
    ex = to_exchange(cap)
    assert ex.response_text == "".join(f"{i} " for i in range(300))
    assert [(c.name, c.arguments) for c in ex.tool_calls] == [("g", "{}")]


def test_anthropic_redacted_thinking_counted() -> None:
    """redacted_thinking blocks are counted as present but unreadable."""
    body = {
        "content": [
            {"type": "redacted_thinking", "data": "abc"},
            {"type": "thinking", "thinking": "t"},
            {"type": "text", "text": "ok"},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    ex = to_exchange(_cap(orjson.dumps(body), dialect="anthropic"))
    assert (ex.redacted_reasoning_blocks, ex.reasoning, ex.response_text) == (1, "t", "ok")


def test_openai_content_parts_and_legacy_roles() -> None:
    """List content with images and the legacy `function` role normalise to text and `tool`."""
    cap = _cap(orjson.dumps(OA))
    cap.request = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "rules"}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}],
            },
            {"role": "function", "name": "f", "content": "result"},
        ],
        "functions": [{"name": "f"}],
    }
    ex = to_exchange(cap)
    assert [(m.role, m.text) for m in ex.messages] == [
        ("developer", "rules"),
        ("user", "look\n[image]"),
        ("tool", "result"),
    ]
    assert ex.tools == ["f"]
