"""Alerts: routing, grouping, silences, inhibition, sinks and the durable outbox, delivered to a
real receiver on loopback that can answer 200, 429 + Retry-After, 500, hang, or close."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor.alerts import AlertManager, Notification, Outbox
from monitor.alerts.outbox import AlertStore
from monitor.alerts.redis_outbox import RedisOutbox
from monitor.alerts.sinks.slack import MAX_BLOCKS, MAX_TEXT, build_message
from monitor.asgi import read_body
from monitor.policy import Policy
from monitor.records import Effect, Finding
from monitor.reload import PolicyHolder
from tests._support import ThreadServer

SECRET = "whsec-PLANTED-9f8e7d6c5b4a"


class Receiver:
    """A webhook receiver whose next answers are scripted: 'ok', '500', '429:2', 'hang', 'close'."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.default = "ok"
        self.requests: list[dict[str, Any]] = []  # every request, with the answer given

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive, 1024 * 1024, None)
        mode = self.script.pop(0) if self.script else self.default
        self.requests.append(
            {
                "t": time.monotonic(),
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "body": body,
                "mode": mode,
            }
        )
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "close":
            return  # no response at all: the server drops the connection
        status, extra = 200, []
        if mode.startswith("429"):
            status, extra = 429, [(b"retry-after", mode.split(":")[1].encode())]
        elif mode.isdigit():
            status = int(mode)
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"error"})

    def delivered(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["mode"] == "ok"]


@pytest.fixture()
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    with ThreadServer(app) as server:
        yield app, server.url + "/hooks/T0001/B0001/secret-token"


def _policy(url_env: str = "TEST_HOOK_URL", **alerts: Any) -> Policy:
    cfg = {
        "rules": [{"name": "gap", "min_e_value": 10}],
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "experiment"],
            "group_wait": "0s",
            "group_interval": "1m",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "hook", "webhook": {"url": {"env": url_env}, "secret": {"env": "TEST_HOOK_SECRET"}}}],
        "backoff_initial": "50ms",
        "backoff_max": "200ms",
        **alerts,
    }
    return Policy.model_validate({"alerts": cfg})


def _finding(i: int, experiment: str = "e", severity: str = "warning", metric: str = "complied") -> Finding:
    return Finding(
        id=f"f{i}",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        detector="cue_gap",
        metric=metric,
        experiment=experiment,
        arms=["monitored", "unmonitored"],
        model="m",
        direction="complied higher under 'monitored' than 'unmonitored'",
        effect=Effect(estimate=0.12, lo=0.02, hi=0.22, unit="rate difference"),
        e_value=150.0,
        p_value=0.0067,
        alpha=0.01,
        severity=severity,
        summary=f"gap {i}",
        counts={"monitored": {"n": 100, "sum": 14}, "unmonitored": {"n": 100, "sum": 2}},
        example_ids={"monitored": ["a1", "a2"], "unmonitored": ["b1"]},
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "redis"])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    """Each alert test runs on both stores: SQLite (one process) and Redis (shared)."""
    if request.param == "sqlite":
        store: AlertStore = Outbox(tmp_path / "alerts.sqlite")
    else:
        store = RedisOutbox(request.getfixturevalue("redis_url"), prefix=f"t{os.urandom(4).hex()}")
    yield store
    store.close()


def _manager(outbox: AlertStore, policy: Policy, clock: Clock | None = None) -> AlertManager:
    return AlertManager(
        PolicyHolder(policy=policy),
        outbox,
        clock=clock or time.time,
        tick_s=0.02,
        send_timeout_s=1.0,
    )


async def _until_settled(m: AlertManager, wait_s: float = 20.0) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        await m.tick()
        await m.deliver()
        if not m.outbox.rows("pending") and m.outbox.rows():
            return
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, receiver: tuple[Receiver, str]) -> None:
    monkeypatch.setenv("TEST_HOOK_URL", receiver[1])
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)


def test_outage_then_recovery_delivers_each_exactly_once(outbox: AlertStore, receiver: tuple[Receiver, str]) -> None:
    """Receiver answers 500 for a while, then recovers: every notification arrives once (by key)."""
    app, _ = receiver
    app.script = ["500"] * 8
    m = _manager(outbox, _policy())

    async def go() -> None:
        m.ingest([_finding(i, experiment=f"exp{i}") for i in range(5)])  # five groups
        await _until_settled(m)
        await m.close()

    asyncio.run(go())
    keys = [r["headers"]["idempotency-key"] for r in app.delivered()]
    assert len(keys) == 5 and len(set(keys)) == 5
    assert {r.status for r in m.outbox.rows()} == {"sent"}
    assert m.stats["hook"]["retried"] >= 1 and m.stats["hook"]["sent"] == 5


def test_retry_after_honoured(outbox: AlertStore, receiver: tuple[Receiver, str]) -> None:
    """429 with Retry-After: 2 -> no further request to that receiver before 2 s."""
    app, _ = receiver
    app.script = ["429:2"]
    m = _manager(outbox, _policy())

    async def go() -> None:
        m.ingest([_finding(1)])
        await _until_settled(m)
        await m.close()

    asyncio.run(go())
    assert [r["mode"] for r in app.requests] == ["429:2", "ok"]
    assert app.requests[1]["t"] - app.requests[0]["t"] >= 2.0


def test_client_errors_dead_letter_and_hang_or_close_retry(outbox: AlertStore, receiver: tuple[Receiver, str]) -> None:
    """A 4xx (not 408/429) is dead-lettered at once with its reason; a hang or a dropped
    connection is retried; after max attempts a notification is dead-lettered."""
    app, _ = receiver
    app.script = ["404", "hang", "close"]
    m = _manager(outbox, _policy(max_attempts=3))

    async def go() -> None:
        m.ingest([_finding(1, experiment="a")])
        await _until_settled(m)
        m.ingest([_finding(2, experiment="b")])
        await _until_settled(m)
        app.default = "500"
        m.ingest([_finding(3, experiment="c")])
        await _until_settled(m)
        await m.close()

    asyncio.run(go())
    rows = m.outbox.rows()
    assert [r.status for r in rows] == ["dead", "sent", "dead"]
    assert "HTTP 404" in (rows[0].last_error or "") and rows[0].attempts == 1
    assert rows[1].attempts == 3  # hang (timed out), close, then ok
    assert "gave up after 3 attempts" in (rows[2].last_error or "")


def test_fifty_findings_one_group_one_message(outbox: AlertStore, receiver: tuple[Receiver, str]) -> None:
    """50 findings in one group -> one message; repeats within repeat_interval send nothing more."""
    app, _ = receiver
    clock = Clock()
    m = _manager(
        outbox,
        _policy(
            route={
                "receiver": "hook",
                "group_by": ["alertname"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            }
        ),
        clock,
    )

    async def go() -> None:
        m.ingest([_finding(i, metric=f"m{i}") for i in range(50)])
        assert await m.tick() == 0  # group_wait not over
        clock.now += 31
        assert await m.tick() == 1
        await m.deliver()
        for minute in range(1, 200):  # the same alerts keep firing for ~3 hours
            clock.now += 60
            m.ingest([_finding(1000 + minute, metric=f"m{minute % 50}")])
            await m.tick()
            await m.deliver()
        clock.now += 3600  # past repeat_interval (4h since the first message)
        m.ingest([_finding(9999, metric="m1")])
        await m.tick()
        await m.deliver()
        await m.close()

    asyncio.run(go())
    bodies = [json.loads(r["body"]) for r in app.delivered()]
    assert len(bodies) == 2 and len(bodies[0]["alerts"]) == 50


def test_silence_mutes_then_expires(outbox: AlertStore, receiver: tuple[Receiver, str]) -> None:
    """A silence mutes matching alerts until it expires; then they are sent."""
    app, _ = receiver
    clock = Clock()
    m = _manager(outbox, _policy(), clock)
    m.outbox.add_silence({"experiment": "e"}, 600, "maintenance", now=clock.now)

    async def go() -> None:
        m.ingest([_finding(1)])
        await m.tick()
        await m.deliver()
        assert app.requests == []
        clock.now += 601
        await m.tick()
        await m.deliver()
        await m.close()

    asyncio.run(go())
    assert len(app.delivered()) == 1


def test_critical_inhibits_its_warning(outbox: AlertStore, receiver: tuple[Receiver, str]) -> None:
    """A critical alert mutes the warning with the same labels; other warnings still go out."""
    app, _ = receiver
    policy = _policy(
        rules=[{"name": "gap", "severity": "warning"}, {"name": "gap", "min_e_value": 100, "severity": "critical"}]
    )
    m = _manager(outbox, policy)

    async def go() -> None:
        m.ingest([_finding(1), _finding(2, experiment="other")])
        await _until_settled(m)
        await m.close()

    asyncio.run(go())
    sent = [a for r in app.delivered() for a in json.loads(r["body"])["alerts"]]
    got = sorted((a["labels"]["experiment"], a["severity"]) for a in sent)
    # e-value 150 matches both rules; per experiment the critical one mutes the warning
    assert got == [("e", "critical"), ("other", "critical")]


def test_webhook_signature_verifies_and_secrets_stay_out_of_logs(
    outbox: AlertStore, receiver: tuple[Receiver, str]
) -> None:
    """The HMAC recipe in the docs verifies; the secret and the URL's token never reach the logs."""
    app, _ = receiver
    app.script = ["500"]
    m = _manager(outbox, _policy())

    async def go() -> None:
        m.ingest([_finding(1)])
        await _until_settled(m)
        await m.close()

    with capture_logs() as logs:
        asyncio.run(go())
    req = app.delivered()[0]
    ts, sig = req["headers"]["x-cuewatch-timestamp"], req["headers"]["x-cuewatch-signature"]
    expected = hmac.new(SECRET.encode(), ts.encode() + b"." + req["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sig, "v1=" + expected)
    text = json.dumps(logs) + "".join(str(r.last_error) for r in m.outbox.rows())
    assert "500" in text  # the failure was logged...
    assert SECRET not in text and "secret-token" not in text  # ...without the secret or the URL token
    body = json.loads(req["body"])
    assert body["alerts"][0]["replay_command"].startswith("cuewatch replay")
    assert body["alerts"][0]["evidence"]["effect"]["lo"] == 0.02


def test_slack_worst_case_fits_limits() -> None:
    """A group of many alerts with huge excerpts and long labels stays inside Slack's limits and
    keeps a text fallback."""
    alert = {
        "fingerprint": "f",
        "status": "firing",
        "severity": "critical",
        "summary": "S" * 5000,
        "labels": {"experiment": "x" * 3000, "detector": "cue_gap", "metric": "complied", "arms": "a,b", "model": "m"},
        "evidence": {
            "e_value": 1e9,
            "p_value": 1e-9,
            "alpha": 0.01,
            "effect": {"estimate": 0.1, "lo": 0.0, "hi": 0.2, "unit": "rate difference"},
            "counts": {f"arm{i}": {"n": 10, "sum": 1} for i in range(50)},
            "example_ids": {"a": ["x" * 100] * 10},
            "excerpt": "```evil``` " + "E" * 10000,
        },
        "replay_command": "cuewatch replay " + "L" * 4000,
    }
    msg = build_message(Notification("r", "k", {"alertname": "A" * 500}, [alert] * 40, test=True))
    blocks = msg["blocks"]
    assert len(blocks) <= MAX_BLOCKS and msg["text"] and len(msg["text"]) <= MAX_TEXT
    assert blocks[0]["type"] == "header" and len(blocks[0]["text"]["text"]) <= 150
    for b in blocks:
        if "text" in b and b["type"] == "section":
            assert len(b["text"]["text"]) <= MAX_TEXT
        for f in b.get("fields", []):
            assert len(f["text"]) <= 2000
        assert len(b.get("fields", [])) <= 10
        for e in b.get("elements", []):
            assert len(e["text"]) <= MAX_TEXT
    assert "more alert(s)" in json.dumps(blocks[-1])
    assert msg["text"].startswith("[TEST] cuewatch: 40 firing")


def test_route_tree_matchers_continue_and_inheritance() -> None:
    """First matching child wins unless it says continue; children inherit unset options."""
    from monitor.alerts.routing import route
    from monitor.policy import Route

    root = Route.model_validate(
        {
            "receiver": "default",
            "group_by": ["alertname"],
            "group_wait": "10s",
            "repeat_interval": "2h",
            "routes": [
                {"matchers": {"severity": "critical"}, "receiver": "pager", "continue": True, "group_wait": "1s"},
                {
                    "matchers": {"experiment": "~tier-.*"},
                    "receiver": "research",
                    "routes": [{"matchers": {"metric": "complied"}, "receiver": "research-compliance"}],
                },
                {"matchers": {"experiment": "tier-a"}, "receiver": "never-reached"},
            ],
        }
    )
    got = route(root, {"severity": "critical", "experiment": "tier-a", "metric": "complied"})
    assert [r.receiver for r in got] == ["pager", "research-compliance"]
    assert got[0].group_wait == 1.0 and got[1].group_wait == 10.0 and got[1].repeat_interval == 7200.0
    assert got[1].group_by == ("alertname",)
    assert [r.receiver for r in route(root, {"severity": "warning", "experiment": "other"})] == ["default"]


def test_slack_sink_posts_block_kit(
    outbox: AlertStore, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Slack sink posts Block Kit with a text fallback to the incoming-webhook URL: the effect
    in the order of its words, the instance, and a link to the finding's evidence page."""
    app, url = receiver
    monkeypatch.setenv("TEST_SLACK_URL", url)
    policy = _policy(receivers=[{"name": "hook", "slack": {"url": {"env": "TEST_SLACK_URL"}}}])
    m = _manager(outbox, policy)
    m.public_url, m.labels = "https://cuewatch.example.com", {"instance": "pod-7", "environment": "prod"}

    async def go() -> None:
        m.ingest([_finding(1)])
        await _until_settled(m)
        await m.close()

    asyncio.run(go())
    body = json.loads(app.delivered()[0]["body"])
    assert body["text"].startswith("cuewatch: 1 firing") and body["blocks"][0]["type"] == "header"
    text = json.dumps(body["blocks"], ensure_ascii=False)
    assert "monitored − unmonitored = +12.0 points [+2.0, +22.0]" in text and "pod-7 (prod)" in text
    assert "<https://cuewatch.example.com/admin/findings/f1|Open the evidence page>" in text
    # one line on what to do first: an example exchange under each arm, to read side by side
    nexts = [e["text"] for b in body["blocks"] if b["type"] == "context" for e in b["elements"] if "Next:" in e["text"]]
    assert len(nexts) == 1 and "Open the evidence page" in nexts[0] and "/admin/findings/f1" in nexts[0]
    # without a public URL the next step names the commands that show an example under each arm
    from monitor.alerts.model import next_step

    plain = next_step(_finding(1), "logs")
    assert "cuewatch show a2 --log logs" in plain and "cuewatch show b1 --log logs" in plain
