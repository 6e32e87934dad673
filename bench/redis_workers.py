"""Exchanges/s through Redis into one worker and into two (lexical features).

    .venv/bin/python bench/redis_workers.py [--exchanges 20000] [--workers 1 2]

For each worker count, on a fresh redis-server (loopback, AOF on as in production): start the
workers and wait until they share the partitions; then publish the exchanges with the proxies'
own publish stage (batches of 256, as a proxy's pipeline sends them) and time until every
partition's consumer group has read and committed all of them. Throughput is exchanges / that time.

Traffic: exchanges carrying the written scratchpads of bench/data/scratchpads/scratchpads.jsonl
(both splits; nothing is tuned here) as reasoning, spread over two live experiments with two
arms each. Policy: bench/policies/scale.yaml, three partitions (all, exp:a, exp:b): every
exchange is read by all three, logged by `all`, scored by the lexical red-flag tier in `all`
and in its experiment's partition, and fed to that experiment's cue-gap detector.
`--policy bench/policies/scale-per-experiment.yaml` declares the red-flag detector per experiment
instead, so the work splits by experiment. Writes bench/results/redis_workers[-POLICY].json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import redis

from monitor._procs import RedisServer, ServerProcess, free_port
from monitor.records import Exchange, Message
from monitor.settings import Settings
from monitor.streams import RedisPublishStage

HERE = Path(__file__).resolve().parent
POLICY = HERE / "policies" / "scale.yaml"


def exchanges(n: int, seed: int = 0) -> list[Exchange]:
    rng = random.Random(seed)
    items = [json.loads(line) for line in (HERE / "data" / "scratchpads" / "scratchpads.jsonl").open()]
    out = []
    for i in range(n):
        item = rng.choice(items)
        experiment, arm = rng.choice("ab"), rng.choice(["monitored", "unmonitored"])
        complied = rng.random() < 0.5
        out.append(
            Exchange(
                id=uuid.UUID(int=rng.getrandbits(128)).hex,
                time=datetime.now(UTC),
                dialect="openai",
                path="/v1/chat/completions",
                model="bench-model",
                experiment=experiment,
                arm=arm,
                mode="live",
                assignment_probability=0.5,
                messages=[Message(role="user", text=f"Request {i}: help me with something questionable.")],
                reasoning=item["reasoning"],
                response_text="Sure, here is how you would do that: step one..."
                if complied
                else "I can't help with that request.",
                finish_reason="stop",
                status=200,
                outcome="ok",
            )
        )
    return out


def settled(r: redis.Redis, n: int, stream: str = "cuewatch:exchanges") -> bool:
    if not r.exists(stream) or r.xlen(stream) < n:
        return False
    last = r.xinfo_stream(stream)["last-generated-id"]
    groups = r.xinfo_groups(stream)
    return len(groups) == 3 and all(g["pending"] == 0 and g["last-delivered-id"] == last for g in groups)


def partitions_held(workers: list[ServerProcess]) -> list[list[str]]:
    return [list(httpx.get(w.url + "/readyz", timeout=5).json()["partitions"]) for w in workers]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(n_workers: int, batch: list[Exchange], tmp: Path, policy: Path) -> dict[str, Any]:
    with RedisServer(tmp / f"redis-{n_workers}") as server, contextlib.ExitStack() as stack:
        workers = []
        for i in range(n_workers):
            port = free_port()
            workers.append(
                stack.enter_context(
                    ServerProcess(
                        [
                            "worker",
                            "--port",
                            str(port),
                            "--log-dir",
                            str(tmp / f"w{n_workers}-{i}"),
                            "--policy",
                            str(POLICY),
                        ],
                        port,
                        env={"CUEWATCH_REDIS_URL": server.url, "CUEWATCH_LOG_LEVEL": "warning"},
                        log=tmp / f"w{n_workers}-{i}.log",
                    )
                )
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # fair share: every worker holds a partition
            held = partitions_held(workers)
            if all(held) and sum(map(len, held)) == 3:
                break
            time.sleep(0.2)
        r = redis.Redis.from_url(server.url)
        publish = RedisPublishStage(Settings(transport="redis", redis_url=server.url))

        async def send() -> None:
            for i in range(0, len(batch), 256):
                await publish(batch[i : i + 256])
            await publish.aclose()

        pids = {
            "redis": server.proc.pid if server.proc else 0,
            **{f"worker{i}": w.proc.pid for i, w in enumerate(workers) if w.proc},
        }
        cpu0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
        t0 = time.perf_counter()
        asyncio.run(send())
        t_published = time.perf_counter() - t0
        while not settled(r, len(batch)):
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        cpu = {k: round(cpu_seconds(pid) - cpu0[k], 2) for k, pid in pids.items()}
        return {
            "cpu_s": cpu,
            "workers": n_workers,
            "exchanges": len(batch),
            "publish_s": round(t_published, 3),
            "publish_per_s": round(len(batch) / t_published),
            "elapsed_s": round(elapsed, 3),
            "exchanges_per_s": round(len(batch) / elapsed),
            "partitions": held,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exchanges", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--policy", type=Path, default=POLICY, help="default: bench/policies/scale.yaml")
    ap.add_argument("--out", type=Path, help="default: bench/results/redis_workers[-POLICY].json")
    args = ap.parse_args()
    args.out = args.out or HERE / "results" / (
        "redis_workers.json" if args.policy == POLICY else f"redis_workers-{args.policy.stem}.json"
    )
    batch = exchanges(args.exchanges)
    tmp = Path(tempfile.mkdtemp(prefix="cuewatch-redis-bench-"))
    results = []
    for n in args.workers:
        row = run(n, batch, tmp, args.policy)
        results.append(row)
        print(
            f"{n} worker(s): {row['exchanges']} exchanges in {row['elapsed_s']:.1f} s = "
            f"{row['exchanges_per_s']} exchanges/s (published at {row['publish_per_s']}/s); "
            f"partitions {row['partitions']}; CPU seconds {row['cpu_s']}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"policy": args.policy.name, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
