"""The sink contract, shared HTTP delivery, and URL redaction."""

from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from monitor.policy import Receiver


class SinkError(Exception):
    """A delivery failed. `retryable` says whether to try again; `retry_after` (seconds) is the
    receiver's own wish (HTTP 429 Retry-After)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


@dataclass
class Notification:
    """What one delivery carries: a group's alerts (firing and newly resolved)."""

    receiver: str
    idempotency_key: str
    group: dict[str, str]
    alerts: list[dict[str, Any]]  # Alert.model_dump(mode="json")
    test: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "idempotency_key": self.idempotency_key,
            "group": self.group,
            "alerts": self.alerts,
            "test": self.test,
        }

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> Notification:
        return cls(p["receiver"], p["idempotency_key"], p["group"], p["alerts"], bool(p.get("test")))


@runtime_checkable
class Sink(Protocol):
    name: str

    async def send(self, notification: Notification) -> None: ...


def redact_url(url: str) -> str:
    """scheme://host/[redacted]: webhook paths and queries carry the secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}/[redacted]"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", value.strip()):
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


async def post(client: httpx.AsyncClient, url: str, *, content: bytes, headers: dict[str, str]) -> None:
    """POST and classify the outcome: 2xx ok; 408, 429, 5xx and network errors retryable;
    other 4xx not. Errors name the redacted URL only."""
    shown = redact_url(url)
    try:
        r = await client.post(url, content=content, headers=headers)
    except httpx.TimeoutException as exc:
        raise SinkError(f"{shown}: timed out ({type(exc).__name__})", retryable=True) from None
    except httpx.HTTPError as exc:
        raise SinkError(f"{shown}: {type(exc).__name__}", retryable=True) from None
    if r.status_code < 300:
        return
    detail = r.text[:200].replace("\n", " ")
    if r.status_code in (408, 429) or r.status_code >= 500:
        raise SinkError(
            f"{shown}: HTTP {r.status_code} {detail}",
            retryable=True,
            retry_after=_retry_after(r.headers.get("retry-after")),
            status=r.status_code,
        )
    raise SinkError(f"{shown}: HTTP {r.status_code} {detail}", retryable=False, status=r.status_code)


def build_sink(receiver: Receiver, client: httpx.AsyncClient) -> Sink:
    """The sink for a policy receiver (secrets read now, from env or file)."""
    from monitor.plugins import SINKS

    kind = receiver.type
    section = getattr(receiver, kind)
    return SINKS.create(kind, section.model_dump(exclude_unset=True), receiver=receiver.name, client=client)
