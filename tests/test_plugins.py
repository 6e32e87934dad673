"""One contract over every registered plugin of every kind (`monitor.plugins.KINDS`): parameters
validated on the class (unknown ones refused with the field named), built from its own test
parameters, a repr that shows no secret, and per kind: stores keep their state across a reopen,
sinks deliver the same payload for the same notification, log formats read a line the same way
twice. Detectors have their own deeper contract in test_detectors.py (determinism under a seed,
snapshot round trip); features theirs in test_detectors.py::test_feature_contract."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from detectors import features
from monitor.alerts.sinks.base import Notification
from monitor.plugins import KINDS, LOG_FORMATS, SINKS, STORES
from tests._support import ThreadServer
from tests.test_alerts import Receiver

SECRET = "https://hooks.example.com/services/T000/B000/secret-token-xyz"
PLUGINS = [(kind, name) for kind, reg in KINDS.items() for name in reg.names()]


def _context(kind: str, name: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[dict[str, Any], dict]:
    """The test parameters of a plugin, made concrete here, and what it is built with."""
    cls = KINDS[kind].get(name)
    params = dict(cls.test_params)
    context: dict[str, Any] = {}
    if kind == "alert sink":
        context = {"receiver": "contract", "client": httpx.AsyncClient()}
    if kind == "alert store":
        if name == "redis":
            params["url"] = request.getfixturevalue("redis_url")
        else:
            params["path"] = tmp_path / params["path"]
    return params, context


def test_every_kind_has_plugins() -> None:
    assert set(KINDS) == {"detector", "alert sink", "alert store", "log format"}
    assert SINKS.names() == ["log", "slack", "webhook"] and STORES.names() == ["redis", "sqlite"]
    assert LOG_FORMATS.names() == ["anthropic_batch", "cuewatch", "openai_batch"]


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_contract(
    kind: str, name: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUEWATCH_CONTRACT_URL", SECRET)
    registry = KINDS[kind]
    cls = registry.get(name)
    assert issubclass(cls.Params, BaseModel) and isinstance(cls.test_params, dict)
    assert cls.Params.model_config.get("extra") == "forbid", f"{name}: Params must refuse unknown fields"
    params, context = _context(kind, name, tmp_path, request)
    with pytest.raises(ValidationError, match="no_such_parameter"):
        registry.create(name, {**params, "no_such_parameter": 1}, **context)
    plugin = registry.create(name, params, **context)
    shown = repr(plugin)
    assert SECRET not in shown and "secret-token" not in shown and "redis://" not in shown, shown
    if kind == "alert store":
        plugin.close()


@pytest.mark.parametrize("name", STORES.names())
def test_store_keeps_its_state_across_a_reopen(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    params, _ = _context("alert store", name, tmp_path, request)
    params = {**params, "prefix": f"c{tmp_path.name[-8:]}"} if name == "redis" else params
    first = STORES.create(name, params)
    assert first.enqueue("ops", {"alerts": []}, "key-1", now=100.0)
    first.add_silence({"alertname": "x"}, 3600.0, "maintenance", "ops", now=100.0)
    first.close()
    again = STORES.create(name, params)
    assert [r.idempotency_key for r in again.rows("pending")] == ["key-1"]
    assert [s.comment for s in again.silences(now=200.0)] == ["maintenance"]
    assert not again.enqueue("ops", {"alerts": []}, "key-1", now=300.0)  # the key is remembered
    again.close()


@pytest.mark.parametrize("name", ["slack", "webhook"])
def test_http_sinks_deliver_the_same_payload_for_the_same_notification(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Receiver()
    note = Notification("contract", "k1", {"alertname": "a"}, [_alert()])
    with ThreadServer(app) as hook:
        monkeypatch.setenv("CUEWATCH_CONTRACT_URL", hook.url + "/hook")

        async def go() -> None:
            async with httpx.AsyncClient() as client:
                sink = SINKS.create(name, SINKS.get(name).test_params, receiver="contract", client=client)
                await sink.send(note)
                await sink.send(note)

        asyncio.run(go())
    bodies = [json.loads(r["body"]) for r in app.requests]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    if name == "webhook":  # the same idempotency key on every retry of one notification
        keys = {r["headers"]["idempotency-key"] for r in app.requests}
        assert keys == {"k1"}


def test_log_formats_read_lines_the_same_way_twice(tmp_path: Path) -> None:
    from monitor.replay.readers import Inputs

    lines = [
        {"custom_id": "e/monitored/p1", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}},
        {"custom_id": "e/monitored/p1", "response": {"status_code": 200, "body": {
            "created": 1767225600, "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                                                "finish_reason": "stop"}]}}},
        {"custom_id": "e/unmonitored/p1", "params": {"model": "m", "max_tokens": 10,
                                                     "messages": [{"role": "user", "content": "hi"}]}},
        {"custom_id": "e/unmonitored/p1", "result": {"type": "succeeded", "message": {
            "role": "assistant", "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn"}}},
    ]  # fmt: skip
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    first, second = Inputs([path]), Inputs([path])
    a, b = list(first), list(second)
    assert [x.model_dump() for x in a] == [x.model_dump() for x in b] and len(a) == 2, first.bad_lines
    assert {x.dialect for x in a} == {"openai", "anthropic"} and {x.response_text for x in a} == {"hello"}


def test_features_are_registered_with_a_kind() -> None:
    for name in features.names():
        assert features.kind(name) in ("binary", "continuous", "category", "object"), name


def _alert() -> dict[str, Any]:
    return {
        "kind": "alert",
        "fingerprint": "f" * 16,
        "labels": {"alertname": "a", "experiment": "e", "detector": "cue_gap", "metric": "complied", "arms": "x,y"},
        "status": "firing",
        "severity": "warning",
        "summary": "e: complied higher under 'x' than 'y'",
        "evidence": {"e_value": 150.0, "p_value": 0.0067, "alpha": 0.01, "counts": {}, "example_ids": {}},
        "replay_command": "cuewatch replay logs",
        "starts_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
