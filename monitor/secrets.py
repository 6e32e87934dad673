"""Text that looks like a credential, and its removal from anything cuewatch writes."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

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


def may_hold_secret(text: str) -> bool:
    """False when `text` holds nothing `scrub` would replace (a quick test, no pattern)."""
    lowered = text.lower()
    return any(h in lowered for h in _HINTS)


def scrub(text: str) -> str:
    """`text` with every credential-looking substring replaced by `[redacted]`."""
    if not may_hold_secret(text):
        return text
    return SECRET_VALUES.sub("[redacted]", text)


def scrub_model(model: BaseModel) -> None:
    """Scrub every text field of a record, in place (nested models, lists and dicts included).

    Most records hold no credential, so the record's JSON is tested first and the fields are
    walked only when it may hold one: JSON escapes none of the hints' characters (no quote,
    backslash or control character; a test checks), so a field holding a hint shows it in the
    JSON too, subclasses' own fields included (`serialize_as_any`). Dumping costs less than
    walking."""
    try:
        if not may_hold_secret(model.model_dump_json(warnings=False, serialize_as_any=True)):
            return
    except PydanticSerializationError:  # a value JSON cannot hold: walk the fields
        pass
    _scrub_fields(model)


def _scrub_fields(model: BaseModel) -> None:
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
        _scrub_fields(value)
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
