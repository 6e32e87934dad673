"""Upstream failures and bad requests: the right status and error shape, a record where one
belongs, and no proxy crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from monitor._procs import ServerProcess, free_port
from tests._support import API_KEY, records, start_proxy

CHAT = "/v1/chat/completions"
MSGS = "/v1/messages"
OA_BODY = {"model": "gpt-sim", "messages": [{"role": "user", "content": "Tell me a long story about boats."}]}
AN_BODY = {"model": "claude-sim", "max_tokens": 64, "messages": [{"role": "user", "content": "Tell me about boats."}]}


def _post(proxy: ServerProcess, path: str, body: object, fault: str | None = None, **kw: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {API_KEY}", **({"x-sim-fault": fault} if fault else {})}
    return httpx.post(proxy.url + path, json=body, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def _alive(proxy: ServerProcess) -> None:
    assert httpx.get(proxy.url + "/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("status", [429, 500, 529])
@pytest.mark.parametrize("path,body", [(CHAT, OA_BODY), (MSGS, AN_BODY)])
def test_upstream_error_passes_through(
    proxy: ServerProcess, tmp_path: Path, status: int, path: str, body: dict
) -> None:
    """Upstream 4xx/5xx reach the client with the upstream's status, headers and body."""
    r = _post(proxy, path, body, fault=f"status={status},retry-after=3")
    assert r.status_code == status
    assert r.headers["retry-after"] == "3"
    assert "simulated upstream error" in r.text
    [rec] = records(tmp_path / "logs", 1)
    assert (rec.status, rec.outcome) == (status, "upstream_error")
    assert rec.error and "simulated upstream error" in rec.error
    _alive(proxy)


def test_sdk_sees_rate_limit_error(proxy: ServerProcess) -> None:
    """The OpenAI SDK raises its own RateLimitError for a passed-through 429."""
    client = openai.OpenAI(
        base_url=proxy.url + "/v1", api_key=API_KEY, max_retries=0, default_headers={"x-sim-fault": "status=429"}
    )
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-sim", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("path,body", [(CHAT, {**OA_BODY, "stream": True}), (MSGS, {**AN_BODY, "stream": True})])
def test_midstream_disconnect_reaches_client(proxy: ServerProcess, tmp_path: Path, path: str, body: dict) -> None:
    """When the upstream drops the stream, the client's stream breaks too (no clean end)."""
    got = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST", proxy.url + path, json=body, headers={"x-sim-fault": "disconnect-after=3"}, timeout=30
        ) as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_raw():
            got += chunk
    assert got.count(b"\n\n") == 3  # exactly the three frames the upstream sent
    [rec] = records(tmp_path / "logs", 1)
    assert rec.outcome == "upstream_disconnect" and rec.status == 200
    _alive(proxy)


def test_midstream_disconnect_non_stream(proxy: ServerProcess, tmp_path: Path) -> None:
    """A non-streamed body cut short by the upstream is cut short for the client as well."""
    with pytest.raises(httpx.RemoteProtocolError):
        _post(proxy, CHAT, OA_BODY, fault="disconnect-after=1")
    [rec] = records(tmp_path / "logs", 1)
    assert rec.outcome == "upstream_disconnect"
    _alive(proxy)


@pytest.mark.parametrize(
    "path,body,marker",
    [
        (CHAT, {**OA_BODY, "stream": True}, b'"error"'),
        (MSGS, {**AN_BODY, "stream": True}, b"event: error"),
    ],
)
def test_error_event_frames_pass_through(
    proxy: ServerProcess, tmp_path: Path, path: str, body: dict, marker: bytes
) -> None:
    """An error event inside a 200 stream reaches the client as sent, and is recorded."""
    with httpx.stream("POST", proxy.url + path, json=body, headers={"x-sim-fault": "error-event"}) as r:
        got = b"".join(r.iter_raw())
    assert r.status_code == 200 and marker in got
    [rec] = records(tmp_path / "logs", 1)
    assert rec.outcome == "stream_error" and rec.error


def test_anthropic_sdk_raises_on_error_event(proxy: ServerProcess) -> None:
    """The Anthropic SDK sees the upstream's overloaded error event through the proxy."""
    client = anthropic.Anthropic(
        base_url=proxy.url, api_key=API_KEY, max_retries=0, default_headers={"x-sim-fault": "error-event"}
    )
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"), client.messages.stream(**AN_BODY) as s:  # type: ignore[arg-type]
        s.get_final_message()


@pytest.fixture()
def slow_proxy(tmp_path: Path, sim: ServerProcess) -> Iterator[ServerProcess]:
    proc = start_proxy(tmp_path, sim.url, read_timeout_s="1")
    yield proc
    proc.stop()


@pytest.mark.parametrize("path,body,shape", [(CHAT, OA_BODY, "openai"), (MSGS, AN_BODY, "anthropic")])
def test_slow_upstream_gives_504(slow_proxy: ServerProcess, tmp_path: Path, path: str, body: dict, shape: str) -> None:
    """No response within the read timeout -> 504 in the dialect's own error shape."""
    r = _post(slow_proxy, path, body, fault="delay=3")
    assert r.status_code == 504
    err = r.json()
    if shape == "anthropic":
        assert err["type"] == "error" and err["error"]["type"] == "api_error"
    else:
        assert err["error"]["code"] == "upstream_timeout" and err["error"]["message"]
    [rec] = records(tmp_path / "logs", 1)
    assert (rec.status, rec.outcome) == (504, "upstream_timeout")
    _alive(slow_proxy)


def test_stalled_stream_times_out(slow_proxy: ServerProcess, tmp_path: Path) -> None:
    """A stream that stops mid-way is cut after the read timeout and recorded as such."""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            slow_proxy.url + CHAT,
            json={**OA_BODY, "stream": True},
            headers={"x-sim-fault": "stall-after=2"},
            timeout=30,
        ) as r,
    ):
        for _ in r.iter_raw():
            pass
    [rec] = records(tmp_path / "logs", 1)
    assert rec.outcome == "upstream_timeout" and rec.status == 200


def test_unreachable_upstream_gives_502(tmp_path: Path) -> None:
    """A dead upstream -> 502 in each dialect's shape, recorded; the SDKs raise their own errors."""
    proxy = start_proxy(tmp_path, f"http://127.0.0.1:{free_port()}")
    try:
        r = _post(proxy, CHAT, OA_BODY)
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unreachable"
        r = _post(proxy, MSGS, AN_BODY)
        assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"
        with pytest.raises(openai.InternalServerError):
            openai.OpenAI(base_url=proxy.url + "/v1", api_key=API_KEY, max_retries=0).chat.completions.create(**OA_BODY)
        # an upstream outage is reported, but the sidecar stays ready (its app still gets answers: 502s)
        ready = httpx.get(proxy.url + "/readyz")
        assert ready.status_code == 200, ready.text
        assert list(ready.json()["upstreams"].values()) == ["unreachable: ClientConnectorError"]
        # upstream health has its own endpoint and metric
        assert httpx.get(proxy.url + "/upstreamz").status_code == 503
        assert "cuewatch_upstream_up{upstream=" in httpx.get(proxy.url + "/metrics").text
        recs = records(tmp_path / "logs", 3)
        assert [r.outcome for r in recs] == ["upstream_unreachable"] * 3
        # the proxy's own log line for each failure carries the request id the client was given
        # (bound once per request, structlog contextvars)
        logged = [
            json.loads(line) for line in (tmp_path / "proxy.log").read_text().splitlines() if "upstream_failed" in line
        ]
        assert sorted(e["request_id"] for e in logged) == sorted(r.id for r in recs)
        assert r.headers["x-cuewatch-request-id"] in {e["request_id"] for e in logged}
        _alive(proxy)
    finally:
        proxy.stop()


@pytest.mark.parametrize("path", [CHAT, MSGS])
@pytest.mark.parametrize(
    "content,ctype,status",
    [
        (b'{"model": "x", "messages": [', "application/json", 400),
        (b"", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"model=x", "application/x-www-form-urlencoded", 415),
        (b"hello", "text/plain", 415),
    ],
)
def test_bad_requests_rejected_in_shape(
    proxy: ServerProcess, tmp_path: Path, path: str, content: bytes, ctype: str, status: int
) -> None:
    """Malformed JSON, empty body, non-object and wrong content-type are refused in the dialect's shape."""
    r = httpx.post(proxy.url + path, content=content, headers={"content-type": ctype})
    assert r.status_code == status
    err = r.json()
    if path == MSGS:
        assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    else:
        assert err["error"]["type"] == "invalid_request_error" and err["error"]["message"]
    _alive(proxy)
    assert records(tmp_path / "logs", timeout=0.5) == []  # nothing reached the model: no exchange


def test_oversize_body_gives_413(tmp_path: Path, sim: ServerProcess) -> None:
    """A body over the configured limit gets 413, whether Content-Length says so or not."""
    proxy = start_proxy(tmp_path, sim.url, max_body_bytes="2048")
    try:
        big = {"model": "x", "messages": [{"role": "user", "content": "a" * 5000}]}
        r = _post(proxy, MSGS, big)
        assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"

        def chunks() -> Iterator[bytes]:  # chunked upload: no Content-Length to refuse on
            yield b'{"model": "x", "messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"a" * 1000
            yield b'"}]}'

        r = httpx.post(proxy.url + CHAT, content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        assert _post(proxy, CHAT, OA_BODY).status_code == 200  # still serving
    finally:
        proxy.stop()


def test_other_v1_paths_pass_through(proxy: ServerProcess, sim: ServerProcess) -> None:
    """Paths other than the two model routes are forwarded untouched (and unrecorded)."""
    direct = httpx.get(sim.url + "/v1/models")
    via = httpx.get(proxy.url + "/v1/models", headers={"authorization": f"Bearer {API_KEY}"})
    assert via.status_code == 200 and via.content == direct.content
    models = openai.OpenAI(base_url=proxy.url + "/v1", api_key=API_KEY).models.list()
    assert [m.id for m in models] == ["sim-model"]
    assert httpx.get(proxy.url + "/v1/nope").status_code == 404


@pytest.mark.slow
def test_client_disconnect_mid_stream_is_recorded(tmp_path: Path, sim: ServerProcess) -> None:
    """A client that hangs up mid-stream leaves a record saying so; the proxy carries on."""
    slow_sim_port = free_port()
    profile = tmp_path / "slow.yaml"
    profile.write_text("name: slow\nchunk_interval_ms: 100\nchunk_chars: 4\n")
    with ServerProcess(["sim", "--profile", str(profile), "--port", str(slow_sim_port)], slow_sim_port) as slow:
        proxy = start_proxy(tmp_path, slow.url)
        try:
            with httpx.stream("POST", proxy.url + CHAT, json={**OA_BODY, "stream": True}) as r:
                it = r.iter_raw()
                next(it)
                next(it)
            [rec] = records(tmp_path / "logs", 1)
            assert rec.outcome == "client_disconnect"
            _alive(proxy)
        finally:
            proxy.stop()
