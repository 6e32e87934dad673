"""A minimal aiohttp pass-through proxy: the floor any proxy's overhead is measured against.

    python -m bench._passthrough --port 8080 --upstream http://127.0.0.1:9000

Forwards every request (method, path, body, headers but Host) through one shared client session
and streams the answer back chunk by chunk; nothing recorded, nothing parsed. /healthz answers
200 for the readiness check.
"""

from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

HOP = {"host", "content-length", "transfer-encoding", "connection"}


def app(upstream: str) -> web.Application:
    session: aiohttp.ClientSession | None = None

    async def start(_: web.Application) -> None:
        nonlocal session
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def stop(_: web.Application) -> None:
        if session is not None:
            await session.close()

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def forward(request: web.Request) -> web.StreamResponse:
        assert session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.read()
        async with session.request(request.method, upstream + request.path_qs, data=body, headers=headers) as up:
            out = web.StreamResponse(status=up.status)
            for k, v in up.headers.items():
                if k.lower() not in HOP:
                    out.headers[k] = v
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    application = web.Application()
    application.on_startup.append(start)
    application.on_cleanup.append(stop)
    application.router.add_get("/healthz", healthz)
    application.router.add_route("*", "/{tail:.*}", forward)
    return application


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app(args.upstream.rstrip("/")), host="127.0.0.1", port=args.port, print=None, access_log=None)
