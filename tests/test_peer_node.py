"""The official Node SDKs (openai-node, @anthropic-ai/sdk; installed by `make peers`) through the
proxy: chat completions, the Responses API and Anthropic messages, streamed and not, each
answered as the upstream answered and recorded once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from monitor._procs import ServerProcess
from tests._support import API_KEY, records

ROOT = Path(__file__).parents[1]
NODE_MODULES = ROOT / ".venv-peers" / "node" / "node_modules"


def test_node_sdks(proxy: ServerProcess, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "openai").exists():
        pytest.skip("node or the Node SDKs missing: run `make peers` (make test does) with node and npm installed")
    shutil.copy(ROOT / "tests" / "peers" / "node_client.mjs", tmp_path / "client.mjs")
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    done = subprocess.run(
        [node, str(tmp_path / "client.mjs"), proxy.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "API_KEY": API_KEY},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in done.stdout.splitlines()]
    assert [c["call"] for c in calls] == [
        "chat",
        "chat-stream",
        "responses",
        "responses-stream",
        "messages",
        "messages-stream",
    ]
    recs = {r.id: r for r in records(tmp_path / "logs", len(calls))}
    for call in calls:
        rec = recs[call["id"]]
        dialect = {"chat": "openai", "responses": "responses", "messages": "anthropic"}[call["call"].split("-")[0]]
        assert (rec.dialect, rec.stream, rec.outcome) == (dialect, call["call"].endswith("stream"), "ok")
        assert rec.response_text == call["text"] and call["text"]
