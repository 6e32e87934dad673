"""The proxy in front of an upstream this project did not write: LiteLLM's proxy server (from
PyPI, in its own virtual environment made by `make peers`), answering chat completions, the
Responses API and Anthropic messages, streamed and not, under a live user cue."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor._procs import ServerProcess, free_port
from tests._support import records, start_proxy, wait_for
from tests.conftest import SDKClients

pytestmark = pytest.mark.slow  # LiteLLM takes ~10 s to start

ROOT = Path(__file__).parents[1]
LITELLM = Path(os.environ.get("CUEWATCH_LITELLM", ROOT / ".venv-peers" / "litellm" / "bin" / "litellm"))

CONFIG = """model_list:
  - model_name: echo
    litellm_params: {model: "echo-provider/echo"}
litellm_settings:
  telemetry: false
  custom_provider_map:
    - {provider: "echo-provider", custom_handler: litellm_mock.echo}
general_settings:
  dangerously_permit_weak_or_unset_master_key: true
"""

POLICY = """version: 1
experiments:
  - name: tier
    arms:
      - {name: a, probability: 0.5, cue: {where: user, position: before, texts: [CUE-A]}}
      - {name: b, probability: 0.5, cue: {where: user, position: before, texts: [CUE-B]}}
"""


@pytest.fixture(scope="module")
def litellm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not LITELLM.exists():
        pytest.skip(f"LiteLLM is not installed at {LITELLM}: run `make peers` (make test does)")
    tmp = tmp_path_factory.mktemp("litellm")
    (tmp / "config.yaml").write_text(CONFIG)
    shutil.copy(ROOT / "tests" / "peers" / "litellm_mock.py", tmp / "litellm_mock.py")
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "NO_DOCS": "True"}
    log = (tmp / "litellm.log").open("wb")
    proc = subprocess.Popen(
        [str(LITELLM), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port), "--telemetry", "False"],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/health/liveliness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"LiteLLM did not start: {(tmp / 'litellm.log').read_text()[-2000:]}")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def proxy_to_litellm(
    litellm_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("proxy-litellm")
    (tmp / "policy.yaml").write_text(POLICY)
    proc = start_proxy(tmp, litellm_url, policy=tmp / "policy.yaml")
    yield proc, tmp / "logs"
    proc.stop()


def _chat(sdk: SDKClients, url: str, stream: bool) -> tuple[str, str]:
    client = sdk.openai(url + "/v1")
    messages: Any = [{"role": "user", "content": "Tell me about tea."}]
    if stream:
        raw = client.chat.completions.with_raw_response.create(model="echo", messages=messages, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(model="echo", messages=messages)
        text = raw.parse().choices[0].message.content or ""
    return raw.headers["x-cuewatch-request-id"], text


def _responses(sdk: SDKClients, url: str, stream: bool) -> tuple[str, str]:
    client = sdk.openai(url + "/v1")
    if stream:
        raw = client.responses.with_raw_response.create(model="echo", input="Tell me about tea.", stream=True)
        text = "".join(e.delta for e in raw.parse() if e.type == "response.output_text.delta")
    else:
        raw = client.responses.with_raw_response.create(model="echo", input="Tell me about tea.")
        text = raw.parse().output_text
    return raw.headers["x-cuewatch-request-id"], text


def _messages(sdk: SDKClients, url: str, stream: bool) -> tuple[str, str]:
    client = sdk.anthropic(url)
    messages: Any = [{"role": "user", "content": "Tell me about tea."}]
    if stream:
        raw = client.messages.with_raw_response.create(model="echo", max_tokens=100, messages=messages, stream=True)
        text = "".join(
            e.delta.text for e in raw.parse() if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )
    else:
        raw = client.messages.with_raw_response.create(model="echo", max_tokens=100, messages=messages)
        text = "".join(b.text for b in raw.parse().content if b.type == "text")
    return raw.headers["x-cuewatch-request-id"], text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("call", "dialect"), [(_chat, "openai"), (_responses, "responses"), (_messages, "anthropic")], ids=lambda x: x
)
def test_litellm_upstream(
    proxy_to_litellm: tuple[ServerProcess, Path], call: Any, dialect: str, stream: bool, sdk: SDKClients
) -> None:
    """LiteLLM accepts the cued request (the model heard the cue before the user's words), the
    client gets LiteLLM's answer, and the record holds the same text."""
    proxy, logs = proxy_to_litellm
    rid, text = call(sdk, proxy.url, stream)
    assert text.startswith(("Heard: CUE-A", "Heard: CUE-B")) and text.endswith("Tell me about tea.")
    rec = wait_for(lambda: next((r for r in records(logs) if r.id == rid), None))
    assert (rec.dialect, rec.stream, rec.status, rec.outcome) == (dialect, stream, 200, "ok")
    assert rec.response_text == text and rec.cue == text.split()[1]
    assert rec.messages[-1].text == "Tell me about tea."  # the client's own turn
