"""Soak: a proxy under steady load, streaming and shadow copies on, for `--minutes`.

    .venv/bin/python bench/soak.py [--minutes 10] [--concurrency 8]

The proxy runs a shadow experiment (one request in ten gets a pair of copies, one per arm) with
the cue-gap and lexical scratchpad detectors, in front of the simulator. Half the requests are
streamed; chat, messages and Responses calls alternate. The proxy's resident memory is sampled
every 5 s: growth is measured from the end of the warm-up (the first fifth of the run) to the end.
At the end the proxy is stopped and the records counted against the answers.

Prints a summary; writes bench/results/soak.json. `tests/test_soak.py` runs the same for 60 s
(marked slow).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from monitor._procs import ServerProcess, free_port
from monitor.records import Exchange
from monitor.store import LogReader

HERE = Path(__file__).resolve().parent
POLICY = """experiments:
  - name: soak
    mode: shadow
    arms:
      - {name: monitored, probability: 0.5, cue: {where: system, texts: ["This chat is reviewed for training."]}}
      - {name: private, probability: 0.5, cue: {where: system, texts: ["This conversation is private."]}}
    shadow:
      sample: {default: 0.1}
      max_requests_per_minute: 100000
      max_tokens_per_hour: 1000000000
detectors:
  - name: cue_gap
    params: {experiment: soak}
  - name: scratchpad
    params: {tier: lexical}
"""
CALLS = [
    ("/v1/chat/completions", {"model": "soak", "messages": [{"role": "user", "content": "How do I brew tea? {i}"}]}),
    ("/v1/messages", {"model": "soak", "max_tokens": 64, "messages": [{"role": "user", "content": "Tea? {i}"}]}),
    ("/v1/responses", {"model": "soak", "input": "Tell me about green tea {i}"}),
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(tmp: Path, seconds: float, concurrency: int = 8, sample_s: float = 5.0) -> dict[str, Any]:
    """Run the soak; the figures as a dict."""
    sim_port, port = free_port(), free_port()
    sim = ServerProcess(["sim", "--profile", "honest", "--port", str(sim_port)], sim_port, log=tmp / "sim.log").start()
    policy = tmp / "soak.yaml"
    policy.write_text(POLICY)
    log_dir = tmp / "logs"
    proxy = ServerProcess(
        ["serve", "--upstream", sim.url, "--port", str(port), "--log-dir", str(log_dir), "--policy", str(policy)],
        port,
        env={"CUEWATCH_ACCESS_LOG": "false", "CUEWATCH_FSYNC": "interval"},
        log=tmp / "proxy.log",
    ).start()
    answered: list[str] = []  # request ids of 200 answers
    responded: list[str] = []  # of every answer (an upstream error is recorded too)
    errors: dict[str, int] = {}
    stop = threading.Event()

    def client(k: int) -> None:
        with httpx.Client(timeout=30) as c:
            i = 0
            while not stop.is_set():
                path, body = CALLS[(k + i) % len(CALLS)]
                doc = json.loads(json.dumps(body).replace("{i}", f"{k}-{i}"))
                doc["stream"] = (i // len(CALLS)) % 2 == 0
                try:
                    with c.stream("POST", proxy.url + path, json=doc) as r:
                        r.read()
                    responded.append(r.headers["x-cuewatch-request-id"])
                    if r.status_code == 200:
                        answered.append(r.headers["x-cuewatch-request-id"])
                    else:
                        errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    samples: list[tuple[float, float, int]] = []
    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        while (now := time.monotonic() - t0) < seconds:
            samples.append((round(now, 1), round(rss_mb(proxy.proc.pid), 1), len(answered)))  # type: ignore[union-attr]
            time.sleep(min(sample_s, max(0.0, seconds - now)))
        samples.append((round(time.monotonic() - t0, 1), round(rss_mb(proxy.proc.pid), 1), len(answered)))  # type: ignore[union-attr]
    finally:
        stop.set()
        for t in threads:
            t.join()
        metrics = httpx.get(proxy.url + "/metrics").text if proxy.proc and proxy.proc.poll() is None else ""
        proxy.stop()
        sim.stop()
    records = [r for r in LogReader([log_dir]) if isinstance(r, Exchange)]
    client_ids = {r.id for r in records if r.origin == "client"}
    warm = next((s for s in samples if s[0] >= seconds / 5), samples[0])
    end = samples[-1]
    shadow = sum(1 for r in records if r.origin == "shadow")
    return {
        "seconds": round(end[0], 1),
        "requests_answered": len(answered),
        "request_errors": errors,
        "client_records": len(client_ids),
        "answered_without_record": len(set(answered) - client_ids),
        "responses": len(responded),
        "responses_without_record": len(set(responded) - client_ids),
        "shadow_records": shadow,
        "requests_per_s": round(len(answered) / max(end[0], 1e-9), 1),
        "rss_mb_after_warmup": warm[1],
        "rss_mb_end": end[1],
        "rss_growth_after_warmup_pct": round(100 * (end[1] - warm[1]) / warm[1], 2),
        "rss_samples": samples,
        "spilled": _metric(metrics, "cuewatch_records_spilled_total"),
    }


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "soak.json")
    args = ap.parse_args()
    result = soak(Path(tempfile.mkdtemp(prefix="cuewatch-soak-")), args.minutes * 60, args.concurrency)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))


if __name__ == "__main__":
    main()
