"""Logs elsewhere: `cuewatch replay URL` and `cuewatch show ID --log URL` copy the segments from an
HTTP server on loopback (any fsspec location works the same way), once, then read them locally."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor._procs import free_port
from monitor.errors import ConfigError
from monitor.replay.fetch import localise
from monitor.sim.traffic import generate, write_log
from tests._support import wait_for


@pytest.fixture()
def served_logs(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "www"
    write_log(root / "logs", generate(600, seed=3))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import httpx

    assert wait_for(lambda: _up(httpx, port), timeout=10)
    yield f"http://127.0.0.1:{port}/logs/", root / "logs"
    proc.terminate()
    proc.wait(5)


def _up(httpx, port: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_remote_folder_is_copied_once_and_read_like_a_local_one(served_logs: tuple[str, Path], tmp_path: Path) -> None:
    url, local = served_logs
    cache = tmp_path / "cache"
    (got,) = localise([url], cache, progress=None)
    names = sorted(p.name for p in got.iterdir())
    assert names == sorted(p.name for p in local.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
    for p in got.iterdir():
        assert p.read_bytes() == (local / p.name).read_bytes()
    stamp = {p.name: p.stat().st_mtime_ns for p in got.iterdir()}
    assert localise([url], cache, progress=None) == [got]  # same place, nothing copied again
    assert {p.name: p.stat().st_mtime_ns for p in got.iterdir()} == stamp
    assert localise(["some/local/dir"], cache, progress=None) == [Path("some/local/dir")]


def test_clear_errors_for_missing_places_and_stores_without_their_library(
    served_logs: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = served_logs
    with pytest.raises(ConfigError, match="no such log file or folder"):
        localise([url.replace("/logs/", "/nope/")], tmp_path, progress=None)
    with pytest.raises(ConfigError, match="pip install s3fs"):
        localise(["s3://bucket/cuewatch-logs/"], tmp_path, progress=None)


def test_replay_and_show_take_a_url(served_logs: tuple[str, Path], tmp_path: Path) -> None:
    url, local = served_logs
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", url, "--out", str(out), "--alerts", "none"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "report.json").read_text())["records"] == 600
    first = json.loads(next(local.iterdir()).read_text().splitlines()[0])["id"]
    shown = subprocess.run(
        [sys.executable, "-m", "monitor", "show", first, "--log", url],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0 and f"exchange {first}" in shown.stdout, shown.stderr
