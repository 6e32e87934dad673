"""Text that looks like a credential, and its removal from anything cuewatch writes."""

from __future__ import annotations

import re

# Provider keys (OpenAI sk-/sk-proj-, Anthropic sk-ant-, Google AIza), bearer tokens, Slack
# webhook paths, and credentials in query strings (`?key=`, `api_key=`, `access_token=`).
SECRET_VALUES = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+[A-Za-z0-9._\-]{8,}"
    r"|hooks\.slack\.com/services/[A-Za-z0-9/]+"
    r"|(?<=[?&])(?:api[-_]?key|key|access[-_]?token|token)=[^&\s\"']+)",
    re.I,
)


def scrub(text: str) -> str:
    """`text` with every credential-looking substring replaced by `[redacted]`."""
    return SECRET_VALUES.sub("[redacted]", text)
