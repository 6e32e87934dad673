"""Closed-loop HTTP load generator (run as its own process by bench/proxy_overhead.py).

Prints one JSON object: requests/s, latency percentiles (ms), time-to-first-byte percentiles for
streams, and the proxy's own x-cuewatch-overhead-ms header values when present.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

BODY = {
    "model": "bench-model",
    "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Tell me about tea."}],
}


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def main(
    url: str,
    concurrency: int,
    duration: float,
    warmup: float,
    stream: bool,
    prompt: str | None = None,
    api: str = "chat",
) -> dict[str, object]:
    doc = dict(BODY)
    if prompt:
        doc["messages"] = [{"role": "user", "content": prompt}]
    if api == "responses":  # the same conversation as a Responses API request
        turns = doc.pop("messages")
        doc["instructions"] = "\n".join(t["content"] for t in turns if t["role"] == "system")
        doc["input"] = [t for t in turns if t["role"] != "system"]
    body = json.dumps({**doc, "stream": stream}).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    lat: list[float] = []
    ttfb: list[float] = []
    overhead: list[float] = []
    errors = 0
    sent = 0  # every request answered, warm-up included (for CPU per request)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        t_start = time.perf_counter()
        t_measure = t_start + warmup
        t_end = t_measure + duration

        async def worker() -> None:
            nonlocal errors, sent
            while True:
                t0 = time.perf_counter()
                if t0 >= t_end:
                    return
                async with session.post(url, data=body, headers=headers) as r:
                    first = await r.content.readany()
                    t1 = time.perf_counter()
                    while await r.content.readany():
                        pass
                    t2 = time.perf_counter()
                    ok = r.status == 200 and first
                    oh = r.headers.get("x-cuewatch-overhead-ms")
                sent += 1
                if t0 >= t_measure:
                    if not ok:
                        errors += 1
                        continue
                    lat.append((t2 - t0) * 1000)
                    ttfb.append((t1 - t0) * 1000)
                    if oh is not None:
                        overhead.append(float(oh))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "concurrency": concurrency,
        "stream": stream,
        "requests": len(lat),
        "all_requests": sent,
        "errors": errors,
        "rps": len(lat) / duration,
        "p50_ms": pct(lat, 0.5),
        "p99_ms": pct(lat, 0.99),
        "ttfb_p50_ms": pct(ttfb, 0.5),
        "ttfb_p99_ms": pct(ttfb, 0.99),
        "overhead_header_p50_ms": pct(overhead, 0.5),
        "overhead_header_p99_ms": pct(overhead, 0.99),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--prompt", help="user message (default: a benign question)")
    ap.add_argument("--api", choices=["chat", "responses"], default="chat", help="request shape")
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(a.url, a.concurrency, a.duration, a.warmup, a.stream, a.prompt, a.api))))
