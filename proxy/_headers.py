"""Which headers cross the proxy: everything, credentials included, except hop-by-hop ones."""

from __future__ import annotations

from typing import Any

from monitor.asgi import Headers

# RFC 9110 7.6.1 hop-by-hop headers, plus the ones the HTTP client sets itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED_UP = HOP_BY_HOP | {b"host", b"content-length", b"expect"}


def upstream_request_headers(headers: Headers) -> dict[str, str]:
    """Client headers to send upstream: everything (credentials included) but hop-by-hop."""
    drop = set(_NOT_FORWARDED_UP)
    for name, value in headers:
        if name == b"connection":  # headers named in Connection are hop-by-hop too
            drop.update(t.strip().lower() for t in value.split(b","))
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k not in drop}


def client_response_headers(raw: Any) -> Headers:
    """Upstream response headers to send the client (aiohttp's raw_headers), minus hop-by-hop."""
    return [(k.lower(), v) for k, v in raw if k.lower() not in HOP_BY_HOP]
