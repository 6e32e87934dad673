"""Hostile input for the proxy's surfaces, shared by the CI fuzz tests (a few hundred cases) and
`bench/fuzz.py` (the long run): request bodies for the three model endpoints, and admin API
calls. Each `send_*` makes one real HTTP request and says what happened.

A case fails when the proxy answers 5xx of its own making (the upstream here is the simulator,
which never answers 5xx unless told to, so any 5xx is the proxy's), or when an admin call without
the right bearer token is accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import strategies as st

MODEL_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "responses": "/v1/responses"}
# The proxy's own refusals (the request never reached the upstream), named in x-cuewatch-error.
REJECTED = ("invalid_json", "empty_body", "unsupported_media_type", "request_too_large")

_text = st.text(max_size=12)
_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | _text
_KEYS = ["type", "role", "content", "text", "id", "name", "input", "output", "tool_use_id", "call_id", "arguments"]
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS) | _text, inner, max_size=4),
    max_leaves=25,
)
_TOP = [
    "model",
    "messages",
    "input",
    "instructions",
    "system",
    "tools",
    "functions",
    "stream",
    "metadata",
    "n",
    "max_tokens",
    "previous_response_id",
]
_turn = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer"]) | _json},
    optional={"content": _json, "tool_calls": _json, "tool_call_id": _json, "name": _json},
)


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


model_bodies = st.one_of(
    # plausible requests with hostile fields
    st.fixed_dictionaries(
        {"model": st.just("fuzz-model") | _json, "messages": st.lists(_turn, max_size=4) | _json},
        optional={k: _json for k in _TOP if k not in ("model", "messages")},
    ),
    # any JSON at all
    _json.map(lambda v: v),
    # deep nesting around the limits of the JSON readers and writers
    st.sampled_from([200, 254, 256, 600, 1000, 1100]).map(
        lambda n: {"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": _deep(n)}
    ),
)
raw_bodies = st.binary(max_size=64) | st.sampled_from([b"", b"{", b"[]", b"null", b'{"a":1e999999}', b"\xff\xfe"])


@dataclass
class Tally:
    """What the cases did, per surface."""

    cases: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # proxy-made 5xx, admin calls let through
    forwarded: dict[str, str] = field(default_factory=dict)  # request id the upstream saw -> the case

    def count(self, surface: str) -> None:
        self.cases[surface] = self.cases.get(surface, 0) + 1

    def fail(self, what: str) -> str:
        self.failures.append(what)
        return what


def send_model_call(client: httpx.Client, base: str, dialect: str, body: bytes, tally: Tally) -> str | None:
    """One model call; the failure it shows (also kept in `tally`), or None."""
    tally.count(f"model:{dialect}")
    r = client.post(base + MODEL_PATHS[dialect], content=body, headers={"content-type": "application/json"})
    if r.status_code >= 500:
        return tally.fail(f"{dialect} {r.status_code} {body[:200]!r}: {r.text[:200]}")
    if r.headers.get("x-cuewatch-error") not in REJECTED:
        tally.forwarded[r.headers["x-cuewatch-request-id"]] = f"{dialect} {r.status_code} {body[:120]!r}"
    return None


def encode(doc: Any) -> bytes:
    try:
        return json.dumps(doc).encode()
    except (ValueError, RecursionError):
        return b'{"model": "m"}'


# Admin API: any method, path, authorization and body.
admin_calls = st.tuples(
    st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    st.sampled_from(["/admin/silences", "/admin/silences/x", "/admin/reload", "/admin/", "/admin/silences/%2e%2e"])
    | _text.map(lambda t: "/admin/" + t),
    st.sampled_from(["good", "none", "no-bearer", "wrong", "basic"]),
    _json
    | st.fixed_dictionaries(
        {"matchers": _json, "duration": _json | st.sampled_from(["1h", "90d", "91d", "999999999999999d", "-1h", "0s"])},
        optional={"comment": _json, "created_by": _json},
    )
    | st.just(_deep(1000)),
)


def send_admin(
    client: httpx.Client, base: str, token: str, call: tuple[str, str, str, Any], tally: Tally
) -> str | None:
    """One admin call; the failure it shows (also kept in `tally`), or None."""
    method, path, auth, body = call
    tally.count("admin")
    headers = {
        "good": {"authorization": f"Bearer {token}"},
        "none": {},
        "no-bearer": {"authorization": token},
        "wrong": {"authorization": "Bearer nope"},
        "basic": {"authorization": "Basic dXNlcjpwYXNz"},
    }[auth]
    try:
        r = client.request(method, base + path, content=encode(body), headers=headers)
    except httpx.InvalidURL:
        return None
    if r.status_code >= 500:
        return tally.fail(f"admin {method} {path} {auth} {r.status_code}: {r.text[:200]}")
    if auth != "good" and r.status_code < 400:
        return tally.fail(f"admin {method} {path} accepted with auth={auth}")
    return None
