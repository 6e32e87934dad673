"""Run an ASGI app under uvicorn the way every cuewatch server runs (uvloop + httptools)."""

from __future__ import annotations

import importlib.util
from typing import Any


def uvicorn_config(app: Any, host: str, port: int, log_level: str = "info", **extra: Any) -> Any:
    import uvicorn

    fast = importlib.util.find_spec("uvloop") is not None
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if fast else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="on",
        access_log=False,
        server_header=False,  # the upstream's own headers pass through untouched
        date_header=False,
        log_config=None,  # logging is configured by monitor.logs
        log_level=log_level,
        timeout_graceful_shutdown=30,
        proxy_headers=False,  # no X-Forwarded-* rewriting: one wrapper less per request
        **extra,
    )


def run(app: Any, host: str, port: int, log_level: str = "info") -> None:
    import uvicorn

    uvicorn.Server(uvicorn_config(app, host, port, log_level)).run()
