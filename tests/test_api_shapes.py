"""Every API shape real apps send, through the real proxy with the official SDKs: the OpenAI
Responses API, tool loops under live cues (the upstream must get a request its own API accepts),
other route layouts (no /v1, Azure, Gemini, a base URL with a path), all choices, cache token
counts, br/zstd bodies, and every setting as a flag."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor._procs import ServerProcess
from monitor.cli import _settings, build_parser
from monitor.routes import Route
from monitor.settings import Settings, flag
from tests._support import records, sim_requests, start_proxy, wait_for
from tests.conftest import SDKClients

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS_CHAT = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
TOOLS_RESPONSES = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]
TOOLS_ANTHROPIC = [{"name": "get_weather", "input_schema": WEATHER}]
AZURE = "my-deployment"  # an Azure OpenAI deployment name (the model, named in the path)


def _seen(sim: ServerProcess, request_id: str) -> dict[str, Any]:
    """What the upstream received for the response with this x-request-id."""
    return next(e for e in sim_requests(sim.url) if e.get("request_id") == request_id)


def _json(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


# ------------------------------------------------------------------ the providers' own rules


def anthropic_problems(body: dict[str, Any]) -> list[str]:
    """Messages API rules on tool use: every tool_use is answered in the next user turn, whose
    tool_result blocks come first, before any text; the conversation starts with the user."""
    problems: list[str] = []
    msgs = body["messages"]
    if msgs[0]["role"] != "user":
        problems.append("first message is not the user's")
    for i, m in enumerate(msgs):
        blocks = m["content"] if isinstance(m["content"], list) else []
        kinds = [b["type"] for b in blocks]
        if "tool_result" in kinds:
            last_result = max(j for j, k in enumerate(kinds) if k == "tool_result")
            if any(k != "tool_result" for k in kinds[:last_result]):
                problems.append(f"message {i}: a block before a tool_result block")
        uses = [b["id"] for b in blocks if b["type"] == "tool_use"]
        if m["role"] == "assistant" and uses:
            nxt = msgs[i + 1] if i + 1 < len(msgs) else None
            answered = (
                [b.get("tool_use_id") for b in nxt["content"]] if nxt and isinstance(nxt["content"], list) else []
            )
            if nxt is None or nxt["role"] != "user" or set(uses) - set(answered):
                problems.append(f"message {i}: tool_use not answered in the next user turn")
    return problems


def chat_problems(body: dict[str, Any]) -> list[str]:
    """Chat completions: an assistant message with tool_calls is followed by one tool message
    per call before any other message, and tool messages answer a call."""
    problems: list[str] = []
    msgs = body["messages"]
    open_calls: set[str] = set()
    for i, m in enumerate(msgs):
        if m["role"] == "tool":
            if m.get("tool_call_id") not in open_calls:
                problems.append(f"message {i}: tool message answers no open call")
            open_calls.discard(m.get("tool_call_id"))
            continue
        if open_calls:
            problems.append(f"message {i}: {m['role']} message before every tool call was answered")
        open_calls = {c["id"] for c in m.get("tool_calls") or []}
    return problems


def responses_problems(body: dict[str, Any]) -> list[str]:
    """Responses API: every function_call_output answers a function_call given earlier."""
    items = body["input"] if isinstance(body["input"], list) else []
    calls: set[str] = set()
    problems: list[str] = []
    for i, item in enumerate(items):
        if item.get("type") == "function_call":
            calls.add(item["call_id"])
        elif item.get("type") == "function_call_output" and item["call_id"] not in calls:
            problems.append(f"item {i}: output for an unknown call")
    return problems


def test_rule_checkers_catch_the_old_placement() -> None:
    """The checkers fail on the shapes the proxy used to send (a cue block before tool_result)."""
    bad = {
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {}}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "CUE"}, {"type": "tool_result", "tool_use_id": "t1"}],
            },
        ]
    }
    assert anthropic_problems(bad)
    chat = {
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {}}]},
            {"role": "user", "content": "CUE"},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ]
    }
    assert chat_problems(chat)
    assert responses_problems({"input": [{"type": "function_call_output", "call_id": "x", "output": ""}]})


# ------------------------------------------------------------------ live cues in tool loops


def _cue_policy(tmp: Path, where: str, position: str) -> Path:
    path = tmp / "policy.yaml"
    path.write_text(
        "version: 1\nseed: 3\nexperiments:\n  - name: tier\n    arms:\n"
        f"      - {{name: a, probability: 0.5, cue: {{where: {where}, position: {position}, texts: [CUE-A]}}}}\n"
        f"      - {{name: b, probability: 0.5, cue: {{where: {where}, position: {position}, texts: [CUE-B]}}}}\n"
    )
    return path


@pytest.fixture(scope="module", params=["before", "after"])
def user_cue_proxy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sim: ServerProcess
) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = tmp_path_factory.mktemp(f"user-cue-{request.param}")
    proc = start_proxy(tmp, sim.url, policy=_cue_policy(tmp, "user", request.param))
    yield proc, tmp / "logs"
    proc.stop()


def test_anthropic_tool_loop_under_live_user_cue(
    user_cue_proxy: tuple[ServerProcess, Path], sim: ServerProcess, sdk: SDKClients
) -> None:
    """The turn holding tool_result blocks keeps them first; earlier turns reach the upstream
    exactly as the client sent them."""
    proxy, logs = user_cue_proxy
    client = sdk.anthropic(proxy.url)
    first = [{"role": "user", "content": "What is the weather in Paris?"}]
    r1 = client.messages.create(model="claude-sim", max_tokens=300, tools=TOOLS_ANTHROPIC, messages=first)
    use = next(b for b in r1.content if b.type == "tool_use")
    loop = [
        *first,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r1.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21 C"}]},
    ]
    raw = client.messages.with_raw_response.create(
        model="claude-sim", max_tokens=300, tools=TOOLS_ANTHROPIC, messages=loop
    )
    seen = _seen(sim, raw.headers["x-request-id"])["body"]
    assert anthropic_problems(seen) == []
    assert seen["messages"][:-1] == _json(loop[:-1])  # no earlier turn rewritten
    last = seen["messages"][-1]["content"]
    assert last[0] == _json(loop[-1]["content"][0])
    assert last[1]["type"] == "text" and last[1]["text"] in ("CUE-A", "CUE-B")
    assert raw.parse().content[0].type == "text"  # the loop ends: the model answered
    rec = next(r for r in records(logs, 2) if r.id == raw.headers["x-cuewatch-request-id"])
    # The record holds the client's conversation; the cue it carried is a field of its own.
    assert [m.role for m in rec.messages] == ["user", "assistant", "tool"]
    assert rec.cue == last[1]["text"] and rec.arm == {"CUE-A": "a", "CUE-B": "b"}[rec.cue]


def test_chat_tool_loop_under_live_user_cue(
    user_cue_proxy: tuple[ServerProcess, Path], sim: ServerProcess, sdk: SDKClients
) -> None:
    """After a tool message the cue is a new user message at the end, not an edit of the first
    user message."""
    proxy, _ = user_cue_proxy
    client = sdk.openai(proxy.url + "/v1")
    first = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
    raw1 = client.chat.completions.with_raw_response.create(model="gpt-sim", tools=TOOLS_CHAT, messages=first)
    seen1 = _seen(sim, raw1.headers["x-request-id"])["body"]
    assert seen1["messages"][0] == first[0] and seen1["messages"][1]["content"] != first[1]["content"]
    call = raw1.parse().choices[0].message.tool_calls[0]
    loop = [
        *first,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
    ]
    raw = client.chat.completions.with_raw_response.create(model="gpt-sim", tools=TOOLS_CHAT, messages=loop)
    seen = _seen(sim, raw.headers["x-request-id"])["body"]
    assert chat_problems(seen) == []
    assert seen["messages"][:-1] == _json(loop)
    assert seen["messages"][-1]["role"] == "user" and seen["messages"][-1]["content"] in ("CUE-A", "CUE-B")


def test_responses_tool_loop_under_live_user_cue(
    user_cue_proxy: tuple[ServerProcess, Path], sim: ServerProcess, sdk: SDKClients
) -> None:
    """Responses API: a string input takes the cue; after a function_call_output the cue is a
    user message at the end; the earlier items are untouched."""
    proxy, logs = user_cue_proxy
    client = sdk.openai(proxy.url + "/v1")
    raw1 = client.responses.with_raw_response.create(model="gpt-sim", input="Weather in Paris?", tools=TOOLS_RESPONSES)
    seen1 = _seen(sim, raw1.headers["x-request-id"])["body"]
    assert seen1["input"] != "Weather in Paris?" and "Weather in Paris?" in seen1["input"]
    call = next(item for item in raw1.parse().output if item.type == "function_call")
    loop = [
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
    ]
    raw = client.responses.with_raw_response.create(model="gpt-sim", input=loop, tools=TOOLS_RESPONSES)
    seen = _seen(sim, raw.headers["x-request-id"])["body"]
    assert responses_problems(seen) == []
    assert seen["input"][:-1] == _json(loop)
    assert seen["input"][-1] == {"role": "user", "content": seen["input"][-1]["content"]}
    assert seen["input"][-1]["content"] in ("CUE-A", "CUE-B")
    assert raw.parse().output_text
    rec = next(r for r in records(logs, 2) if r.id == raw.headers["x-cuewatch-request-id"])
    assert rec.dialect == "responses" and [m.role for m in rec.messages] == ["user", "assistant", "tool"]
    assert rec.messages[1].tool_calls[0].name == "get_weather" and rec.messages[2].tool_call_id == call.call_id


def test_responses_system_cue_goes_to_instructions(tmp_path: Path, sim: ServerProcess, sdk: SDKClients) -> None:
    proxy = start_proxy(tmp_path, sim.url, policy=_cue_policy(tmp_path, "system", "after"))
    try:
        client = sdk.openai(proxy.url + "/v1")
        raw = client.responses.with_raw_response.create(model="gpt-sim", instructions="Be brief.", input="Hi")
        seen = _seen(sim, raw.headers["x-request-id"])["body"]
        assert seen["instructions"] in ("Be brief.\n\nCUE-A", "Be brief.\n\nCUE-B") and seen["input"] == "Hi"
    finally:
        proxy.stop()


# ------------------------------------------------------------------ the Responses API recorded


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_responses_api_recorded(
    proxy: ServerProcess, sim: ServerProcess, tmp_path: Path, stream: bool, sdk: SDKClients
) -> None:
    """instructions and input become messages; output text, reasoning summary and usage are
    recorded; the client gets the upstream's bytes."""
    client = sdk.openai(proxy.url + "/v1")
    ask: dict[str, Any] = {
        "model": "gpt-sim",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Tell me about tea."}]}],
        "reasoning": {"summary": "auto"},
    }
    if stream:
        with client.responses.stream(**ask) as events:
            kinds = [e.type for e in events]
            final = events.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert "response.output_text.delta" in kinds
    else:
        final = client.responses.create(**ask)
    [rec] = records(tmp_path / "logs", 1)
    assert (rec.dialect, rec.path, rec.stream, rec.status, rec.outcome) == (
        "responses",
        "/v1/responses",
        stream,
        200,
        "ok",
    )
    assert [(m.role, m.text) for m in rec.messages] == [("system", "Be brief."), ("user", "Tell me about tea.")]
    assert rec.response_text == final.output_text and rec.response_text
    summary = [s.text for item in final.output if item.type == "reasoning" for s in item.summary]
    assert rec.reasoning == "\n\n".join(summary) and summary
    assert final.usage is not None
    assert (rec.usage.input_tokens, rec.usage.output_tokens) == (final.usage.input_tokens, final.usage.output_tokens)
    assert rec.finish_reason == "completed"


def test_responses_stream_error_recorded(proxy: ServerProcess, tmp_path: Path) -> None:
    """An error event in a 200 Responses stream makes a stream_error record with its message."""
    body = {"model": "gpt-sim", "input": "Tell me a long story about tea please.", "stream": True}
    with httpx.stream(
        "POST", proxy.url + "/v1/responses", json=body, headers={"x-sim-fault": "error-event"}, timeout=30
    ) as r:
        text = "".join(r.iter_text())
    assert r.status_code == 200 and "event: error" in text
    [rec] = records(tmp_path / "logs", 1)
    assert rec.outcome == "stream_error" and rec.error == "server_error: stream interrupted"


# ------------------------------------------------------------------ routes


@pytest.fixture(scope="module")
def prefixed_proxy(
    tmp_path_factory: pytest.TempPathFactory, sim: ServerProcess
) -> Iterator[tuple[ServerProcess, Path]]:
    """Upstream base URL with a path; an extra route that passes one path through unrecorded."""
    tmp = tmp_path_factory.mktemp("routes")
    routes = json.dumps([{"path": "/internal/*", "dialect": "passthrough"}])
    proc = start_proxy(tmp, sim.url + "/base", routes=routes)
    yield proc, tmp / "logs"
    proc.stop()


@pytest.mark.parametrize(
    ("make", "path", "query"),
    [
        (lambda sdk, url: sdk.openai(url), "/chat/completions", ""),
        (lambda sdk, url: sdk.openai(url + "/v1beta/openai"), "/v1beta/openai/chat/completions", ""),
        (
            lambda sdk, url: sdk.azure(url),
            "/openai/deployments/my-deployment/chat/completions",
            "api-version=2024-10-21",
        ),
    ],
    ids=["no-v1", "gemini", "azure"],
)
def test_route_layouts(
    prefixed_proxy: tuple[ServerProcess, Path], sim: ServerProcess, make: Any, path: str, query: str, sdk: SDKClients
) -> None:
    proxy, logs = prefixed_proxy
    raw = make(sdk, proxy.url).chat.completions.with_raw_response.create(
        model="my-deployment", messages=[{"role": "user", "content": "Tell me about tea."}]
    )
    seen = _seen(sim, raw.headers["x-request-id"])
    assert (seen["path"], seen["query"]) == ("/base" + path, query)
    rec = wait_for(lambda: next((r for r in records(logs) if r.id == raw.headers["x-cuewatch-request-id"]), None))
    assert (rec.dialect, rec.path, rec.model) == ("openai", path, "my-deployment")
    assert rec.response_text == raw.parse().choices[0].message.content


def test_passthrough_logged_not_recorded(
    prefixed_proxy: tuple[ServerProcess, Path], sim: ServerProcess, sdk: SDKClients
) -> None:
    """Other endpoints and paths routed `passthrough` are forwarded and logged with status and
    timing, never recorded; dot segments are refused."""
    proxy, logs = prefixed_proxy
    before = len(records(logs))
    client = sdk.openai(proxy.url + "/v1")
    assert [m.id for m in client.models.list()] == ["sim-model"]
    r = httpx.post(proxy.url + "/internal/chat/completions", json={"model": "m", "messages": []}, timeout=10)
    assert r.status_code == 200 and r.json()["object"] == "chat.completion"
    assert httpx.get(proxy.url + "/v1/%2e%2e/healthz").status_code == 400
    log = proxy.log_path.read_text() if proxy.log_path else ""
    lines = [json.loads(line) for line in log.splitlines() if '"passthrough"' in line]
    assert {(x["method"], x["path"], x["status"]) for x in lines} >= {
        ("GET", "/v1/models", 200),
        ("POST", "/internal/chat/completions", 200),
    }
    assert all(isinstance(x["ms"], float) for x in lines)
    assert len(records(logs)) == before


def test_route_flag_and_table() -> None:
    table = Settings(routes=[Route.parse("/v2/generate=openai@http://other:9000/api")]).route_table()
    assert table.target("POST", "/v2/generate").dialect == "openai"
    assert table.target("POST", "/v2/generate").base == "http://other:9000/api"
    assert table.target("POST", "/v1/messages").dialect == "anthropic"
    assert table.target("POST", "/v1/messages/count_tokens").dialect is None
    assert table.target("POST", "/v1/responses").dialect == "responses"
    assert table.target("GET", "/v1/responses").dialect is None
    assert table.target("POST", "/v1/embeddings").dialect is None
    with pytest.raises(ValueError, match="PATTERN=DIALECT"):
        Route.parse("/v2/generate")
    with pytest.raises(ValueError):
        Route.parse("/v2/generate=smoke-signals")


# ------------------------------------------------------------------ complete records


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_all_choices_recorded(proxy: ServerProcess, tmp_path: Path, stream: bool, sdk: SDKClients) -> None:
    client = sdk.openai(proxy.url + "/v1")
    ask: dict[str, Any] = {"model": "gpt-sim", "n": 3, "messages": [{"role": "user", "content": "Tell me about tea."}]}
    if stream:
        texts = ["", "", ""]
        for chunk in client.chat.completions.create(**ask, stream=True):
            for c in chunk.choices:
                texts[c.index] += c.delta.content or ""
    else:
        texts = [c.message.content or "" for c in client.chat.completions.create(**ask).choices]
    [rec] = records(tmp_path / "logs", 1)
    assert [c.index for c in rec.choices] == [0, 1, 2]
    assert [c.text for c in rec.choices] == texts
    assert rec.response_text == texts[0]


def test_cache_token_counts(proxy: ServerProcess, tmp_path: Path, sdk: SDKClients) -> None:
    """Cached and cache-write input tokens, as each upstream reports them."""
    convo = [
        {"role": "user", "content": "Tell me about tea."},
        {"role": "assistant", "content": "Tea is a drink."},
        {"role": "user", "content": "And about coffee?"},
    ]
    oa = sdk.openai(proxy.url + "/v1")
    an = sdk.anthropic(proxy.url)
    chat = oa.chat.completions.create(model="gpt-sim", messages=convo)
    resp = oa.responses.create(model="gpt-sim", input=convo)
    msg = an.messages.create(model="claude-sim", max_tokens=200, messages=convo)
    recs = {r.dialect: r for r in records(tmp_path / "logs", 3)}
    assert chat.usage is not None and chat.usage.prompt_tokens_details is not None
    assert recs["openai"].usage.cache_read_tokens == chat.usage.prompt_tokens_details.cached_tokens > 0
    assert resp.usage is not None
    assert recs["responses"].usage.cache_read_tokens == resp.usage.input_tokens_details.cached_tokens > 0
    assert recs["anthropic"].usage.cache_read_tokens == msg.usage.cache_read_input_tokens > 0
    assert recs["anthropic"].usage.cache_write_tokens == msg.usage.cache_creation_input_tokens == 0


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip"])
def test_compressed_bodies_recorded(proxy: ServerProcess, tmp_path: Path, encoding: str) -> None:
    """Bodies the upstream compressed reach the client as sent and are decoded for the record."""
    r = httpx.post(
        proxy.url + "/v1/chat/completions",
        json={"model": "gpt-sim", "messages": [{"role": "user", "content": "Tell me about tea."}]},
        headers={"x-sim-fault": f"encoding={encoding}", "accept-encoding": "gzip, br, zstd"},
        timeout=30,
    )
    assert r.headers["content-encoding"] == encoding  # httpx decodes all three itself
    [rec] = records(tmp_path / "logs", 1)
    assert rec.response_text == r.json()["choices"][0]["message"]["content"] and rec.error is None


# ------------------------------------------------------------------ settings


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_every_setting_is_a_flag_with_help(command: str) -> None:
    """Each settings field is a flag of `serve` and `worker` with help naming its env var, and a
    row of the README's settings table."""
    options = {opt: a for a in _subparser(command)._actions for opt in a.option_strings}
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        option = flag(name.removesuffix("s") if name == "routes" else name)
        assert option in options, f"{name}: no {option} flag"
        assert f"CUEWATCH_{name.upper()}" in options[option].help and field.description, name
        assert f"`{name}`" in readme, f"{name}: not in the README's settings table"


def test_flags_reach_the_settings() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--read-timeout-s",
            "5",
            "--fsync",
            "never",
            "--no-access-log",
            "--route",
            "/x/*=passthrough",
            "--route",
            "/y=openai",
            "--admin-token-file",
            "/tmp/token",
        ]
    )
    s = _settings(args)
    assert (s.read_timeout_s, s.fsync, s.access_log, s.admin_token_file) == (5.0, "never", False, Path("/tmp/token"))
    assert [(r.path, r.dialect) for r in s.routes] == [("/x/*", "passthrough"), ("/y", "openai")]


# ------------------------------------------------------------------ shadow copies and probes

RESPONSES_SHADOW = """version: 1
seed: 2
experiments:
  - name: shadow-responses
    mode: shadow
    filter: {dialects: [responses]}
    shadow: {sample: 1.0, max_requests_per_minute: 1000, max_tokens_per_hour: 10000000}
    probes: {dialect: responses, model: gpt-probe, rate_per_minute: 600, max_tokens: 64}
    arms:
      - {name: watched, probability: 0.5, cue: {where: system, texts: [CUE-WATCHED]}}
      - {name: private, probability: 0.5, cue: {where: system, texts: [CUE-PRIVATE]}}
"""


def test_responses_shadow_copies_and_probes(tmp_path: Path, sim: ServerProcess, sdk: SDKClients) -> None:
    """A shadow experiment on the Responses API: one copy per arm with the cue in
    `instructions`, and known-answer probes sent as Responses API requests."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(RESPONSES_SHADOW)
    proxy = start_proxy(tmp_path, sim.url, policy=policy)
    try:
        client = sdk.openai(proxy.url + "/v1")
        raw = client.responses.with_raw_response.create(model="gpt-sim", instructions="Be brief.", input="Hi there")
        rid = raw.headers["x-cuewatch-request-id"]

        def ready() -> list[Any] | None:
            recs = records(tmp_path / "logs")
            prod = next((r for r in recs if r.id == rid), None)
            copies = [r for r in recs if prod is not None and r.origin == "shadow" and r.pair_id == prod.pair_id]
            probes = [r for r in recs if r.origin == "probe"]
            return [prod, copies, probes] if len(copies) == 2 and len(probes) >= 2 else None

        prod, copies, probes = wait_for(ready, timeout=20)
    finally:
        proxy.stop()
    assert prod.arm is None and prod.dialect == "responses"
    assert sorted((c.arm, c.cue, c.dialect, c.path) for c in copies) == [
        ("private", "CUE-PRIVATE", "responses", "/v1/responses"),
        ("watched", "CUE-WATCHED", "responses", "/v1/responses"),
    ]
    seen = [e["body"] for e in sim_requests(sim.url) if e["path"] == "/v1/responses"]
    assert {"CUE-WATCHED\n\nBe brief.", "CUE-PRIVATE\n\nBe brief."} <= {b.get("instructions") for b in seen}
    assert all(p.dialect == "responses" and p.outcome == "ok" and p.response_text for p in probes)
    assert all(p.expected_answer and p.model == "gpt-probe" for p in probes)


# ------------------------------------------------------------------ placements, as pure functions


def _cue(**kw: Any) -> Any:
    from monitor.policy import Cue

    return Cue(where="user", texts=["CUE"], **kw)


def test_user_cue_turns_and_prefills() -> None:
    from monitor.cues import apply_cue

    convo = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    first, _ = apply_cue("openai", {"messages": convo}, _cue(turn="first"), "CUE")
    assert first["messages"][0]["content"] == "CUE\n\nfirst" and first["messages"][1:] == convo[1:]
    last, _ = apply_cue("openai", {"messages": convo}, _cue(position="after"), "CUE")
    assert last["messages"][2]["content"] == [{"type": "text", "text": "second"}, {"type": "text", "text": "CUE"}]
    assert convo[2]["content"] == [{"type": "text", "text": "second"}]  # the client's objects untouched
    prefill = [*convo, {"role": "assistant", "content": "The answer is"}]
    out, _ = apply_cue("anthropic", {"messages": prefill}, _cue(), "CUE")
    assert out["messages"][3] == prefill[3] and out["messages"][2]["content"][0] == {"type": "text", "text": "CUE"}
    mixed = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}, {"type": "text", "text": "and?"}]},
    ]
    out, _ = apply_cue("anthropic", {"messages": mixed}, _cue(), "CUE")
    assert [b.get("text", b["type"]) for b in out["messages"][2]["content"]] == ["tool_result", "CUE", "and?"]
    out, _ = apply_cue("responses", {"input": "hello"}, _cue(position="after"), "CUE")
    assert out["input"] == "hello\n\nCUE"


def test_turn_only_for_user_cues() -> None:
    from monitor.policy import Cue

    with pytest.raises(ValueError, match="`turn` places a `user` cue"):
        Cue(where="system", texts=["x"], turn="first")
