"""The one place where aiohttp's errors become cuewatch's (`monitor.errors`).

    with upstream_errors("upstream"):
        async with session.post(...) as resp:
            ...

raises `UpstreamTimeout` for a timeout (aiohttp's own timeouts subclass `TimeoutError`) and
`UpstreamUnreachable` for a connection that could not be made or broke off, each chained to the
aiohttp error it replaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

from monitor.errors import UpstreamTimeout, UpstreamUnreachable


@contextmanager
def upstream_errors(what: str = "upstream") -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{what} did not answer in time") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamUnreachable(f"{what} unreachable: {type(exc).__name__}: {exc}") from exc
