"""Side channels of experiments, closed: shadow copies and probes may go out with a dedicated
credential (`shadow.auth`) instead of the client's key, and the sticky salt comes from a secret,
so a client can neither see its rate limits spent on copies nor compute its own arm.

Real processes on loopback: the proxy is a `cuewatch serve` process; the upstream is the
simulator's app served by uvicorn in a thread behind a thin layer that records each request's
headers (the simulator's /_sim/requests lists bodies only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog

from monitor._procs import ServerProcess
from monitor.errors import ConfigError
from monitor.experiments import hash_unit, pick_arm
from monitor.policy import load_policy, unset_secrets
from monitor.sim import SimApp, load_profile
from proxy._shadow import copy_headers
from tests._support import API_KEY, ThreadServer, records, start_proxy, wait_for

DEDICATED = "sk-shadow-DEDICATED-0123456789abcdef"  # planted too: must never appear in logs or records


class RecordingSim:
    """The simulator's ASGI app, recording the headers and body of every model call it gets."""

    def __init__(self) -> None:
        self.app = SimApp(load_profile("honest"), seed=5)
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.seen.append({"path": scope["path"], "headers": headers, "body": orjson.loads(body)})
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        await self.app(scope, replay, send)


def _shadow_experiment(name: str, cue: str, auth: str | None) -> str:
    return (
        f"  - name: {name}\n    mode: shadow\n    filter: {{headers: {{x-exp: {name}}}}}\n    arms:\n"
        f"      - {{name: a, probability: 0.5, cue: {{where: system, texts: [{cue}-A]}}}}\n"
        f"      - {{name: b, probability: 0.5, cue: {{where: system, texts: [{cue}-B]}}}}\n"
        f"    shadow: {{sample: 1.0, max_requests_per_minute: 100000, max_tokens_per_hour: 100000000"
        + (f", auth: {auth}" if auth else "")
        + "}\n"
    )


CREDENTIAL_POLICY = (
    "version: 1\nseed: 1\nexperiments:\n"
    + _shadow_experiment("dedicated", "CUE-DEDICATED", "{env: CUEWATCH_TEST_SHADOW_KEY}")
    + _shadow_experiment("clientkey", "CUE-CLIENTKEY", None)
    + _shadow_experiment("unreadable", "CUE-UNREADABLE", "{env: CUEWATCH_TEST_UNSET_SHADOW_KEY}")
    # probes without their own `auth` use the experiment's shadow credential
    + "  - name: probing\n    mode: shadow\n    filter: {headers: {x-exp: probing}}\n    arms:\n"
    "      - {name: a, probability: 0.5, cue: {where: system, texts: [CUE-PROBE-A]}}\n"
    "      - {name: b, probability: 0.5, cue: {where: system, texts: [CUE-PROBE-B]}}\n"
    "    probes: {rate_per_minute: 600, dialect: anthropic, model: probe-model, max_tokens: 16}\n"
    "    shadow: {sample: 0, max_requests_per_minute: 100000, max_tokens_per_hour: 100000000,"
    " auth: {env: CUEWATCH_TEST_SHADOW_KEY}}\n"
)


def _cue_of(entry: dict[str, Any]) -> str | None:
    text = orjson.dumps(entry["body"]).decode()
    return next((c for c in ("DEDICATED", "CLIENTKEY", "UNREADABLE", "PROBE") if f"CUE-{c}" in text), None)


def _key_of(headers: dict[str, str]) -> str | None:
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ") or None


def test_shadow_copies_and_probes_use_the_dedicated_credential(tmp_path: Path) -> None:
    """With `shadow.auth` the upstream sees the dedicated key on shadow copies and probes, in the
    dialect's auth header and without the client's key or organisation; the client's own request
    keeps the client's key. Without it, copies carry the client's key (the documented side
    channel). An unreadable credential sends no copies at all rather than the client's key."""
    upstream = RecordingSim()
    policy = tmp_path / "policy.yaml"
    policy.write_text(CREDENTIAL_POLICY)
    client = {"authorization": f"Bearer {API_KEY}", "openai-organization": "org-client", "x-kept": "yes"}
    chat = {"model": "m", "messages": [{"role": "user", "content": "What is the capital of Portugal?"}]}
    messages = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "Name a colour."}]}
    with ThreadServer(upstream) as up:
        proxy = start_proxy(tmp_path, up.url, policy=policy, extra_env={"CUEWATCH_TEST_SHADOW_KEY": DEDICATED})
        try:
            for exp in ("dedicated", "clientkey", "unreadable"):
                r = httpx.post(proxy.url + "/v1/chat/completions", headers={**client, "x-exp": exp}, json=chat)
                assert r.status_code == 200, r.text
            r = httpx.post(
                proxy.url + "/v1/messages",
                headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01", "x-exp": "dedicated"},
                json=messages,
            )
            assert r.status_code == 200, r.text
            # 4 client requests, 2 copies of each of 3 (dedicated: chat and messages; clientkey), probes
            wait_for(lambda: len([e for e in upstream.seen if _cue_of(e) == "PROBE"]) >= 2, timeout=20)
            wait_for(lambda: len([e for e in upstream.seen if _cue_of(e) in ("DEDICATED", "CLIENTKEY")]) >= 6)
            metrics = wait_for(lambda: "no_credential" in (m := httpx.get(proxy.url + "/metrics").text) and m)
        finally:
            proxy.stop()
    seen = list(upstream.seen)
    own = [e for e in seen if _cue_of(e) is None and e["body"].get("model") == "m"]
    assert len(own) == 4 and all(_key_of(e["headers"]) == API_KEY for e in own)
    assert sum(e["headers"].get("openai-organization") == "org-client" for e in own) == 3

    dedicated = [e for e in seen if _cue_of(e) == "DEDICATED"]
    assert sorted(e["path"] for e in dedicated) == ["/v1/chat/completions"] * 2 + ["/v1/messages"] * 2
    for e in dedicated:
        h = e["headers"]
        if e["path"] == "/v1/messages":  # Anthropic: x-api-key, the client's API version kept
            assert h["x-api-key"] == DEDICATED and "authorization" not in h
            assert h["anthropic-version"] == "2023-06-01"
        else:  # OpenAI: a bearer token; the client's organisation dropped, other headers kept
            assert h["authorization"] == f"Bearer {DEDICATED}" and "x-api-key" not in h
            assert "openai-organization" not in h and h["x-kept"] == "yes"
        assert API_KEY not in orjson.dumps(h).decode()

    probes = [e for e in seen if _cue_of(e) == "PROBE"]
    assert probes and all(e["headers"]["x-api-key"] == DEDICATED and e["path"] == "/v1/messages" for e in probes)

    clientkey = [e for e in seen if _cue_of(e) == "CLIENTKEY"]
    assert len(clientkey) == 2
    assert all(
        _key_of(e["headers"]) == API_KEY and e["headers"]["openai-organization"] == "org-client" for e in clientkey
    )

    # the unreadable credential: no copy went out, with any key; said once, and counted
    assert not [e for e in seen if _cue_of(e) == "UNREADABLE"]
    log = (tmp_path / "proxy.log").read_text()
    assert log.count("shadow_copies_disabled") == 1 and "CUEWATCH_TEST_UNSET_SHADOW_KEY" in log
    assert 'cuewatch_shadow_requests_total{experiment="unreadable",outcome="no_credential"} 2.0' in metrics

    # shadow and probe records are written; no key is, in the records or the process log
    recs = records(tmp_path / "logs", 10)
    assert {r.origin for r in recs} >= {"client", "shadow", "probe"}
    written = log + "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*") if p.is_file())
    assert DEDICATED not in written and API_KEY not in written


def test_copy_headers_replace_every_client_credential() -> None:
    """The dialect's auth header carries the dedicated key; Azure's `api-key` stays `api-key`;
    the client's credential, organisation, project and cookies never travel on a copy."""
    client = {
        "authorization": "Bearer client",
        "x-api-key": "client",
        "openai-organization": "org",
        "openai-project": "proj",
        "cookie": "session=1",
        "x-goog-api-key": "client",
        "content-type": "application/json; charset=utf-8",
        "anthropic-beta": "b",
        "user-agent": "sdk",
    }
    out = copy_headers("openai", client, "dedicated")
    assert out == {
        "authorization": "Bearer dedicated",
        "content-type": "application/json; charset=utf-8",
        "anthropic-beta": "b",
        "user-agent": "sdk",
    }
    out = copy_headers("anthropic", client, "dedicated")
    assert out["x-api-key"] == "dedicated" and "authorization" not in out
    assert out["anthropic-version"] == "2023-06-01"
    azure = copy_headers("openai", {"api-key": "client", "content-type": "application/json"}, "dedicated")
    assert azure == {"api-key": "dedicated", "content-type": "application/json"}


# ------------------------------------------------------------------------------ sticky salt

STICKY = """version: 1
debug_headers: true
experiments:
  - name: sticky
    sticky: user
    salt: {salt}
    arms:
      - {{name: a, probability: 0.5, cue: {{where: none}}}}
      - {{name: b, probability: 0.5, cue: {{where: none}}}}
"""
USERS = [f"user-{i}" for i in range(24)]


def _arms(proxy: ServerProcess) -> dict[str, str]:
    out: dict[str, str] = {}
    with httpx.Client(base_url=proxy.url) as client:
        for user in USERS + USERS:  # twice: sticky
            body = {"model": "m", "user": user, "messages": [{"role": "user", "content": "hi"}]}
            arm = client.post("/v1/chat/completions", json=body).headers["x-cuewatch-arm"]
            assert out.setdefault(user, arm) == arm
    return out


def test_sticky_salt_from_a_secret_assigns_by_its_value(tmp_path: Path, sim: ServerProcess) -> None:
    """Two proxies whose salts come from different secrets (an env var, a file) assign users
    differently; each arm is the one the secret's value gives, so only its holder can compute it."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    env_policy, file_policy = tmp_path / "env.yaml", tmp_path / "file.yaml"
    env_policy.write_text(STICKY.format(salt="{env: CUEWATCH_TEST_STICKY_SALT}"))
    salt_file = tmp_path / "salt"
    salt_file.write_text("salt-from-a-file\n")
    file_policy.write_text(STICKY.format(salt=f"{{file: {salt_file}}}"))
    one = start_proxy(tmp_path / "one", sim.url, policy=env_policy, extra_env={"CUEWATCH_TEST_STICKY_SALT": "salt-env"})
    two = start_proxy(tmp_path / "two", sim.url, policy=file_policy)
    try:
        arms_one, arms_two = _arms(one), _arms(two)
    finally:
        one.stop()
        two.stop()
    exp = load_policy(file_policy).experiments[0]
    assert arms_one == {u: pick_arm(exp.arms, hash_unit("salt-env", u)).name for u in USERS}
    assert arms_two == {u: pick_arm(exp.arms, hash_unit("salt-from-a-file", u)).name for u in USERS}
    assert 0 < sum(arms_one[u] != arms_two[u] for u in USERS) < len(USERS)
    # the public default (the experiment's name) is not what either used
    assert arms_one != {u: pick_arm(exp.arms, hash_unit("sticky", u)).name for u in USERS}


def test_unset_salt_secret_is_a_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sticky assignment cannot work without its salt: the policy does not load (nor start, nor
    replace a running one), naming file, line, field and the variable."""
    monkeypatch.delenv("CUEWATCH_TEST_UNSET_SALT", raising=False)
    path = tmp_path / "policy.yaml"
    path.write_text(STICKY.format(salt="{env: CUEWATCH_TEST_UNSET_SALT}"))
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert str(err.value) == (
        f"{path}:6: experiments.0.salt: Value error, environment variable CUEWATCH_TEST_UNSET_SALT is not set"
    )
    path.write_text(STICKY.format(salt=f"{{file: {tmp_path / 'missing'}}}"))
    with pytest.raises(ConfigError, match=r":6: experiments\.0\.salt: Value error, cannot read .*missing"):
        load_policy(path)
    (tmp_path / "empty").write_text("\n")
    path.write_text(STICKY.format(salt=f"{{file: {tmp_path / 'empty'}}}"))
    with pytest.raises(ConfigError, match=r":6: experiments\.0\.salt: Value error, .*empty is empty"):
        load_policy(path)


def test_public_salt_is_warned_and_the_secret_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A literal salt (or none: the experiment's name) still works, with a warning that clients
    can compute their arm; a secret salt gives none and is never dumped."""
    path = tmp_path / "policy.yaml"
    path.write_text(STICKY.format(salt="written-in-the-file"))
    with structlog.testing.capture_logs() as logs:
        assert load_policy(path).experiments[0].hash_salt == "written-in-the-file"
    assert [e["event"] for e in logs] == ["sticky_salt_public"] and logs[0]["experiment"] == "sticky"
    path.write_text(STICKY.replace("    salt: {salt}\n", "").format())
    with structlog.testing.capture_logs() as logs:
        assert load_policy(path).experiments[0].hash_salt == "sticky"
    assert [e["event"] for e in logs] == ["sticky_salt_public"]

    monkeypatch.setenv("CUEWATCH_TEST_STICKY_SALT", "very-secret-salt")
    path.write_text(STICKY.format(salt="{env: CUEWATCH_TEST_STICKY_SALT}"))
    with structlog.testing.capture_logs() as logs:
        exp = load_policy(path).experiments[0]
    assert logs == [] and exp.hash_salt == "very-secret-salt"
    shown = repr(exp) + orjson.dumps(exp.model_dump(mode="json")).decode()
    assert "very-secret-salt" not in shown and "CUEWATCH_TEST_STICKY_SALT" in shown


def test_unset_shadow_credential_is_a_check_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like probes' `auth`, an unreadable `shadow.auth` is a warning where the policy is checked
    (it may be set where it runs)."""
    monkeypatch.delenv("CUEWATCH_TEST_UNSET_SHADOW_KEY", raising=False)
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\nexperiments:\n" + _shadow_experiment("e", "X", "{env: CUEWATCH_TEST_UNSET_SHADOW_KEY}")
    )
    assert unset_secrets(load_policy(path)) == [
        "experiments.0.shadow.auth: environment variable CUEWATCH_TEST_UNSET_SHADOW_KEY is not set"
    ]
