"""Proxy overhead: direct to the simulated upstream vs through the proxy.

    .venv/bin/python bench/proxy_overhead.py [--duration 10] [--concurrency 1 16 64] [--api chat|responses]

The simulator (honest profile, zero latency) runs pinned to CPU 0 with the load generator, a
separate process; the proxy runs pinned to CPU 1 with its default settings (traffic log, access
log, metrics). A second proxy, also on CPU 1 but measured in turn, runs a live cue experiment
(`--policy`, default policies/live-ab.yaml), so both are compared in the same run.
Prints a table and writes bench/results/proxy_overhead.json.

`--scenario transport` compares the in-process transport with `transport: redis` (the same
policy; a redis-server and one `cuewatch worker` run beside the simulator on CPU 0), giving the
latency the Redis transport adds to the request path. `--no-worker` leaves the worker out (in
production it runs on other machines; here it would share CPU 0 with the load generator): the
stream keeps the exchanges.
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

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor._procs import RedisServer, ServerProcess, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LITELLM_CONFIG = """model_list:
  - model_name: bench-model
    litellm_params: {{model: "openai/bench-model", api_base: "{base}", api_key: "sk-bench"}}
litellm_settings:
  telemetry: false
general_settings:
  dangerously_permit_weak_or_unset_master_key: true
"""
PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}


def loadgen(
    url: str,
    concurrency: int,
    duration: float,
    stream: bool,
    cpu: int | None,
    prompt: str | None = None,
    api: str = "chat",
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
        + ["--api", api]
    )
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def cpu_seconds(proc: ServerProcess) -> float:
    """User + system CPU time of a server process so far (Linux /proc; 0 elsewhere)."""
    assert proc.proc is not None
    try:
        fields = Path(f"/proc/{proc.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backlog(proxy: ServerProcess) -> dict[str, float] | None:
    """How far a cuewatch proxy's recording is behind the requests it answered: captures queued
    in memory and spilled to disk so far (None for servers without cuewatch's metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        r = httpx.get(proxy.url + "/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    if r.status_code != 200 or not r.headers.get("content-type", "").startswith("text/plain"):
        return None  # a pass-through forwards the path to the simulator, which has no such page
    page = r.text
    wanted = {"cuewatch_queue_depth": "queue_depth", "cuewatch_records_spilled_total": "records_spilled_total"}
    values = {
        wanted[s.name]: s.value for f in text_string_to_metric_families(page) for s in f.samples if s.name in wanted
    }
    return values if len(values) == len(wanted) else None


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
    b = v.get("backlog")
    behind = f" | queued {b['queue_depth']:.0f} spilled since start {b['records_spilled_total']:.0f}" if b else ""
    print(
        f"{label:<16} c={row['concurrency']:<3} stream={row['stream']!s:<5} "
        f"direct {d['rps']:6.0f} req/s p50 {d['p50_ms']:.2f} ms"
        f" | proxy {v['rps']:6.0f} req/s p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms"
        f" | added p50 {row['added_p50_ms']:+.2f} ms p99 {row['added_p99_ms']:+.2f} ms"
        f" ttfb {row['added_ttfb_p50_ms']:+.2f} ms | in-proxy p50 {v['overhead_header_p50_ms']} ms"
        f" | CPU {v['server_cpu_s_per_1000']:.3f} s/1000 req{behind}",
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
    # the transport's cost on the request path: in-process detectors vs publishing to Redis
    "transport": {
        "profile": "honest",
        "prompt": None,
        "redis": True,
        "proxies": {
            "in-process": HERE / "policies" / "detectors.yaml",
            "redis": (HERE / "policies" / "detectors.yaml", {"CUEWATCH_TRANSPORT": "redis"}),
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
    ap.add_argument("--no-worker", action="store_true", help="transport scenario: no worker consumes the stream")
    ap.add_argument("--peers", action="store_true", help="also measure LiteLLM's proxy (installed by `make peers`)")
    ap.add_argument(
        "--no-passthrough",
        dest="passthrough",
        action="store_false",
        help="leave out the minimal aiohttp pass-through measured beside the proxies",
    )
    ap.add_argument(
        "--api", choices=sorted(PATHS), default="chat", help="chat completions or the Responses API (same prompt)"
    )
    args = ap.parse_args()
    scenario = SCENARIOS[args.scenario]
    suffix = "".join(f"-{part}" for part in (args.scenario, args.api) if part not in ("overhead", "chat"))
    out = args.out or HERE / "results" / f"proxy_overhead{suffix}.json"
    ncpu = os.cpu_count() or 1
    sim_cpu, proxy_cpu = (0, 1) if ncpu >= 2 else (None, None)
    tmp = Path(tempfile.mkdtemp(prefix="cuewatch-bench-"))
    # live-ab.yaml reads its sticky salt from this secret; the bench sets a throwaway one
    env = {"CUEWATCH_STICKY_SALT": os.environ.get("CUEWATCH_STICKY_SALT", "bench")}
    env.update(kv.split("=", 1) for kv in args.proxy_env)
    sim_port = free_port()
    sim = ServerProcess(
        ["sim", "--profile", scenario["profile"], "--port", str(sim_port)], sim_port, cpu=sim_cpu, log=tmp / "sim.log"
    )
    redis = RedisServer(tmp / "redis") if scenario.get("redis") else None
    if redis is not None:
        env = {"CUEWATCH_REDIS_URL": redis.url, **env}
    proxies: dict[str, ServerProcess] = {}
    for label, spec in scenario["proxies"].items():
        policy, own_env = spec if isinstance(spec, tuple) else (spec, {})
        port = free_port()
        name = label.replace(" ", "-")
        extra = ["--policy", str(policy)] if policy else []
        proxies[label] = ServerProcess(
            ["serve", "--upstream", sim.url, "--port", str(port), "--log-dir", str(tmp / name / "logs"), *extra],
            port,
            cpu=proxy_cpu,
            log=tmp / f"{name}.log",
            env={**env, **own_env},
        )
    if args.passthrough:  # the floor: minimal pass-throughs, measured in turn with the others
        # aiohttp's own server, and cuewatch's server stack (uvicorn, ASGI): what the stack costs
        for label, module in (
            ("aiohttp pass-through", "bench._passthrough"),
            ("ASGI pass-through", "bench._asgi_passthrough"),
        ):
            port = free_port()
            proxies[label] = ServerProcess(
                ["--port", str(port), "--upstream", sim.url],
                port,
                cpu=proxy_cpu,
                log=tmp / f"{label.replace(' ', '-')}.log",
                module=module,
            )
    if args.peers:  # LiteLLM's proxy (its own venv, `make peers`), routing the same model to the simulator
        litellm = ROOT / ".venv-peers" / "litellm" / "bin" / "litellm"
        if not litellm.exists():
            raise SystemExit(f"{litellm} is missing: run `make peers`")
        (tmp / "litellm").mkdir()
        (tmp / "litellm" / "config.yaml").write_text(LITELLM_CONFIG.format(base=sim.url + "/v1"))
        port = free_port()
        proxies["LiteLLM proxy"] = ServerProcess(
            ["--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port), "--telemetry", "False"],
            port,
            cpu=proxy_cpu,
            log=tmp / "LiteLLM-proxy.log",
            command=[str(litellm)],
            ready_path="/health/liveliness",
            cwd=tmp / "litellm",
            start_timeout=180.0,
            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "NO_DOCS": "True"},
        )
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in proxies}
    prompt = scenario["prompt"]
    with contextlib.ExitStack() as stack:
        stack.enter_context(sim)
        if redis is not None:
            stack.enter_context(redis)
            if sim_cpu is not None:
                subprocess.run(["taskset", "-pc", str(sim_cpu), str(redis.proc.pid)], check=True, capture_output=True)
            worker_port = free_port()
        if redis is not None and not args.no_worker:
            stack.enter_context(
                ServerProcess(
                    ["worker", "--port", str(worker_port), "--log-dir", str(tmp / "worker"), "--policy", str(policy)],
                    worker_port,
                    cpu=sim_cpu,
                    log=tmp / "worker.log",
                    env=env,
                )
            )
        for proxy in proxies.values():
            stack.enter_context(proxy)
        cases = [(c, False) for c in args.concurrency] + [(1, True)]
        for concurrency, stream in cases:
            path = PATHS[args.api]
            direct = loadgen(sim.url + path, concurrency, args.duration, stream, sim_cpu, prompt, args.api)
            for label, proxy in proxies.items():
                cpu0 = cpu_seconds(proxy)
                via = loadgen(proxy.url + path, concurrency, args.duration, stream, sim_cpu, prompt, args.api)
                via["server_cpu_s_per_1000"] = (cpu_seconds(proxy) - cpu0) / max(via["all_requests"], 1) * 1000
                via["backlog"] = backlog(proxy)  # a throughput the recording did not keep up with is not sustained
                results[label].append(_row(concurrency, stream, direct, via))
                _print(label, results[label][-1])
    base_label, other_label = list(proxies)[:2]
    for base, other in zip(results[base_label], results[other_label], strict=True):
        print(
            f"{other_label} vs {base_label}, c={base['concurrency']} stream={base['stream']}: "
            f"p50 {other['proxy']['p50_ms'] - base['proxy']['p50_ms']:+.3f} ms"
        )
    summary: dict[str, Any] = {
        "cpus": ncpu,
        "duration_s": args.duration,
        "scenario": args.scenario,
        "api": args.api,
        "worker": bool(scenario.get("redis")) and not args.no_worker,
        "proxy_env": {k: v for k, v in env.items() if k != "CUEWATCH_REDIS_URL"},
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
