"""Shared fixtures: the simulated upstream and a proxy, as real processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from monitor._procs import RedisServer, ServerProcess, free_port
from tests._support import API_KEY, start_proxy


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("sim")
    port = free_port()
    proc = ServerProcess(
        ["sim", "--profile", "alignment-faker", "--port", str(port), "--seed", "7"], port, log=tmp / "sim.log"
    ).start()
    yield proc
    proc.stop(timeout=0.5)  # tests leave stalled streams open on purpose: no graceful wait for them


@pytest.fixture()
def proxy(tmp_path: Path, sim: ServerProcess) -> Iterator[ServerProcess]:
    """A fresh proxy per test (own log folder) in front of the shared simulator."""
    proc = start_proxy(tmp_path, sim.url)
    try:
        yield proc
    finally:
        proc.stop()


class SDKClients:
    """Official SDK clients for a test, closed when it ends (no connection left to the GC)."""

    def __init__(self) -> None:
        self._open: list[Any] = []

    def _keep(self, client: Any) -> Any:
        self._open.append(client)
        return client

    def openai(self, base_url: str, **kw: Any) -> openai.OpenAI:
        return self._keep(openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, **kw))

    def azure(self, endpoint: str) -> openai.AzureOpenAI:
        return self._keep(
            openai.AzureOpenAI(azure_endpoint=endpoint, api_version="2024-10-21", api_key=API_KEY, max_retries=0)
        )

    def anthropic(self, base_url: str) -> anthropic.Anthropic:
        return self._keep(anthropic.Anthropic(base_url=base_url, api_key=API_KEY, max_retries=0))

    def close(self) -> None:
        while self._open:
            self._open.pop().close()


@pytest.fixture()
def sdk() -> Iterator[SDKClients]:
    clients = SDKClients()
    yield clients
    clients.close()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own, on a free loopback port."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A throwaway redis-server (Debian's package) on a loopback port."""
    with RedisServer(tmp_path / "redis") as server:
        yield server
