"""The evidence pages behind the admin token, served by the sidecar and the worker:

- `GET /admin/findings?detector=&experiment=&severity=&since=`: the findings list (`format=json`: JSON);
- `GET /admin/findings/ID`: one finding's evidence page (`format=json`: the finding as stored);
- `GET|POST /admin/login`: a form that trades the admin token for a session cookie, so a link
  from an alert opens in a browser (`Authorization: Bearer TOKEN` works as well);
- `GET /admin/static/plotly.min.js`: the charting library, from the installed plotly package.

The cookie holds an HMAC of the token, never the token; it is HttpOnly and SameSite=Lax, and
Secure when `public_url` is https.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote

from monitor import charts
from monitor.asgi import BodyTooLarge, ClientGone, Receive, Scope, Send, header, read_body, send_json, send_text
from monitor.evidence import page
from monitor.evidence.index import LogIndex
from monitor.settings import Settings

COOKIE = "cuewatch_session"
HTML = b"text/html; charset=utf-8"
Access = Literal["ok", "off", "denied"]


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"cuewatch evidence session", hashlib.sha256).hexdigest()


def access(scope: Scope, token: str | None) -> Access:
    """Whether a request carries the admin token (bearer header) or a session made from it."""
    if token is None:
        return "off"
    scheme, _, given = (header(scope["headers"], b"authorization") or b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
        return "ok"
    cookies = (header(scope["headers"], b"cookie") or b"").decode("latin-1")
    for part in cookies.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and hmac.compare_digest(value.encode(), session_value(token).encode()):
            return "ok"
    return "denied"


class EvidencePages:
    """The read-only evidence pages over the findings and exchanges in `logs`."""

    def __init__(
        self,
        token: str | None,
        logs: list[Path],
        *,
        public_url: str | None = None,
        log_location: str | None = None,
        policy: Path | None = None,
    ) -> None:
        self.token = token
        self.policy = str(policy) if policy is not None else "POLICY"
        self.index = LogIndex(logs)
        self.secure = bool(public_url and public_url.startswith("https://"))
        self.log_location = log_location or " ".join(map(str, logs))

    @classmethod
    def from_settings(cls, settings: Settings) -> EvidencePages:
        return cls(
            settings.admin_secret(),
            [settings.log_dir, *(p for p in settings.evidence_logs if p != settings.log_dir)],
            public_url=settings.public_base(),
            log_location=settings.log_shown(),
            policy=settings.policy,
        )

    @staticmethod
    def handles(path: str) -> bool:
        return path == "/admin/login" or path.startswith(("/admin/findings", "/admin/static/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/admin/login":
            await (self.login(receive, send) if method == "POST" else self._login_form(scope, send))
            return
        allowed = access(scope, self.token)
        if allowed == "off":
            await send_json(send, 403, {"status": "disabled", "error": "admin API is off: set CUEWATCH_ADMIN_TOKEN"})
            return
        if allowed == "denied":
            await self._denied(scope, send)
            return
        if method != "GET":
            await send_json(send, 405, {"error": f"{method} not allowed on {path}"})
        elif path == "/admin/static/plotly.min.js":
            await self.static(send)
        elif path in ("/admin/findings", "/admin/findings/"):
            await self.listing(scope, send)
        else:
            await self.one(path.removeprefix("/admin/findings/"), scope, send)

    # ------------------------------------------------------------------ pages

    async def listing(self, scope: Scope, send: Send) -> None:
        q = _query(scope)
        try:
            since = datetime.fromisoformat(q["since"]) if q.get("since") else None
        except ValueError:
            await send_json(send, 400, {"error": f"since: not an ISO time: {q['since']!r}"})
            return
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        found = await asyncio.to_thread(
            self.index.findings,
            detector=q.get("detector") or None,
            experiment=q.get("experiment") or None,
            severity=q.get("severity") or None,
            since=since,
        )
        if q.get("format") == "json":
            await send_json(send, 200, [f.model_dump(mode="json", exclude={"path"}) for f in found])
            return
        await send_text(send, 200, page.findings_list(found, self.index.facets(), q), HTML)

    async def one(self, ident: str, scope: Scope, send: Send) -> None:
        finding = await asyncio.to_thread(self.index.finding, ident)
        if finding is None:
            await send_json(send, 404, {"error": f"no finding {ident!r} in {self.log_location}"})
            return
        if _query(scope).get("format") == "json":
            await send_json(send, 200, finding.model_dump(mode="json"))
            return
        ids = page.example_ids(finding)
        examples = await asyncio.to_thread(self.index.exchanges, ids)
        await send_text(
            send, 200, page.finding_page(finding, examples, logs=self.log_location, policy=self.policy), HTML
        )

    async def static(self, send: Send) -> None:
        data = await asyncio.to_thread(charts.plotly_js().encode)
        headers = [
            (b"content-type", b"text/javascript; charset=utf-8"),
            (b"content-length", str(len(data)).encode()),
            (b"cache-control", b"private, max-age=86400"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": False})

    # ------------------------------------------------------------------ sign in

    async def _denied(self, scope: Scope, send: Send) -> None:
        wants_html = b"text/html" in (header(scope["headers"], b"accept") or b"")
        if not wants_html:
            await send_json(send, 401, {"status": "unauthorized", "error": "wrong or missing admin token"})
            return
        target = scope["path"] + (("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else "")
        await _redirect(send, "/admin/login?next=" + quote(target, safe=""))

    async def _login_form(self, scope: Scope, send: Send) -> None:
        await send_text(send, 200, page.login_page(_safe_next(_query(scope).get("next"))), HTML)

    async def login(self, receive: Receive, send: Send) -> None:
        try:
            form = parse_qs((await read_body(receive, 16 * 1024, None)).decode("utf-8", "replace"))
        except (BodyTooLarge, ClientGone):
            await send_json(send, 400, {"error": "form too large"})
            return
        target = _safe_next(form.get("next", [""])[0])
        given = form.get("token", [""])[0]
        if self.token is None:
            await send_text(send, 403, page.login_page(target, "The admin API is off: set CUEWATCH_ADMIN_TOKEN."), HTML)
            return
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await send_text(send, 401, page.login_page(target, "Wrong token."), HTML)
            return
        cookie = f"{COOKIE}={session_value(self.token)}; Path=/admin; HttpOnly; SameSite=Lax; Max-Age=43200"
        await _redirect(send, target, [(b"set-cookie", (cookie + ("; Secure" if self.secure else "")).encode())])


def _query(scope: Scope) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}


def _safe_next(target: str | None) -> str:
    """Only paths of the evidence pages: never a redirect to another site."""
    if target and target.startswith("/admin/findings") and "//" not in target and "\\" not in target:
        return target
    return "/admin/findings"


async def _redirect(send: Send, location: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0"), *(extra or [])]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class EvidenceServer:
    """`cuewatch evidence`: the evidence pages alone over some log folders (a copy of a pod's
    logs, or the demo's after it ends), with /healthz."""

    def __init__(self, pages: EvidencePages) -> None:
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (msg := await receive())["type"] != "lifespan.shutdown":
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http":
            path = scope["path"]
            if path == "/healthz":
                await send_json(send, 200, {"status": "ok"})
            elif path == "/":
                await _redirect(send, "/admin/findings")
            elif EvidencePages.handles(path):
                await self.pages(scope, receive, send)
            else:
                await send_json(send, 404, {"error": f"no route {path}"})
