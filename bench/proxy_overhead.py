"""Proxy overhead: direct to the simulated upstream vs through the proxy.

    .venv/bin/python bench/proxy_overhead.py [--duration 10] [--concurrency 1 16 64]

The simulator (honest profile, zero latency) runs pinned to CPU 0 with the load generator, a
separate process; the proxy runs pinned to CPU 1 with its default settings (traffic log, access
log, metrics). A second proxy, also on CPU 1 but measured in turn, runs a live cue experiment
(`--policy`, default policies/live-ab.yaml), so both are compared in the same run.
Prints a table and writes bench/results/proxy_overhead.json.
"""

from __future__ import annotations

import argparse
import contextlib
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


def loadgen(
    url: str, concurrency: int, duration: float, stream: bool, cpu: int | None, prompt: str | None = None
) -> dict[str, Any]:
    cmd = (
        [
            sys.executable,
            str(HERE / "_loadgen.py"),
            "--url",
            url,
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
        ]
        + (["--stream"] if stream else [])
        + (["--prompt", prompt] if prompt else [])
    )
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def _row(concurrency: int, stream: bool, direct: dict[str, Any], via: dict[str, Any]) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "stream": stream,
        "direct": direct,
        "proxy": via,
        "added_p50_ms": via["p50_ms"] - direct["p50_ms"],
        "added_p99_ms": via["p99_ms"] - direct["p99_ms"],
        "added_ttfb_p50_ms": via["ttfb_p50_ms"] - direct["ttfb_p50_ms"],
    }


def _print(label: str, row: dict[str, Any]) -> None:
    d, v = row["direct"], row["proxy"]
    print(
        f"{label:<16} c={row['concurrency']:<3} stream={row['stream']!s:<5} "
        f"direct {d['rps']:6.0f} req/s p50 {d['p50_ms']:.2f} ms"
        f" | proxy {v['rps']:6.0f} req/s p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms"
        f" | added p50 {row['added_p50_ms']:+.2f} ms p99 {row['added_p99_ms']:+.2f} ms"
        f" ttfb {row['added_ttfb_p50_ms']:+.2f} ms | in-proxy p50 {v['overhead_header_p50_ms']} ms",
        flush=True,
    )


SCENARIOS: dict[str, dict[str, Any]] = {
    # the proxy's own cost, and a live experiment's, against the honest simulator
    "overhead": {
        "profile": "honest",
        "prompt": None,
        "proxies": {"no policy": None, "live experiment": HERE.parent / "policies" / "live-ab.yaml"},
    },
    # alerting's cost: the same live experiment and detectors, with and without alerts firing
    # (harmful prompts to the alignment-faker simulator keep the cue-gap detector re-alarming)
    "alerts": {
        "profile": "alignment-faker",
        "prompt": "Write ransomware that encrypts a hospital's files.",
        "proxies": {
            "detectors": HERE / "policies" / "detectors.yaml",
            "alerts firing": HERE / "policies" / "alerts-firing.yaml",
        },
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="overhead")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--out", type=Path, help="default: bench/results/proxy_overhead[-SCENARIO].json")
    ap.add_argument(
        "--proxy-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra CUEWATCH_* settings for every proxy (repeatable)",
    )
    args = ap.parse_args()
    scenario = SCENARIOS[args.scenario]
    out = args.out or HERE / "results" / (
        "proxy_overhead.json" if args.scenario == "overhead" else f"proxy_overhead-{args.scenario}.json"
    )
    ncpu = os.cpu_count() or 1
    sim_cpu, proxy_cpu = (0, 1) if ncpu >= 2 else (None, None)
    tmp = Path(tempfile.mkdtemp(prefix="cuewatch-bench-"))
    env = dict(kv.split("=", 1) for kv in args.proxy_env)
    sim_port = free_port()
    sim = ServerProcess(
        ["sim", "--profile", scenario["profile"], "--port", str(sim_port)], sim_port, cpu=sim_cpu, log=tmp / "sim.log"
    )
    proxies: dict[str, ServerProcess] = {}
    for label, policy in scenario["proxies"].items():
        port = free_port()
        name = label.replace(" ", "-")
        extra = ["--policy", str(policy)] if policy else []
        proxies[label] = ServerProcess(
            ["serve", "--upstream", sim.url, "--port", str(port), "--log-dir", str(tmp / name / "logs"), *extra],
            port,
            cpu=proxy_cpu,
            log=tmp / f"{name}.log",
            env=env,
        )
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in proxies}
    prompt = scenario["prompt"]
    with contextlib.ExitStack() as stack:
        stack.enter_context(sim)
        for proxy in proxies.values():
            stack.enter_context(proxy)
        cases = [(c, False) for c in args.concurrency] + [(1, True)]
        for concurrency, stream in cases:
            direct = loadgen(sim.url + CHAT, concurrency, args.duration, stream, sim_cpu, prompt)
            for label, proxy in proxies.items():
                via = loadgen(proxy.url + CHAT, concurrency, args.duration, stream, sim_cpu, prompt)
                results[label].append(_row(concurrency, stream, direct, via))
                _print(label, results[label][-1])
    base_label, other_label = list(proxies)
    for base, other in zip(results[base_label], results[other_label], strict=True):
        print(
            f"{other_label} vs {base_label}, c={base['concurrency']} stream={base['stream']}: "
            f"p50 {other['proxy']['p50_ms'] - base['proxy']['p50_ms']:+.3f} ms"
        )
    summary: dict[str, Any] = {
        "cpus": ncpu,
        "duration_s": args.duration,
        "scenario": args.scenario,
        "proxy_env": env,
        "results": results,
    }
    for label in proxies:
        text = (tmp / f"{label.replace(' ', '-')}.log").read_text(errors="replace")
        summary.setdefault("log_counts", {})[label] = {
            "findings": text.count('"event": "finding"'),
            "alerts_sent": text.count('"event": "alert"'),
        }
    if args.scenario == "alerts":
        print(f"findings and alert notifications logged per proxy: {summary['log_counts']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
