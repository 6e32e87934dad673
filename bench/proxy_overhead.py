"""Proxy overhead: direct to the simulated upstream vs through the proxy.

    .venv/bin/python bench/proxy_overhead.py [--duration 10] [--concurrency 1 16 64]

The simulator (honest profile, zero latency) runs pinned to CPU 0 with the load generator, a
separate process; the proxy runs pinned to CPU 1 with its default settings (traffic log, access
log, metrics). Prints a table and writes bench/results/proxy_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor._procs import ServerProcess, free_port

HERE = Path(__file__).resolve().parent
CHAT = "/v1/chat/completions"


def loadgen(url: str, concurrency: int, duration: float, stream: bool, cpu: int | None) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(HERE / "_loadgen.py"),
        "--url",
        url,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
    ] + (["--stream"] if stream else [])
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "proxy_overhead.json")
    ap.add_argument(
        "--proxy-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra CUEWATCH_* settings for the proxy run (repeatable)",
    )
    args = ap.parse_args()
    ncpu = os.cpu_count() or 1
    sim_cpu, proxy_cpu = (0, 1) if ncpu >= 2 else (None, None)
    tmp = Path(tempfile.mkdtemp(prefix="cuewatch-bench-"))
    sim_port, proxy_port = free_port(), free_port()
    sim = ServerProcess(
        ["sim", "--profile", "honest", "--port", str(sim_port)], sim_port, cpu=sim_cpu, log=tmp / "sim.log"
    )
    env = dict(kv.split("=", 1) for kv in args.proxy_env)
    proxy = ServerProcess(
        ["serve", "--upstream", sim.url, "--port", str(proxy_port), "--log-dir", str(tmp / "logs")],
        proxy_port,
        cpu=proxy_cpu,
        log=tmp / "proxy.log",
        env=env,
    )
    rows: list[dict[str, Any]] = []
    with sim, proxy:
        cases = [(c, False) for c in args.concurrency] + [(1, True)]
        for concurrency, stream in cases:
            direct = loadgen(sim.url + CHAT, concurrency, args.duration, stream, sim_cpu)
            via = loadgen(proxy.url + CHAT, concurrency, args.duration, stream, sim_cpu)
            rows.append(
                {
                    "concurrency": concurrency,
                    "stream": stream,
                    "direct": direct,
                    "proxy": via,
                    "added_p50_ms": via["p50_ms"] - direct["p50_ms"],
                    "added_p99_ms": via["p99_ms"] - direct["p99_ms"],
                    "added_ttfb_p50_ms": via["ttfb_p50_ms"] - direct["ttfb_p50_ms"],
                }
            )
            print(
                f"c={concurrency:<3} stream={stream!s:<5} "
                f"direct {direct['rps']:7.0f} req/s p50 {direct['p50_ms']:.2f} ms"
                f" | proxy {via['rps']:7.0f} req/s p50 {via['p50_ms']:.2f} ms p99 {via['p99_ms']:.2f} ms"
                f" | added p50 {rows[-1]['added_p50_ms']:+.2f} ms p99 {rows[-1]['added_p99_ms']:+.2f} ms"
                f" ttfb {rows[-1]['added_ttfb_p50_ms']:+.2f} ms | in-proxy p50 {via['overhead_header_p50_ms']} ms",
                flush=True,
            )
    records = sum(1 for p in (tmp / "logs").glob("traffic-*.jsonl") for _ in p.open())
    sent = sum(r["proxy"]["requests"] + r["proxy"]["errors"] for r in rows)
    print(f"records written by the proxy: {records} (>= {sent} measured requests plus warm-up)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"cpus": ncpu, "duration_s": args.duration, "proxy_env": env, "rows": rows, "records": records}, indent=2
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
