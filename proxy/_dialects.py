"""Errors in a dialect's own shape (the Responses API shares OpenAI's)."""

from __future__ import annotations

from typing import Any

from monitor.records import Dialect

_OPENAI_TYPES = {400: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error"}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
}


def error_body(dialect: Dialect, status: int, message: str, code: str) -> dict[str, Any]:
    """An error body a client SDK of that dialect parses into its own error type."""
    if dialect == "anthropic":
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind = _OPENAI_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
