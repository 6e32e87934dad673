"""Run an ASGI app under uvicorn the way every cuewatch server runs (uvloop + httptools)."""

from __future__ import annotations

import gc
import importlib.util
import sys
from typing import Any

#: The collector's first-generation threshold while serving (the interpreter's default: 700).
#: A proxy allocates a few hundred objects per request, nearly all freed by reference counting;
#: at the default, full collections ran every few seconds under load, each walking every live
#: object and holding the event loop for 50-250 ms (bench/proxy_overhead.py, concurrency 64).
GC_GEN0_THRESHOLD = 10_000

#: How long a thread may hold the interpreter lock while another waits (the interpreter's
#: default: 5 ms, a stall between a stream's chunks). A server's worker threads (normalising
#: records, computing features) hand the lock back to the event loop within this.
SWITCH_INTERVAL_S = 0.0005


def share_the_lock() -> None:
    """Shorten the switch interval for a process running worker threads beside its event loop."""
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))


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


def settle_heap() -> None:
    """Once the app has started: move what startup built (modules, the policy, the routes) out of
    the collector's reach, and collect less often, so that a full collection walks only what
    requests leave alive. (The embedding model, loaded later, is frozen by its loader.) What is
    frozen is still freed when nothing refers to it; only reference cycles among it, such as a
    policy replaced by a reload, stay until the process exits: a few objects per reload."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def run(app: Any, host: str, port: int, log_level: str = "info") -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            settle_heap()

    Server(uvicorn_config(app, host, port, log_level)).run()
