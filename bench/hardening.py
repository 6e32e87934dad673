"""Hardening figures: fuzzing, faults and planted secrets against real processes.

    .venv/bin/python bench/hardening.py [--cases 2000] [--requests 300]

One simulator and a proxy running a live experiment with the admin API on, then:

1. **Fuzz**: `--cases` hostile cases per surface (the three model endpoints with JSON of any
   shape, raw bytes, and the admin API; the policy loader in-process), the strategies of
   tests/fuzzing.py. Counts proxy-made 5xx, admin calls let through without the token, policy
   loader errors other than a clean ConfigError, and requests forwarded vs records written.
2. **Disk full**: the log folder on a 2 MiB tmpfs, filled; `--requests` requests (the spill
   folder on the same full disk, so they wait in memory), then space is freed.
3. **SIGTERM** mid-load on the full disk (spill on another volume), then a restart.
4. **SIGKILL** mid-load, then a restart (the journal).
5. **Planted secrets**: provider keys in the auth header, a query string, the prompt, and quoted
   back in upstream errors; every file the run left (logs, spill, journal, process logs) searched.

Answered vs written counts exchange ids. Prints a table; writes bench/results/hardening.json.
Needs root for the tmpfs (phases 2-3 are skipped without it).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor._procs import ServerProcess, free_port
from monitor.errors import ConfigError
from monitor.policy import load_policy
from monitor.records import Exchange
from monitor.store import LogReader
from tests._support import fill_disk, free_disk, tmpfs
from tests.fuzzing import Tally, admin_calls, encode, model_bodies, raw_bodies, send_admin, send_model_call

HERE = Path(__file__).resolve().parent
TOKEN = "bench-admin-token-0123456789"  # noqa: S105 - a throwaway token for this run
KEYS = {
    "openai": "sk-proj-PLANTEDbench0123456789abcdefghij",
    "anthropic": "sk-ant-api03-PLANTEDbench0123456789abcdef",
    "google": "AIzaSyPLANTEDbench0123456789abcdefghij",
}
LIVE = """experiments:
  - name: tier
    arms:
      - {name: a, probability: 0.5, cue: {where: system, texts: [CUE-A]}}
      - {name: b, probability: 0.5, cue: {where: user, texts: [CUE-B]}}
"""


def _ids(log_dir: Path) -> list[str]:
    return [r.id for r in LogReader([log_dir]) if isinstance(r, Exchange)] if log_dir.exists() else []


def _wait(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def _proxy(tmp: Path, sim: str, log_dir: Path, name: str, **env: str) -> ServerProcess:
    port = free_port()
    policy = tmp / "live.yaml"
    policy.write_text(LIVE)
    return ServerProcess(
        ["serve", "--upstream", sim, "--port", str(port), "--log-dir", str(log_dir), "--policy", str(policy)],
        port,
        env={
            "CUEWATCH_ADMIN_TOKEN": TOKEN,
            "CUEWATCH_POLICY_POLL_S": "0",
            "CUEWATCH_ACCESS_LOG": "false",
            **{f"CUEWATCH_{k.upper()}": v for k, v in env.items()},
        },
        log=tmp / f"{name}.log",
    ).start()


def fuzz(tmp: Path, sim: str, cases: int) -> dict[str, Any]:
    log_dir = tmp / "fuzz-logs"
    proxy = _proxy(tmp, sim, log_dir, "fuzz")
    tally = Tally()
    policy_errors: list[str] = []
    policy_cases = 0
    fast = settings(max_examples=cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    try:
        with httpx.Client(timeout=60) as client:

            @fast
            @given(dialect=st.sampled_from(["openai", "anthropic", "responses"]), body=model_bodies)
            def json_bodies(dialect: str, body: Any) -> None:
                send_model_call(client, proxy.url, dialect, encode(body), tally)

            @fast
            @given(dialect=st.sampled_from(["openai", "anthropic", "responses"]), body=raw_bodies)
            def raw(dialect: str, body: bytes) -> None:
                send_model_call(client, proxy.url, dialect, body, tally)

            @fast
            @given(call=admin_calls)
            def admin(call: tuple[str, str, str, Any]) -> None:
                send_admin(client, proxy.url, TOKEN, call, tally)

            for run in (json_bodies, raw, admin):
                t = time.monotonic()
                run()
                print(f"  fuzz {run.__name__}: {time.monotonic() - t:.0f} s", file=sys.stderr)

        policy_file = tmp / "fuzzed.yaml"

        @fast
        @given(content=st.binary(max_size=400) | st.text(max_size=400))
        def policies(content: bytes | str) -> None:
            nonlocal policy_cases
            policy_cases += 1
            policy_file.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "replace"))
            try:
                load_policy(policy_file)
            except ConfigError:
                pass
            except Exception as exc:  # counted: only a ConfigError is a clean refusal
                policy_errors.append(f"{type(exc).__name__}: {exc}"[:200])

        policies()
    finally:
        proxy.stop()
    written = _ids(log_dir)
    return {
        "cases": {**tally.cases, "policy_loader": policy_cases},
        "proxy_5xx_or_admin_bypass": len(tally.failures),
        "failures": tally.failures[:10],
        "policy_loader_unclean_errors": len(policy_errors),
        "forwarded": len(tally.forwarded),
        "records_written": len(written),
        "forwarded_without_record": len(set(tally.forwarded) - set(written)),
        "records_twice": len(written) - len(set(written)),
    }


def _chat(client: httpx.Client, url: str, i: int, key: str = KEYS["openai"], **kw: Any) -> httpx.Response:
    return client.post(
        url + "/v1/chat/completions",
        json={"model": "bench", "stream": i % 3 == 0, "messages": [{"role": "user", "content": f"case {i}"}]},
        headers={"authorization": f"Bearer {key}", **kw.pop("headers", {})},
        **kw,
    )


class Load:
    """8 client threads sending chat requests until stopped; collects answered request ids."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,)) for k in range(8)]

    def _run(self, k: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                try:
                    r = _chat(client, self.url, k * 1_000_000 + i)
                    r.read()
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    self.answered.append(r.headers["x-cuewatch-request-id"])
                i += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def disk_full(tmp: Path, sim: str, requests: int) -> dict[str, Any]:
    with tmpfs(tmp / "small", "2m") as disk:
        if disk is None:
            return {"skipped": "cannot mount a tmpfs (not root?)"}
        log_dir = disk / "logs"
        proxy = _proxy(tmp, sim, log_dir, "diskfull")  # spill on the same full disk: held in memory
        try:
            fill_disk(disk)
            answered = []
            with httpx.Client(timeout=30) as client:
                for i in range(requests):
                    r = _chat(client, proxy.url, i)
                    if r.status_code == 200:
                        answered.append(r.headers["x-cuewatch-request-id"])
            ready_while_full = httpx.get(proxy.url + "/readyz").status_code
            written_while_full = len(_ids(log_dir))
            free_disk(disk)
            _wait(lambda: set(answered) <= set(_ids(log_dir)), 60)
            written = _ids(log_dir)
        finally:
            proxy.stop()
        return {
            "answered": len(answered),
            "written_while_full": written_while_full,
            "readyz_while_full": ready_while_full,
            "written_after_space_returned": len(written),
            "missing": len(set(answered) - set(written)),
            "twice": len(written) - len(set(written)),
        }


def kill_mid_load(tmp: Path, sim: str, sig: int, full_disk: bool) -> dict[str, Any]:
    name = signal.Signals(sig).name
    with tmpfs(tmp / f"small-{name}", "2m") as disk:
        if full_disk and disk is None:
            return {"skipped": "cannot mount a tmpfs (not root?)"}
        log_dir = (disk if full_disk else tmp) / f"logs-{name}"
        spill = tmp / f"spill-{name}"
        proxy = _proxy(tmp, sim, log_dir, name.lower(), spill_dir=str(spill))
        if full_disk:
            fill_disk(disk)  # type: ignore[arg-type]
        with Load(proxy.url) as load:
            _wait(lambda: len(load.answered) >= 400, 60)
            rc = proxy.stop(sig)
        if full_disk:
            free_disk(disk)  # type: ignore[arg-type]
        stopped = (tmp / f"{name.lower()}.log").read_text()
        again = _proxy(tmp, sim, log_dir, name.lower() + "-restart", spill_dir=str(spill))
        try:
            _wait(lambda: set(load.answered) <= set(_ids(log_dir)), 60)
            written = _ids(log_dir)
            interrupted = sum(1 for r in LogReader([log_dir]) if isinstance(r, Exchange) and r.outcome == "interrupted")
        finally:
            again.stop()
        return {
            "recorded_as_interrupted": interrupted,
            "disk_full": full_disk,
            "exit": rc,
            "clean_shutdown": "proxy_stopped" in stopped and "shutdown failed" not in stopped.lower(),
            "answered": len(load.answered),
            "written_after_restart": len(written),
            "missing": len(set(load.answered) - set(written)),
            "twice": len(written) - len(set(written)),
        }


def planted(tmp: Path, sim: str) -> dict[str, Any]:
    log_dir = tmp / "secret-logs"
    proxy = _proxy(tmp, sim, log_dir, "secrets", queue_size="2")  # small queue: spill files too
    hook = "https://hooks.slack.com/services/TPLANTED0/BPLANTED0/plantedbenchwebhook0"
    sent = 0
    try:
        with httpx.Client(timeout=30) as client:
            for i in range(30):
                prompt = f"use {KEYS['openai']} and {KEYS['google']}, post to {hook}"
                r = client.post(
                    proxy.url + "/v1/chat/completions",
                    params={"key": KEYS["google"]},
                    json={"model": "m", "stream": i % 2 == 0, "messages": [{"role": "user", "content": prompt}]},
                    headers={"authorization": f"Bearer {KEYS['openai']}"},
                )
                sent += r.status_code == 200
                r = client.post(  # the upstream quotes the key back in its error
                    proxy.url + "/v1/messages",
                    json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"x-api-key": KEYS["anthropic"], "x-sim-fault": "status=401,echo-key"},
                )
                sent += r.status_code == 401
    finally:
        proxy.stop()
    found: dict[str, list[str]] = {}
    files = 0
    for path in tmp.rglob("*"):
        if path.is_file() and not path.name.endswith(".yaml") and "fuzzed" not in path.name:
            files += 1
            data = path.read_bytes()
            for name, secret in [*KEYS.items(), ("slack_webhook", "plantedbenchwebhook0")]:
                if secret.encode() in data:
                    found.setdefault(name, []).append(str(path.relative_to(tmp)))
    return {"requests": sent, "files_searched": files, "secrets_found": sum(map(len, found.values())), "where": found}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000, help="fuzz cases per surface")
    ap.add_argument("--requests", type=int, default=300, help="requests in the disk-full phase")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "hardening.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cuewatch-hardening-"))
    port = free_port()
    sim = ServerProcess(["sim", "--profile", "honest", "--port", str(port), "--seed", "3"], port, log=tmp / "sim.log")
    sim.start()
    results: dict[str, Any] = {}
    try:
        for name, run in (
            ("fuzz", lambda: fuzz(tmp, sim.url, args.cases)),
            ("disk_full", lambda: disk_full(tmp, sim.url, args.requests)),
            ("sigterm_on_full_disk", lambda: kill_mid_load(tmp, sim.url, signal.SIGTERM, True)),
            ("sigkill_under_load", lambda: kill_mid_load(tmp, sim.url, signal.SIGKILL, False)),
            ("planted_secrets", lambda: planted(tmp, sim.url)),
        ):
            t = time.monotonic()
            print(f"{name} ...", file=sys.stderr)
            results[name] = run()
            results[name]["seconds"] = round(time.monotonic() - t, 1)
            print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    finally:
        sim.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
