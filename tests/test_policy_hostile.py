"""A hostile or broken policy file is a clean load error, never a hang, a crash or a dead watcher.

Write access to the policy file was enough to take a proxy down: a 9-line YAML alias bomb hung
/healthz and model calls while memory grew, 20,000-deep nesting froze the event loop, and a
non-UTF-8 file answered 500 on /admin/reload and killed the file watcher silently. Each is now
refused within the limits of monitor.yamlfile, parsed off the event loop, and survived.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policies
from monitor import reload
from monitor._procs import ServerProcess
from monitor.errors import ConfigError
from monitor.policy import Policy, load_policy
from monitor.reload import PolicyHolder
from monitor.yamlfile import DEFAULT_LIMITS
from tests._support import start_proxy, wait_for

# 9 lines, 342 bytes; expanded, 9**9 (387 million) strings.
ALIAS_BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

EXPERIMENT = """experiments:
  - name: {name}
    arms:
      - {{name: a, probability: 0.5, cue: {{where: system, texts: [A]}}}}
      - {{name: b, probability: 0.5, cue: {{where: none}}}}
"""


def _rejected(path: Path, content: bytes | str, timeout_s: float = 1.0) -> str:
    """Write `content`, load it as a policy: the ConfigError's message (it must come fast)."""
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    took = time.perf_counter() - t0
    assert took < timeout_s, f"took {took:.2f} s"
    message = str(info.value)
    assert message.startswith(f"{path}:"), message  # names the file
    return message


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_alias_bomb_refused_fast_without_growing_memory(tmp_path: Path) -> None:
    before = _max_rss_mb()
    message = _rejected(tmp_path / "p.yaml", ALIAS_BOMB, timeout_s=0.5)
    assert "aliases are expanded" in message and f"more than {DEFAULT_LIMITS.max_nodes}" in message
    assert _max_rss_mb() - before < 20  # nothing was expanded


def test_a_few_anchors_and_aliases_still_load(tmp_path: Path) -> None:
    """Anchors are legitimate in a policy (one cue text shared by arms, say)."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "experiments:\n  - name: shared\n    arms:\n"
        "      - {name: a, probability: 0.5, cue: &cue {where: system, texts: [Reviewed.]}}\n"
        "      - {name: b, probability: 0.5, cue: *cue}\n"
    )
    arms = load_policy(path).experiments[0].arms
    assert arms[0].cue == arms[1].cue


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("x: " + "[" * 20_000 + "]" * 20_000 + "\n", id="flow-one-line"),
        pytest.param("x: " + "{a: " * 20_000 + "}" * 20_000 + "\n", id="flow-mappings"),
        pytest.param("x:\n" + "  [\n" * 20_000, id="flow-many-lines"),
        pytest.param("".join(" " * i + "-\n" for i in range(200)), id="block"),
    ],
)
def test_deep_nesting_refused_fast(tmp_path: Path, content: str) -> None:
    message = _rejected(tmp_path / "p.yaml", content, timeout_s=0.5)
    assert f"nesting deeper than {DEFAULT_LIMITS.max_depth} levels" in message


def test_huge_file_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    with path.open("wb") as f:  # sparse: 1 GiB that nobody reads
        f.truncate(1 << 30)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"^{path}: 1073741824 bytes, over the limit of {DEFAULT_LIMITS.max_bytes}"):
        load_policy(path)
    assert time.perf_counter() - t0 < 0.5


def test_many_values_refused(tmp_path: Path) -> None:
    """Under the size limit, a long list is bounded by the node limit (it bounds parse time)."""
    content = "x: [" + ",".join(["1"] * (DEFAULT_LIMITS.max_nodes + 10)) + "]\n"
    assert f"more than {DEFAULT_LIMITS.max_nodes} values" in _rejected(tmp_path / "p.yaml", content, timeout_s=10)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (EXPERIMENT.format(name="café").encode("latin-1"), ":2: not UTF-8 text at byte 26 (0xe9)"),
        (b"experiments: []\n\x00\x01\x02", ":2: not UTF-8 text at byte 16 (a NUL byte"),
        (bytes(range(256)) * 4, ":1: not UTF-8 text at byte 0 (a NUL byte"),
        (b"\xff\xfe" + "experiments: []".encode("utf-16-le"), ":1: not UTF-8 text at byte 0 (0xff)"),
        (b"experiments: []\nseed: \x07\n", ":2: invalid YAML: special characters are not allowed"),
    ],
    ids=["latin-1", "nul", "binary", "utf-16", "control-character"],
)
def test_not_text_is_a_clean_error(tmp_path: Path, content: bytes, expected: str) -> None:
    assert expected in _rejected(tmp_path / "p.yaml", content)


@pytest.mark.parametrize(
    "content",
    [
        "experiments: !!python/object/apply:os.system ['touch {marker}']\n",
        "seed: !!python/object/new:os.system ['touch {marker}']\n",
        "description: !!python/name:os.system\n",
        "description: !custom 1\n",
        "%TAG !e! tag:example.com,2000:\n---\ndescription: !e!thing 1\n",
    ],
)
def test_python_and_custom_tags_refused_never_run(tmp_path: Path, content: str) -> None:
    marker = tmp_path / "ran"
    message = _rejected(tmp_path / "p.yaml", content.format(marker=marker))
    assert "is not allowed here (plain data only)" in message
    assert not marker.exists()


def test_core_tags_and_a_byte_order_mark_still_load(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xef\xbb\xbfdescription: '123'\nseed: !!int 7\n")
    policy = load_policy(path)
    assert (policy.description, policy.seed) == ("123", 7)


def test_other_parser_failures_are_config_errors(tmp_path: Path) -> None:
    """A 100,000-digit integer makes the parser raise ValueError; a FIFO in the file's place
    would block a plain open; neither escapes as anything but ConfigError."""
    assert "cannot parse: ValueError" in _rejected(tmp_path / "p.yaml", "seed: " + "9" * 100_000 + "\n")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_policy(fifo)


@pytest.mark.parametrize("name", policies.names())
def test_shipped_policies_still_load(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUEWATCH_STICKY_SALT", "salt-for-tests")
    t0 = time.perf_counter()
    load_policy(policies.path(name))
    assert time.perf_counter() - t0 < 2


# Pieces of policy-shaped YAML, put together at random: they reach the parser's odd corners
# (anchors, aliases, merge keys, tags, flow and block mixed) more often than random text does.
_FRAGMENTS = [
    *("experiments:", "arms:", "name: x", "seed: 1", "\n", "  - ", "- [", "? ", ": ", ",", "#", "---", "\t"),
    *("&a ", "*a", "<<: *a", "!!str ", "!!x ", "[", "]", "{", "}", "'", '"', "\x00", "\xff"),
]


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | st.text(max_size=300) | st.lists(st.sampled_from(_FRAGMENTS)).map("".join))
def test_any_bytes_load_or_raise_config_error(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    try:
        load_policy(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}")


# ---------------------------------------------------------------- reloading


def test_watcher_survives_a_bad_file_and_applies_the_next_good_one(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(EXPERIMENT.format(name="first"))
    holder = PolicyHolder(path)

    async def scenario() -> None:
        watcher = asyncio.create_task(holder.watch(0.05))
        try:
            for bad in (b"experiments: [caf\xe9]\n", ALIAS_BOMB.encode(), b"\x00" * 64):
                rejected = holder.rejected
                path.write_bytes(bad)
                await _until(lambda r=rejected: holder.rejected > r)
                assert not watcher.done()
                assert holder.last_error is not None and holder.last_error.startswith(f"{path}:")
                assert [e.name for e in holder.policy.experiments] == ["first"]  # kept
            path.write_text(EXPERIMENT.format(name="second"))
            await _until(lambda: [e.name for e in holder.policy.experiments] == ["second"])
            assert holder.last_error is None and holder.reloads == 1
        finally:
            watcher.cancel()

    asyncio.run(scenario())


async def _until(pred: Callable[[], bool]) -> None:
    for _ in range(250):  # 5 s
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_areload_runs_off_the_loop_and_keeps_the_policy_past_its_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(EXPERIMENT.format(name="first"))
    holder = PolicyHolder(path, reload_timeout_s=0.05)
    loop_thread: list[int] = []
    parse = reload.load_policy
    release = threading.Event()

    def slow_parse(p: Path) -> Policy:  # the real parser, held until the time limit has passed
        release.wait(5)
        return parse(p)

    monkeypatch.setattr(reload, "load_policy", slow_parse)

    async def scenario() -> tuple[bool, str]:
        loop_thread.append(threading.get_ident())
        path.write_text(EXPERIMENT.format(name="second"))
        result = await holder.areload()
        release.set()  # the straggler finishes; its result is dropped
        return result

    ok, message = asyncio.run(scenario())
    monkeypatch.setattr(reload, "load_policy", parse)
    assert not ok and "took over 0.05 s to load; not applied" in message
    assert [e.name for e in holder.policy.experiments] == ["first"] and holder.rejected == 1

    holder.reload_timeout_s = 5.0
    ok, message = asyncio.run(holder.areload())
    assert (ok, message) == (True, "reloaded") and holder.policy.experiments[0].name == "second"


def test_sync_reload_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(EXPERIMENT.format(name="first"))
    holder = PolicyHolder(path)
    path.write_bytes(b"\xfe\xff\x00binary")
    ok, message = holder.reload()
    assert not ok and "not UTF-8 text at byte 0" in message and holder.rejected == 1
    path.unlink()
    ok, message = holder.reload()
    assert not ok and "cannot read" in message and holder.rejected == 2


def test_proxy_answers_422_and_stays_responsive_on_hostile_files(tmp_path: Path, sim: ServerProcess) -> None:
    """Against a real proxy: the alias bomb and a non-UTF-8 file answer 422 at once, the
    largest file the limits allow is parsed in a thread while /healthz stays fast, SIGHUP
    with a bad file keeps the process up, and the next good file is applied."""
    policy = tmp_path / "p.yaml"
    policy.write_text(EXPERIMENT.format(name="first"))
    token = "admin-" + os.urandom(8).hex()
    auth = {"authorization": f"Bearer {token}"}
    proxy = start_proxy(tmp_path, sim.url, policy=policy, admin_token=token, policy_poll_s="0")
    try:
        with httpx.Client(base_url=proxy.url, timeout=30) as client:
            policy.write_text(ALIAS_BOMB)
            t0 = time.perf_counter()
            r = client.post("/admin/reload", headers=auth)
            assert time.perf_counter() - t0 < 1.0
            assert r.status_code == 422 and "aliases are expanded" in r.json()["message"], r.text

            policy.write_bytes(b"experiments: [caf\xe9]\n")
            r = client.post("/admin/reload", headers=auth)
            assert r.status_code == 422 and "not UTF-8 text at byte 17" in r.json()["message"], r.text

            # Slow to parse but within the limits: the event loop keeps answering meanwhile.
            policy.write_text("x: [" + ",".join(["{a: 1}"] * (DEFAULT_LIMITS.max_nodes // 3 - 10)) + "]\n")
            latencies: list[float] = []
            result: list[httpx.Response] = []
            reload = threading.Thread(target=lambda: result.append(client.post("/admin/reload", headers=auth)))
            reload.start()
            with httpx.Client(base_url=proxy.url, timeout=10) as probe:
                while reload.is_alive():
                    t0 = time.perf_counter()
                    assert probe.get("/healthz").status_code == 200
                    latencies.append(time.perf_counter() - t0)
                    time.sleep(0.02)
            reload.join()
            assert result[0].status_code == 422 and "x: unknown field" in result[0].json()["message"]
            assert len(latencies) >= 3 and max(latencies) < 1.0, latencies  # parsing in the loop took seconds

            policy.write_bytes(b"\x00\x00")
            assert proxy.proc is not None
            proxy.proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: _rejected_metric(client) >= 4, timeout=5)
            assert client.get("/healthz").status_code == 200

            policy.write_text(EXPERIMENT.format(name="second"))
            r = client.post("/admin/reload", headers=auth)
            assert r.status_code == 200 and r.json()["status"] == "reloaded", r.text
    finally:
        proxy.stop()


def _rejected_metric(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('cuewatch_policy_reloads_total{result="rejected"}'):
            return float(line.split()[-1])
    return 0.0
