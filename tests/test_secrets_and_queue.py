"""Credentials never leave the request path; records are never lost (overflow, shutdown)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from monitor._procs import ServerProcess
from monitor.pipeline import Pipeline, TrafficLogStage
from monitor.records import Exchange
from monitor.settings import Settings
from monitor.store import TrafficLog
from proxy import create_app
from tests._support import API_KEY, ThreadServer, records, start_proxy, wait_for


def test_planted_key_never_logged(tmp_path: Path, sim: ServerProcess) -> None:
    """A planted API key reaches the upstream but never the proxy's logs, records or spill."""
    proxy = start_proxy(tmp_path, sim.url, log_level="debug", queue_size="1")
    try:
        oa = openai.OpenAI(base_url=proxy.url + "/v1", api_key=API_KEY, max_retries=0)
        an = anthropic.Anthropic(base_url=proxy.url, api_key=API_KEY, max_retries=0)
        for stream in (False, True):
            r = oa.chat.completions.create(model="gpt-sim", stream=stream, messages=[{"role": "user", "content": "hi"}])
            if stream:
                list(r)  # type: ignore[arg-type]
            an.messages.create(model="claude-sim", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        # a key pasted into a prompt, a key= query parameter and a Slack webhook URL
        google = "AIzaSyPLANTEDplanted0123456789abcdefg"
        hook = "https://hooks.slack.com/services/T000PLANT/B000PLANT/plantedplantedplanted"
        oa.chat.completions.create(
            model="gpt-sim",
            messages=[{"role": "user", "content": f"debug this: OPENAI_API_KEY={API_KEY} GOOGLE={google} {hook}"}],
            extra_query={"key": google},
        )
        # error paths log too: a rejected request carrying the key
        httpx.post(
            proxy.url + "/v1/chat/completions",
            content=b"{bad",
            headers={"authorization": f"Bearer {API_KEY}", "content-type": "application/json"},
        )
        recs = records(tmp_path / "logs", 5)
        assert len(recs) == 5
        assert "[redacted]" in recs[-1].messages[0].text and "debug this" in recs[-1].messages[0].text
    finally:
        proxy.stop()
    scanned = 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            scanned += 1
            data = path.read_bytes()
            for planted in (API_KEY, google, "plantedplantedplanted"):
                assert planted.encode() not in data, f"{planted} leaked into {path}"
    assert scanned >= 2  # the proxy's own log and at least one traffic segment


def test_credentials_forwarded_to_upstream(tmp_path: Path) -> None:
    """The client's credentials and API headers do reach the upstream (seen by a real server)."""
    seen: list[dict[str, str]] = []

    async def echo(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        while (await receive()).get("more_body"):
            pass
        body = (
            b'{"id":"x","type":"message","role":"assistant","model":"m","content":[],'
            b'"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}'
        )
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    with ThreadServer(echo) as up:
        proxy = start_proxy(tmp_path, up.url)
        try:
            anthropic.Anthropic(
                base_url=proxy.url,
                api_key=API_KEY,
                max_retries=0,
                default_headers={"anthropic-beta": "test-beta", "connection": "keep-alive, x-hop", "x-hop": "drop-me"},
            ).messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
        finally:
            proxy.stop()
    h = seen[-1]
    # the SDK sends the key as x-api-key or as a bearer token, depending on its version
    assert API_KEY in (h.get("x-api-key"), h.get("authorization", "").removeprefix("Bearer "))
    assert h["anthropic-version"] and h["anthropic-beta"] == "test-beta"
    assert "x-hop" not in h and h.get("connection", "") != "keep-alive, x-hop"


class SlowStage:
    """A record consumer slower than the traffic: forces the queue to overflow."""

    def __init__(self) -> None:
        self.seen = 0

    async def __call__(self, batch: list[Exchange]) -> None:
        await asyncio.sleep(0.05)
        self.seen += len(batch)


@pytest.mark.slow
def test_queue_overflow_loses_nothing(tmp_path: Path, sim: ServerProcess) -> None:
    """With a tiny queue and a slow consumer, N requests still yield N records (some spilled)."""
    settings = Settings(upstream=sim.url, log_dir=tmp_path / "logs", queue_size=2, fsync="never", access_log=False)
    slow = SlowStage()
    traffic = TrafficLogStage(TrafficLog(settings.log_dir))
    pipeline = Pipeline(
        stages=[traffic, slow], essential=traffic, queue_size=2, spill_dir=settings.log_dir / "spill", max_batch=1
    )
    app = create_app(settings, pipeline)
    n = 60

    async def drive(url: str) -> list[str]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def one(i: int) -> str:
                r = await client.post(
                    "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": f"n{i}"}]}
                )
                assert r.status_code == 200
                return r.headers["x-cuewatch-request-id"]

            return list(await asyncio.gather(*(one(i) for i in range(n))))

    with ThreadServer(app) as server:
        ids = asyncio.run(drive(server.url))
        assert pipeline.spilled > 0, "the test did not overflow the queue"
        metrics = httpx.get(server.url + "/metrics").text
        assert "cuewatch_records_spilled_total" in metrics
    # the server has stopped: shutdown drained queue and spill
    recs = records(tmp_path / "logs", n)
    assert sorted(r.id for r in recs) == sorted(ids)
    assert slow.seen == n
    assert not list((tmp_path / "logs" / "spill").glob("*.jsonl"))


def test_sigterm_drains_queue(tmp_path: Path, sim: ServerProcess) -> None:
    """SIGTERM right after a burst: every exchange still reaches the traffic log."""
    proxy = start_proxy(tmp_path, sim.url, queue_size="1")

    async def burst() -> int:
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
            rs = await asyncio.gather(
                *(
                    client.post(
                        "/v1/messages",
                        json={"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": f"x{i}"}]},
                    )
                    for i in range(40)
                )
            )
        return sum(r.status_code == 200 for r in rs)

    ok = asyncio.run(burst())
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is the signal's
    assert proxy.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert b'"proxy_stopped"' in (tmp_path / "proxy.log").read_bytes()
    assert ok == 40
    assert len(records(tmp_path / "logs", 40, timeout=1)) == 40


def test_spill_left_by_dead_process_is_drained_on_start(tmp_path: Path, sim: ServerProcess) -> None:
    """Spill files left by a process that died are written to the log by the next proxy."""
    spill = tmp_path / "logs" / "spill"
    script = f"""
import datetime
from monitor.capture import Capture
from monitor.pipeline import SpillFile
s = SpillFile({str(spill)!r})
for i in range(5):
    s.append(Capture(id=f"dead-{{i}}", time=datetime.datetime.now(datetime.UTC), dialect="openai",
                     path="/v1/chat/completions", request={{"model": "m", "messages": []}},
                     status=200, outcome="ok", body=b'{{"choices": []}}', content_type="application/json"))
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    assert len(list(spill.glob("spill-*.jsonl"))) == 1
    proxy = start_proxy(tmp_path, sim.url)
    try:
        recs = records(tmp_path / "logs", 5)
        assert sorted(r.id for r in recs) == [f"dead-{i}" for i in range(5)]
        assert wait_for(lambda: not list(spill.glob("spill-*.jsonl")))
    finally:
        proxy.stop()


def test_metrics_and_probes(proxy: ServerProcess) -> None:
    """/metrics exposes the documented series; /healthz and /readyz answer."""
    httpx.post(
        proxy.url + "/v1/chat/completions", json={"model": "gpt-sim", "messages": [{"role": "user", "content": "a"}]}
    )
    ready = httpx.get(proxy.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["reasons"] == []
    assert list(ready["upstreams"].values()) == ["reachable"] and ready["policy"]["last_error"] is None
    text = httpx.get(proxy.url + "/metrics").text
    for name in (
        "cuewatch_requests_total",
        "cuewatch_upstream_latency_seconds_bucket",
        "cuewatch_proxy_overhead_seconds_bucket",
        "cuewatch_queue_depth",
        "cuewatch_records_written_total",
        "cuewatch_records_spilled_total",
        "cuewatch_records_held",
        "cuewatch_spill_bytes",
        "cuewatch_traffic_log_healthy 1.0",
        'cuewatch_write_failures_total{target="traffic_log"} 0.0',
        "cuewatch_records_lost_total 0.0",
        "cuewatch_upstream_up{upstream=",
        "cuewatch_policy_reloads_total",
    ):
        assert name in text, name
    assert "_created" not in text, "no *_created series"
    assert 'cuewatch_requests_total{dialect="openai",model="gpt-sim",status="200"} 1.0' in text


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/chat/completions", {"authorization": f"Bearer {API_KEY}"}),
        ("/v1/responses", {"authorization": f"Bearer {API_KEY}"}),
        ("/v1/messages", {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}),
    ],
    ids=["chat", "responses", "messages"],
)
def test_key_echoed_in_upstream_error_not_stored(
    tmp_path: Path, sim: ServerProcess, path: str, headers: dict[str, str]
) -> None:
    """An upstream error that quotes the client's key reaches the client as sent, but the record
    (and so the log) keeps it redacted."""
    proxy = start_proxy(tmp_path, sim.url)
    try:
        r = httpx.post(
            proxy.url + path,
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "input": "hi", "max_tokens": 8},
            headers={**headers, "x-sim-fault": "status=401,echo-key"},
        )
        [rec] = records(tmp_path / "logs", 1)
    finally:
        proxy.stop()
    assert r.status_code == 401 and API_KEY in r.text  # the client sees its upstream's answer
    assert rec.error is not None and "Incorrect API key provided: [redacted]" in rec.error
    for found in tmp_path.rglob("*"):
        if found.is_file():
            assert API_KEY.encode() not in found.read_bytes(), f"API key leaked into {found}"


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnop0123",
        "sk-ant-api03-abcdefghijklmnop",
        "AIzaSyA1234567890abcdefghijklmnop",
        "Bearer eyJhbGciOiJIUzI1NiJ9.payload",
        "hooks.slack.com/services/T000/B000/XXXXXXXX",
        "discord.com/api/webhooks/1234567890/abcDEF_ghi-jkl",
        "?api_key=abc123def",
        "&access_token=abc123def",
    ],
)
def test_every_text_field_of_a_record_is_scrubbed(secret: str) -> None:
    """One redaction step covers every stored text field, nested ones included."""
    from monitor.records import Choice, Exchange, Message, ToolCall
    from monitor.secrets import scrub_model

    text = f"see {secret} here"
    ex = Exchange(
        id="x",
        time=datetime.now(UTC),
        dialect="openai",
        path="/v1/chat/completions",
        status=200,
        outcome="ok",
        messages=[Message(role="user", text=text, tool_calls=[ToolCall(name="f", arguments=text)])],
        response_text=text,
        reasoning=text,
        choices=[Choice(index=0, text=text)],
        error=text,
        raw_request=text,
        probe_choices={"A": text},
    )
    scrub_model(ex)
    dumped = ex.model_dump_json()
    assert secret.lstrip("?&") not in dumped and dumped.count("[redacted]") == 8
    assert ex.messages[0].text.startswith("see ") and ex.messages[0].text.endswith(" here")


def test_log_lines_are_scrubbed_by_key_and_by_value() -> None:
    """The logging processor redacts values under secret-looking keys, and credentials inside
    any text value, nested ones included; lines without either are left as they are."""
    from monitor.logs import scrub_secrets

    plain = {"event": "exchange", "model": "gpt-4o", "status": 200, "error": None}
    assert scrub_secrets(None, "info", dict(plain)) == plain
    event = scrub_secrets(
        None,
        "info",
        {
            "event": "upstream_failed",
            "api_key": "anything at all",
            "error": "Incorrect API key provided: sk-proj-abcdefghijklmnop0123",
            "status": 401,
            "urls": ["https://hooks.slack.com/services/T000/B000/XXXXXXXX"],
        },
    )
    assert event["api_key"] == "[redacted]" and event["status"] == 401
    assert event["error"] == "Incorrect API key provided: [redacted]"
    assert event["urls"] == ["https://[redacted]"]


def test_every_secret_hint_survives_json_and_unserialisable_records_are_walked() -> None:
    """scrub_model tests a record's JSON before walking it: that is sound only while JSON writes
    every hint as it is. A record JSON cannot hold (a lone surrogate) is walked instead."""
    from monitor.records import Exchange
    from monitor.secrets import _HINTS, scrub_model

    for hint in _HINTS:
        ex = Exchange(id="x", time=datetime.now(UTC), dialect="openai", path="/", status=200, outcome="ok")
        ex.response_text = f"<{hint}>"
        assert hint in ex.model_dump_json().lower(), hint
    ex = Exchange(id="x", time=datetime.now(UTC), dialect="openai", path="/", status=200, outcome="ok")
    ex.response_text = "\ud800 sk-proj-abcdefghijklmnop0123"
    scrub_model(ex)
    assert ex.response_text == "\ud800 [redacted]"
