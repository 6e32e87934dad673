"""Which API dialect a path speaks, and errors in that dialect's own shape."""

from __future__ import annotations

from typing import Any

from monitor.records import Dialect

MODEL_ROUTES: dict[str, Dialect] = {
    "/v1/chat/completions": "openai",
    "/v1/messages": "anthropic",
}

_OPENAI_TYPES = {400: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error"}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
}


def dialect_of(path: str) -> Dialect:
    """The dialect of any /v1 path (Anthropic's live under /v1/messages...)."""
    return "anthropic" if path.startswith(("/v1/messages", "/v1/complete")) else "openai"


def error_body(dialect: Dialect, status: int, message: str, code: str) -> dict[str, Any]:
    """An error body a client SDK of that dialect parses into its own error type."""
    if dialect == "anthropic":
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind = _OPENAI_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
