"""Fuzzed through real processes: the three model endpoints and the admin API of a proxy running a
live experiment. No proxy-made 5xx, no admin call accepted without its token, and every request
that reached the upstream has exactly one record. (The policy loader has its own fuzz test in
test_policy_hostile.py; `bench/fuzz.py` is the long run.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor._procs import ServerProcess
from monitor.records import Exchange
from monitor.store import LogReader
from tests._support import start_proxy, wait_for
from tests.fuzzing import Tally, admin_calls, encode, model_bodies, raw_bodies, send_admin, send_model_call

TOKEN = "fuzz-admin-token-0123"
LIVE = """experiments:
  - name: tier
    arms:
      - {name: a, probability: 0.5, cue: {where: system, texts: [CUE-A]}}
      - {name: b, probability: 0.5, cue: {where: user, texts: [CUE-B]}}
"""
TALLY = Tally()
_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, sim: ServerProcess) -> Iterator[tuple[str, Path, httpx.Client]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    policy = tmp / "live.yaml"
    policy.write_text(LIVE)
    proxy = start_proxy(tmp, sim.url, policy=policy, admin_token=TOKEN, policy_poll_s="0", access_log="false")
    with httpx.Client(timeout=30) as client:
        yield proxy.url, tmp / "logs", client
    proxy.stop()


@pytest.mark.slow
@_FUZZ
@given(dialect=st.sampled_from(["openai", "anthropic", "responses"]), body=model_bodies)
def test_model_endpoints(target: tuple[str, Path, httpx.Client], dialect: str, body: Any) -> None:
    url, _, client = target
    assert send_model_call(client, url, dialect, encode(body), TALLY) is None


@_FUZZ
@given(dialect=st.sampled_from(["openai", "anthropic", "responses"]), body=raw_bodies)
def test_model_endpoints_raw_bytes(target: tuple[str, Path, httpx.Client], dialect: str, body: bytes) -> None:
    url, _, client = target
    assert send_model_call(client, url, dialect, body, TALLY) is None


@_FUZZ
@given(call=admin_calls)
def test_admin_api(target: tuple[str, Path, httpx.Client], call: tuple[str, str, str, Any]) -> None:
    url, _, client = target
    assert send_admin(client, url, TOKEN, call, TALLY) is None


def test_every_forwarded_request_has_one_record(target: tuple[str, Path, httpx.Client]) -> None:
    """Runs after the fuzz tests above (file order): their forwarded requests, one record each."""
    _, logs, _ = target

    def ids() -> list[str]:
        return [r.id for r in LogReader([logs]) if isinstance(r, Exchange)]

    wait_for(lambda: set(TALLY.forwarded) <= set(ids()), timeout=20)
    written = ids()
    assert len(written) == len(set(written)), "a record was written twice"
    missing = [case for rid, case in TALLY.forwarded.items() if rid not in set(written)]
    assert not missing, f"{len(missing)} of {len(TALLY.forwarded)} forwarded without a record: {missing[:5]}"
    assert set(written) <= set(TALLY.forwarded)
