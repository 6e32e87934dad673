"""Exchanges/s with model-based features on: one feature worker against two.

    .venv/bin/python bench/feature_workers.py [--exchanges 600] [--workers 1 2] [--modes inprocess redis]

Policy: bench/policies/features-model.yaml (the combined red-flag tier on every exchange, the
semantic compliance classifier on experiment a's). Traffic: bench/redis_workers.py's exchanges
(written scratchpads as reasoning; throughput only, no detection figure comes from them).

- `inprocess`: one `Engine` (as the proxy's in-process mode runs it) fed batches of 256, its
  `FeaturePool` of N workers (1: a thread; 2: two processes) warmed up first; exchanges / wall time.
- `redis`: redis-server on loopback; one detector worker (`features_from: redis`) and N feature
  workers (`worker_role: features`), each with an equal share of the cores for torch
  (`CUEWATCH_TORCH_THREADS`); N=0 is the detector worker computing every row itself. The workers
  start and load the model, then the exchanges are published as a proxy publishes them, and the
  time runs until every consumer group has read and acknowledged all of them.

Writes bench/results/feature_workers.json. CPU only unless torch sees a GPU (then reported).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import redis

from bench.redis_workers import cpu_seconds, exchanges
from monitor._procs import RedisServer, ServerProcess, free_port
from monitor.engine import Engine, FeaturePool
from monitor.feature_worker import GROUP
from monitor.logs import configure_logging
from monitor.records import Exchange
from monitor.reload import PolicyHolder
from monitor.settings import Settings
from monitor.streams import RedisPublishStage

HERE = Path(__file__).resolve().parent
POLICY = HERE / "policies" / "features-model.yaml"
STREAM = "cuewatch:exchanges"


def device() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"


def inprocess(n_workers: int, batch: list[Exchange], torch_threads: int | None) -> dict[str, Any]:
    # read by the thread's model load here, and by each process's (as the pool's own share would be)
    os.environ["CUEWATCH_TORCH_THREADS"] = str(share(n_workers, torch_threads))
    pool = FeaturePool(n_workers)
    engine = Engine(PolicyHolder(POLICY), saved={}, pool=pool)

    async def go() -> float:
        await pool.warm()
        await engine(batch[:8])  # every feature's first call (heads loaded) outside the timing
        t0 = time.perf_counter()
        for i in range(0, len(batch), 256):
            await engine(batch[i : i + 256])
        return time.perf_counter() - t0

    try:
        elapsed = asyncio.run(go())
    finally:
        engine.shutdown()
        pool.shutdown()
    return {
        "mode": "inprocess",
        "feature_workers": n_workers,
        "torch_threads_each": share(n_workers, torch_threads),
        "exchanges": len(batch),
        "elapsed_s": round(elapsed, 2),
        "exchanges_per_s": round(len(batch) / elapsed, 1),
    }


def _settled(r: redis.Redis, n: int) -> bool:
    if not r.exists(STREAM) or r.xlen(STREAM) < n:
        return False
    last = r.xinfo_stream(STREAM)["last-generated-id"]
    groups = r.xinfo_groups(STREAM)
    return bool(groups) and all(g["pending"] == 0 and g["last-delivered-id"] == last for g in groups)


def _worker(tmp: Path, name: str, url: str, env: dict[str, str]) -> ServerProcess:
    port = free_port()
    return ServerProcess(
        ["worker", "--port", str(port), "--log-dir", str(tmp / name), "--policy", str(POLICY), "--worker-id", name],
        port,
        env={"CUEWATCH_REDIS_URL": url, "CUEWATCH_LOG_LEVEL": "warning", "CUEWATCH_FSYNC": "never", **env},
        log=tmp / f"{name}.log",
        start_timeout=120,
    )


def _rows(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("cuewatch_worker_feature_rows_total"):
            out[line.split('"')[1]] = float(line.split()[-1])
    return out


def share(n_workers: int, torch_threads: int | None) -> int:
    """Torch threads per feature worker: as asked, else an equal share of the cores."""
    return torch_threads or max(1, (os.cpu_count() or 1) // max(n_workers, 1))


def via_redis(n_workers: int, batch: list[Exchange], tmp: Path, torch_threads: int | None) -> dict[str, Any]:
    threads = str(share(n_workers, torch_threads))
    with RedisServer(tmp / f"redis-{n_workers}") as server, contextlib.ExitStack() as stack:
        r = redis.Redis.from_url(server.url)
        detector = stack.enter_context(_worker(tmp, f"d-{n_workers}", server.url, {"CUEWATCH_FEATURES_FROM": "redis"}))
        feats = [
            stack.enter_context(
                _worker(
                    tmp,
                    f"f{i}-{n_workers}",
                    server.url,
                    {"CUEWATCH_WORKER_ROLE": "features", "CUEWATCH_TORCH_THREADS": threads},
                )
            )
            for i in range(n_workers)
        ]
        deadline = time.monotonic() + 300
        while n_workers and time.monotonic() < deadline:  # the model is loaded before the group is made
            with contextlib.suppress(redis.ResponseError):
                groups = r.xinfo_groups(STREAM)
                if (
                    any(g["name"] == GROUP.encode() for g in groups)
                    and r.zcard("cuewatch:feature-workers") == n_workers
                ):
                    break
            time.sleep(0.2)
        # The detector worker loads the model too (its fallback) on a small warm-up batch.
        settings = Settings(transport="redis", redis_url=server.url)

        async def send(part: list[Exchange]) -> None:
            publish = RedisPublishStage(settings)
            for i in range(0, len(part), 256):
                await publish(part[i : i + 256])
            await publish.aclose()

        asyncio.run(send(batch[:8]))
        while not _settled(r, 8):
            time.sleep(0.1)
        pids = {"redis": server.proc.pid if server.proc else 0, "detector": detector.proc.pid if detector.proc else 0}
        pids.update({f"features{i}": f.proc.pid for i, f in enumerate(feats) if f.proc})
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        rows0 = _rows(detector.url)
        t0 = time.perf_counter()

        asyncio.run(send(batch[8:]))
        while not _settled(r, len(batch)):
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        rows = {k: v - rows0.get(k, 0) for k, v in _rows(detector.url).items()}
        n = len(batch) - 8
        return {
            "mode": "redis",
            "feature_workers": n_workers,
            "torch_threads_each": int(threads) if n_workers else None,
            "exchanges": n,
            "elapsed_s": round(elapsed, 2),
            "exchanges_per_s": round(n / elapsed, 1),
            "rows_from": rows,
            "cpu_s": {k: round(cpu_seconds(p) - cpu0[k], 1) for k, p in pids.items()},
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exchanges", type=int, default=600)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--modes", nargs="+", default=["inprocess", "redis"], choices=["inprocess", "redis"])
    ap.add_argument("--torch-threads", type=int, help="torch threads per feature worker (default: cores / workers)")
    ap.add_argument("--out", type=Path, help="default: bench/results/feature_workers[-tN].json")
    args = ap.parse_args()
    suffix = f"-t{args.torch_threads}" if args.torch_threads else ""
    args.out = args.out or HERE / "results" / f"feature_workers{suffix}.json"
    configure_logging("error", "console")  # the bench's findings are not the point here
    batch = exchanges(args.exchanges, seed=3)
    tmp = Path(tempfile.mkdtemp(prefix="cuewatch-feature-bench-"))
    results = []
    for mode in args.modes:
        counts = args.workers if mode == "inprocess" else [0, *args.workers]
        for n in counts:
            if mode == "inprocess":
                row = inprocess(n, batch, args.torch_threads)
            else:
                row = via_redis(n, batch, tmp, args.torch_threads)
            results.append(row)
            print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": device(), "policy": POLICY.name, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
