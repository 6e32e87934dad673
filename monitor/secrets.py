"""Text that looks like a credential, and its removal from anything cuewatch writes."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

# Provider keys (OpenAI sk-/sk-proj-, Anthropic sk-ant-, Google AIza), bearer tokens, Slack
# and Discord webhook paths, and credentials in query strings (`?key=`, `api_key=`, `access_token=`).
SECRET_VALUES = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+[A-Za-z0-9._\-]{8,}"
    r"|hooks\.slack\.com/services/[A-Za-z0-9/]+|discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]+"
    r"|(?<=[?&])(?:api[-_]?key|key|access[-_]?token|token)=[^&\s\"']+)",
    re.I,
)


# Substrings every match contains (lower-cased): a plain `in` check is ~30x faster than the
# case-blind pattern, and most text holds none of them.
_HINTS = ("sk-", "aiza", "bearer", "hooks.slack", "/api/webhooks/", "key=", "token=")


def scrub(text: str) -> str:
    """`text` with every credential-looking substring replaced by `[redacted]`."""
    lowered = text.lower()
    if not any(h in lowered for h in _HINTS):
        return text
    return SECRET_VALUES.sub("[redacted]", text)


def scrub_model(model: BaseModel) -> None:
    """Scrub every text field of a record, in place (nested models, lists and dicts included)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        cleaned = _scrubbed(value)
        if cleaned is not value:
            setattr(model, name, cleaned)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        out = scrub(value)
        return value if out == value else out
    if isinstance(value, BaseModel):
        scrub_model(value)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            cleaned = _scrubbed(item)
            if cleaned is not item:
                value[i] = cleaned
    elif isinstance(value, dict):
        for k, item in value.items():
            cleaned = _scrubbed(item)
            if cleaned is not item:
                value[k] = cleaned
    return value


def scrub_value(value: Any) -> Any:
    """A copy of a log value with credentials scrubbed (strings, and lists/tuples/dicts of them)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(v) for v in value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    return value
