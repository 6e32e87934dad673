"""Generic webhook: a JSON body, an idempotency key, and an HMAC-SHA256 signature.

Verifying a delivery (the documented recipe):

    timestamp = request.headers["X-Cuewatch-Timestamp"]
    expected = hmac.new(secret, timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(request.headers["X-Cuewatch-Signature"], "v1=" + expected)
    # and reject timestamps older than a few minutes (replay protection)

`Idempotency-Key` is the same on every retry of one notification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, ClassVar

import httpx

from monitor.alerts.sinks.base import Notification, post
from monitor.plugins import SINKS
from monitor.policy import WebhookReceiver


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@SINKS.register("webhook")
class WebhookSink:
    """A receiver's `webhook: {url: {env: ...}, secret: {file: ...}}`; read when the sink is built."""

    Params: ClassVar[type[WebhookReceiver]] = WebhookReceiver
    test_params: ClassVar[dict[str, Any]] = {"url": {"env": "CUEWATCH_CONTRACT_URL"}}

    def __init__(self, *, receiver: str, client: httpx.AsyncClient, **params: Any) -> None:
        p = self.Params.model_validate(params)
        self.name, self._url, self._client = receiver, p.url.read().get_secret_value(), client
        self._secret = p.secret.read().get_secret_value() if p.secret is not None else None

    def __repr__(self) -> str:  # never shows the URL or the secret
        return f"WebhookSink(name={self.name!r})"

    async def send(self, notification: Notification) -> None:
        body = json.dumps({"version": 1, **notification.payload()}, sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "idempotency-key": notification.idempotency_key,
            "x-cuewatch-timestamp": ts,
        }
        if self._secret:
            headers["x-cuewatch-signature"] = sign(self._secret, ts, body)
        await post(self._client, self._url, content=body, headers=headers)
