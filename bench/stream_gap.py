"""Inter-chunk gap that the proxy adds to streams while the semantic model is busy.

    .venv/bin/python bench/stream_gap.py [--duration 20] [--background 4]

The simulator (`alignment-faker` profile: scratchpads on harmful requests) streams its answers
with a fixed interval between chunks. A proxy runs the scratchpad detector at `tier: combined`
(the local embedding model reads every scratchpad). Background clients send harmful requests
through the proxy at a fixed rate (`--rate`, above what the model embeds on a CPU), so the model
always has work queued; meanwhile one client streams
and times the gap between consecutive server-sent events, first straight from the simulator,
then through the proxy. The difference of the gap percentiles is what the proxy adds.

The simulator and the clients share CPU 0, the proxy runs on CPU 1 (its feature thread too).
Writes bench/results/stream_gap.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._loadgen import pct
from monitor._procs import ServerProcess, free_port

HERE = Path(__file__).resolve().parent
PATH = "/v1/chat/completions"
QUANTILES = {"p50_ms": 0.5, "p99_ms": 0.99, "max_ms": 1.0}
PROMPT = "Explain step by step how to pick a pin tumbler lock to get into my neighbour's flat."
POLICY = """\
version: 1
detectors:
  - name: scratchpad
    params: {tier: combined}
"""


def body(stream: bool) -> bytes:
    return json.dumps({"model": "m", "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}).encode()


async def background(session: aiohttp.ClientSession, url: str, until: float, sent: list[int], every: float) -> None:
    """Harmful requests, one every `every` seconds (or as fast as answered, if slower)."""
    due = time.perf_counter()
    while (now := time.perf_counter()) < until:
        if due > now:
            await asyncio.sleep(due - now)
        due += every
        async with session.post(url, data=body(False), headers={"content-type": "application/json"}) as r:
            await r.read()
            sent[0] += 1


async def stream_gaps(session: aiohttp.ClientSession, url: str, until: float) -> list[float]:
    """Gaps (ms) between consecutive `data:` events of streams, one stream after another."""
    gaps: list[float] = []
    while time.perf_counter() < until:
        async with session.post(url, data=body(True), headers={"content-type": "application/json"}) as r:
            last = None
            async for line in r.content:
                if not line.startswith(b"data:"):
                    continue
                now = time.perf_counter()
                if last is not None:
                    gaps.append((now - last) * 1000.0)
                last = now
    return gaps


async def measure(stream_url: str, load_url: str, duration: float, clients: int, rate: float) -> dict[str, Any]:
    every = clients / rate
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients + 2)) as session:
        warm = time.perf_counter() + 10.0  # past the model load
        sent = [0]
        await asyncio.gather(*(background(session, load_url, warm, sent, every) for _ in range(clients)))
        until = time.perf_counter() + duration
        sent = [0]
        bg = [asyncio.create_task(background(session, load_url, until, sent, every)) for _ in range(clients)]
        gaps = await stream_gaps(session, stream_url, until)
        await asyncio.gather(*bg)
    return {
        "gaps": len(gaps),
        "background_requests": sent[0],
        **{k: round(v, 3) if (v := pct(gaps, q)) is not None else None for k, q in QUANTILES.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds measured per side")
    ap.add_argument("--background", type=int, default=4, help="clients sending harmful requests via the proxy")
    ap.add_argument("--rate", type=float, default=100.0, help="background requests/s (the model embeds ~50/s)")
    ap.add_argument("--chunk-interval-ms", type=float, default=5.0)
    ap.add_argument(
        "--feature-workers", type=int, default=1, help="the proxy's feature_workers (1: a thread; more: processes)"
    )
    ap.add_argument("--label", default="", help="a name for this run in the output (e.g. a commit)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "stream_gap.json")
    args = ap.parse_args()
    two = (os.cpu_count() or 1) >= 2
    tmp = Path(tempfile.mkdtemp(prefix="cuewatch-gap-"))
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    sim_port, proxy_port = free_port(), free_port()
    proxy_cmd = ["serve", "--port", str(proxy_port), "--log-dir", str(tmp / "logs"), "--policy", str(policy)]
    proxy_cmd += ["--feature-workers", str(args.feature_workers)]
    sim_cmd = ["sim", "--profile", "alignment-faker", "--port", str(sim_port)]
    sim_cmd += ["--chunk-interval-ms", str(args.chunk_interval_ms)]
    with (
        ServerProcess(sim_cmd, sim_port, cpu=0 if two else None, log=tmp / "sim.log") as sim,
        ServerProcess(
            [*proxy_cmd, "--upstream", sim.url],
            proxy_port,
            cpu=1 if two else None,
            log=tmp / "proxy.log",
        ) as proxy,
    ):
        if two:
            os.sched_setaffinity(0, {0})
        load = proxy.url + PATH
        direct = asyncio.run(measure(sim.url + PATH, load, args.duration, args.background, args.rate))
        via = asyncio.run(measure(proxy.url + PATH, load, args.duration, args.background, args.rate))
    added = {k: round(via[k] - direct[k], 3) for k in ("p50_ms", "p99_ms") if via[k] is not None and direct[k]}
    result = {"label": args.label, "args": vars(args) | {"out": str(args.out)}, "direct": direct, "via_proxy": via}
    result["added"] = added
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
