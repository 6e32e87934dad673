"""Shared fixtures: the simulated upstream and a proxy, as real processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor._procs import ServerProcess, free_port
from tests._support import start_proxy


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("sim")
    port = free_port()
    with ServerProcess(
        ["sim", "--profile", "alignment-faker", "--port", str(port), "--seed", "7"], port, log=tmp / "sim.log"
    ) as proc:
        yield proc


@pytest.fixture()
def proxy(tmp_path: Path, sim: ServerProcess) -> Iterator[ServerProcess]:
    """A fresh proxy per test (own log folder) in front of the shared simulator."""
    proc = start_proxy(tmp_path, sim.url)
    try:
        yield proc
    finally:
        proc.stop()
