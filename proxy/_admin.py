"""The proxy's admin API, behind a bearer token (`CUEWATCH_ADMIN_TOKEN`; off without one):

- `POST /admin/reload`: reload the policy file (422 with the error when it does not load);
- `GET /admin/silences`, `POST /admin/silences {matchers, duration, comment}`,
  `DELETE /admin/silences/ID`: silences in the alert store.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from monitor.alerts.outbox import AlertStore
from monitor.asgi import BodyTooLarge, ClientGone, Receive, Scope, Send, read_body, send_json
from monitor.evidence.web import access
from monitor.policy import seconds
from monitor.reload import PolicyHolder


class AdminAPI:
    def __init__(self, token: str | None, holder: PolicyHolder) -> None:
        self.token = token
        self.holder = holder
        self.outbox: AlertStore | None = None  # set once the proxy has started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/admin/reload" and scope["method"] == "POST":
            await self.reload(scope, send)
        else:
            await self.silences(scope, receive, send)

    async def _authorised(self, scope: Scope, send: Send) -> bool:
        allowed = access(scope, self.token)
        if allowed == "off":
            await send_json(send, 403, {"status": "disabled", "error": "admin API is off: set CUEWATCH_ADMIN_TOKEN"})
        elif allowed == "denied":
            await send_json(send, 401, {"status": "unauthorized", "error": "wrong or missing admin token"})
        return allowed == "ok"

    async def silences(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET /admin/silences, POST /admin/silences {matchers, duration, comment}, DELETE /admin/silences/ID."""
        if not await self._authorised(scope, send):
            return
        assert self.outbox is not None
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == "/admin/silences":
            items = await asyncio.to_thread(self.outbox.silences)
            await send_json(send, 200, [s.__dict__ for s in items])
        elif method == "POST" and path == "/admin/silences":
            try:
                doc = orjson.loads(await read_body(receive, 64 * 1024, None))
                matchers, duration_s, comment, by = _silence_request(doc)
                silence = await asyncio.to_thread(self.outbox.add_silence, matchers, duration_s, comment, by)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, BodyTooLarge, ClientGone) as exc:
                await send_json(send, 400, {"error": f"expected {{matchers: {{...}}, duration: '2h'}}: {exc}"})
                return
            await send_json(send, 201, silence.__dict__)
        elif method == "DELETE" and path.startswith("/admin/silences/"):
            ok = await asyncio.to_thread(self.outbox.expire_silence, path.rsplit("/", 1)[-1])
            await send_json(send, 200 if ok else 404, {"expired": ok})
        else:
            await send_json(send, 404, {"error": f"no route {method} {path}"})

    async def reload(self, scope: Scope, send: Send) -> None:
        if not await self._authorised(scope, send):
            return
        ok, message = await self.holder.areload()  # parsed off the loop, under a time limit
        status = 200 if ok else (409 if self.holder.path is None else 422)
        await send_json(send, status, {"status": "reloaded" if ok else "rejected", "message": message})


MAX_SILENCE_S = 90 * 86400.0


def _silence_request(doc: Any) -> tuple[dict[str, str], float, str, str]:
    """The fields of POST /admin/silences, checked: string matchers and texts, a finite duration."""
    matchers = doc["matchers"]
    if not isinstance(matchers, dict) or not all(isinstance(v, str) for v in matchers.values()):
        raise ValueError("matchers must map label names to strings")
    comment, by = doc.get("comment", ""), doc.get("created_by", "admin-api")
    if not isinstance(comment, str) or not isinstance(by, str):
        raise ValueError("comment and created_by must be strings")
    duration_s = seconds(str(doc["duration"]))
    if not 0 < duration_s <= MAX_SILENCE_S:
        raise ValueError(f"duration must be more than 0 and at most 90d, got {doc['duration']!r}")
    return {str(k): v for k, v in matchers.items()}, duration_s, comment, by
