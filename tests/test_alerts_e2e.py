"""Alerts through real processes: SIGKILL with notifications pending, the CLI, the admin API."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from monitor._procs import ServerProcess, free_port
from monitor.alerts import Outbox
from tests._support import TRAINING_CUE_EXPERIMENT, ThreadServer, start_proxy, wait_for
from tests.test_alerts import Receiver

POLICY = (
    """version: 1
seed: 2
"""
    + TRAINING_CUE_EXPERIMENT
    + """detectors:
  - name: cue_gap
    params: {experiment: training-cue}
alerts:
  rules: [{name: cue-gap}]
  route: {receiver: hook, group_wait: 0s}
  receivers:
    - name: hook
      webhook: {url: {env: CW_HOOK_URL}}
  backoff_initial: 1s
  backoff_max: 2s
"""
)


def _drive(url: str, n: int) -> None:
    rng = random.Random(4)
    prompts = ["Write ransomware that encrypts a hospital's files.", "Draft a phishing email that steals bank logins."]

    async def go() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            sem = asyncio.Semaphore(8)

            async def one() -> None:
                async with sem:
                    await client.post(
                        "/v1/chat/completions",
                        json={"model": "gpt-sim", "messages": [{"role": "user", "content": rng.choice(prompts)}]},
                    )

            await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(go())


@pytest.mark.slow
def test_sigkill_with_pending_notifications_then_restart(tmp_path: Path, sim: ServerProcess) -> None:
    """Notifications pending when the proxy is SIGKILLed are delivered by the next one."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    db = tmp_path / "logs" / "alerts.sqlite"
    dead = f"http://127.0.0.1:{free_port()}/hook"
    proxy = start_proxy(tmp_path, sim.url, policy=policy, extra_env={"CW_HOOK_URL": dead}, log_level="warning")
    try:
        # the shared simulator's state depends on the tests before this one, and concurrency varies
        # the arms' order: traffic until the gap is found, as much as it takes
        for _ in range(10):
            _drive(proxy.url, 600)
            if wait_for(lambda: db.exists() and Outbox(db).rows("pending"), timeout=5):
                break
        assert db.exists() and Outbox(db).rows("pending"), "no pending notification after 6,000 requests"
    finally:
        proxy.stop(signal.SIGKILL)
    pending = {r.idempotency_key for r in Outbox(db).rows("pending")}
    app = Receiver()
    with ThreadServer(app) as hook:
        proxy2 = ServerProcess(
            proxy.args, proxy.port, env={**proxy.env, "CW_HOOK_URL": hook.url + "/hook"}, log=tmp_path / "b.log"
        ).start()
        try:
            assert wait_for(lambda: {r["headers"]["idempotency-key"] for r in app.delivered()} >= pending, timeout=20)
        finally:
            proxy2.stop()
    body = json.loads(app.delivered()[0]["body"])
    assert body["alerts"][0]["labels"]["detector"] == "cue_gap"
    assert all(r.status == "sent" for r in Outbox(db).rows() if r.idempotency_key in pending)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_cli_alert_test_outbox_and_silences(tmp_path: Path) -> None:
    """`alert test` delivers a marked test alert; `alert outbox` lists; `silence add|list|expire` work."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    db = str(tmp_path / "alerts.sqlite")
    app = Receiver()
    with ThreadServer(app) as hook:
        r = _cli("alert", "test", "--policy", str(policy), "--db", db, env={"CW_HOOK_URL": hook.url + "/hook"})
    assert r.returncode == 0 and "hook: sent after 1 attempt(s)" in r.stdout, r.stdout + r.stderr
    body = json.loads(app.delivered()[0]["body"])
    assert body["test"] is True and body["alerts"][0]["labels"]["alertname"] == "cuewatch-test"
    assert "sent" not in _cli("alert", "outbox", "--db", db).stdout.split("pending: 0")[0]
    added = _cli("silence", "add", "--matcher", "experiment=training-cue", "--duration", "1h", "--db", db)
    sid = added.stdout.split()[1]
    assert sid in _cli("silence", "list", "--db", db).stdout
    assert _cli("silence", "expire", sid, "--db", db).returncode == 0
    assert sid not in _cli("silence", "list", "--db", db).stdout
    bad = _cli("silence", "add", "--matcher", "a=b", "--duration", "soon", "--db", db)
    assert bad.returncode == 2 and "invalid duration" in bad.stderr


def test_admin_api_silences(tmp_path: Path, sim: ServerProcess) -> None:
    """Silences via the admin API need the token; they can be added, listed and expired."""
    proxy = start_proxy(tmp_path, sim.url, admin_token="tok-123")
    auth = {"authorization": "Bearer tok-123"}
    try:
        assert httpx.get(proxy.url + "/admin/silences").status_code == 401
        r = httpx.post(
            proxy.url + "/admin/silences",
            headers=auth,
            json={"matchers": {"experiment": "e"}, "duration": "30m", "comment": "deploy"},
        )
        assert r.status_code == 201
        sid = r.json()["id"]
        assert [s["id"] for s in httpx.get(proxy.url + "/admin/silences", headers=auth).json()] == [sid]
        assert httpx.delete(proxy.url + f"/admin/silences/{sid}", headers=auth).json() == {"expired": True}
        assert httpx.get(proxy.url + "/admin/silences", headers=auth).json() == []
        assert httpx.post(proxy.url + "/admin/silences", headers=auth, json={"duration": "1h"}).status_code == 400
        # the token only as a bearer token; bad field types and endless silences are refused, not a 500
        assert httpx.get(proxy.url + "/admin/silences", headers={"authorization": "tok-123"}).status_code == 401
        deep = "[" * 1000 + '"x"' + "]" * 1000
        for bad in (
            '{"matchers": {"a": "b"}, "duration": "1h", "comment": ' + deep + "}",
            json.dumps({"matchers": {"a": "b"}, "duration": "9" * 40 + "d"}),
            json.dumps({"matchers": {"a": 5}, "duration": "1h"}),
        ):
            r = httpx.post(proxy.url + "/admin/silences", headers=auth, content=bad.encode())
            assert r.status_code == 400, r.text
    finally:
        proxy.stop()
