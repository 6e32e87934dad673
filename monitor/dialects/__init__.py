"""Read request/response bodies of every dialect into the normalised record fields.

Pure functions over parsed JSON (and SSE events for streams); tolerant of fields they do not
know, since upstreams add fields over time. Nothing here runs on the request path.

Dialects: `openai` (chat completions), `anthropic` (messages), `responses` (the OpenAI
Responses API).
"""

from __future__ import annotations

from monitor.dialects import _chat, _responses
from monitor.dialects._common import JSON, ParsedResponse, error_message
from monitor.records import Message
from monitor.sse import Event

__all__ = ["ParsedResponse", "error_message", "parse_response", "parse_stream", "request_messages", "request_tools"]


def request_messages(dialect: str, req: JSON) -> list[Message]:
    """The conversation of a request as normalised messages (system first)."""
    if dialect == "responses":
        return _responses.request_messages(req)
    return _chat.request_messages(dialect, req)


def request_tools(dialect: str, req: JSON) -> list[str]:
    """Names of the tools a request offers."""
    if dialect == "responses":
        return _responses.request_tools(req)
    return _chat.request_tools(dialect, req)


def parse_response(dialect: str, body: JSON) -> ParsedResponse:
    """A complete (non-streamed) response body."""
    if dialect == "responses":
        return _responses.parse_response(body)
    return _chat.parse_response(dialect, body)


def parse_stream(dialect: str, events: list[Event]) -> ParsedResponse:
    """A streamed response, from its SSE events."""
    if dialect == "responses":
        return _responses.parse_stream(events)
    return _chat.parse_stream(dialect, events)


# Where each dialect's model calls go on its own provider's API (probes and resends use them).
PATHS: dict[str, str] = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "responses": "/v1/responses"}


def build_request(dialect: str, model: str, max_tokens: int, turns: list[JSON]) -> JSON:
    """A plain text request in the dialect's shape from `{role, content}` turns (system and
    developer turns become the dialect's system prompt)."""
    system = "\n\n".join(str(t["content"]) for t in turns if t["role"] in ("system", "developer"))
    talk = [t for t in turns if t["role"] not in ("system", "developer")]
    if dialect == "anthropic":
        body: JSON = {"model": model, "max_tokens": max_tokens, "messages": talk}
        if system:
            body["system"] = system
        return body
    if dialect == "responses":
        body = {"model": model, "max_output_tokens": max_tokens, "input": talk}
        if system:
            body["instructions"] = system
        return body
    return {"model": model, "max_tokens": max_tokens, "messages": list(turns)}


def auth_headers(dialect: str, key: str | None) -> dict[str, str]:
    """Headers of a JSON request to the dialect's provider, with its credential if given."""
    headers = {"content-type": "application/json"}
    if dialect == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
        if key:
            headers["x-api-key"] = key
    elif key:
        headers["authorization"] = f"Bearer {key}"
    return headers
