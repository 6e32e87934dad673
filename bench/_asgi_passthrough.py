"""The same minimal pass-through as `bench._passthrough`, as a raw ASGI app under uvicorn with
the settings every cuewatch server runs with (`monitor._serve`: uvloop, httptools): the floor of
the proxy's own server stack, to tell its cost from cuewatch's.

    python -m bench._asgi_passthrough --port 8080 --upstream http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp

from monitor import _serve

HOP = {b"host", b"content-length", b"transfer-encoding", b"connection"}


class PassThrough:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    conn = aiohttp.TCPConnector(limit=0)
                    self.session = aiohttp.ClientSession(connector=conn, auto_decompress=False)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    if self.session is not None:
                        await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k not in HOP}
        assert self.session is not None
        url = self.upstream + scope["path"]
        async with self.session.request(scope["method"], url, data=body, headers=headers) as up:
            out = [(k.encode(), v.encode()) for k, v in up.headers.items() if k.lower().encode() not in HOP]
            await send({"type": "http.response.start", "status": up.status, "headers": out})
            async for chunk in up.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    args = ap.parse_args()
    _serve.run(PassThrough(args.upstream.rstrip("/")), "127.0.0.1", args.port, "warning")
