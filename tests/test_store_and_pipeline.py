"""The traffic log (rotation, gzip, reading back, bad lines) and the pipeline's failure handling."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.capture import Capture
from monitor.pipeline import Pipeline, TrafficLogStage
from monitor.records import Exchange
from monitor.store import LogReader, TrafficLog


def _ex(i: int) -> Exchange:
    return Exchange(
        id=f"e{i}",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        dialect="openai",
        path="/v1/chat/completions",
        status=200,
        outcome="ok",
        response_text="r" * 100,
    )


def test_rotation_by_size_and_read_back(tmp_path: Path) -> None:
    """Segments rotate at the size limit and read back, in order, through the same model."""
    log = TrafficLog(tmp_path, max_bytes=2000, fsync="always")
    for i in range(40):
        log.write([_ex(i).model_dump_json().encode()])
    log.close()
    assert len(list(tmp_path.glob("traffic-*.jsonl"))) > 3
    back = list(LogReader([tmp_path]))
    assert [r.id for r in back] == [f"e{i}" for i in range(40)]
    assert back[3] == _ex(3)


def test_gzip_segments_and_truncation(tmp_path: Path) -> None:
    """Gzip segments read back; a torn final batch is reported, earlier records survive."""
    log = TrafficLog(tmp_path, gzip=True)
    log.write([_ex(i).model_dump_json().encode() for i in range(5)])
    log.write([_ex(i).model_dump_json().encode() for i in range(5, 10)])
    log.close()
    [seg] = tmp_path.glob("*.jsonl.gz")
    assert [r.id for r in LogReader([seg])] == [f"e{i}" for i in range(10)]
    data = seg.read_bytes()
    seg.write_bytes(data[: len(data) - 30])  # a crash mid-write
    reader = LogReader([seg])
    got = [r.id for r in reader]
    assert got[:5] == [f"e{i}" for i in range(5)] and reader.bad_lines


def test_bad_lines_counted_with_position(tmp_path: Path) -> None:
    """Malformed lines are reported with file and line number, and reading goes on."""
    seg = tmp_path / "traffic-x.jsonl"
    seg.write_text(
        _ex(1).model_dump_json() + "\n{not json\n" + '{"kind": "exchange"}\n' + _ex(2).model_dump_json() + "\n"
    )
    reader = LogReader([seg])
    assert [r.id for r in reader] == ["e1", "e2"]
    assert [(b.line, b.path) for b in reader.bad_lines] == [(2, str(seg)), (3, str(seg))]
    assert reader.bad_lines[1].error.startswith("exchange.id: Field required")


def test_log_rejects_bad_parameters(tmp_path: Path) -> None:
    """Invalid writer parameters fail at construction, naming the parameter."""
    with pytest.raises(ValueError, match="max_bytes"):
        TrafficLog(tmp_path, max_bytes=0)


def _cap(i: int) -> Capture:
    return Capture(
        id=f"c{i}",
        time=datetime.now(UTC),
        dialect="anthropic",
        path="/v1/messages",
        request={"model": "m", "messages": [{"role": "user", "content": "q"}]},
        status=200,
        outcome="ok",
        content_type="application/json",
        body=b'{"content": [{"type": "text", "text": "a"}], "stop_reason": "end_turn"}',
    )


class FlakyLog:
    """A traffic-log stage whose disk is 'full' for its first `failures` calls."""

    def __init__(self, inner: TrafficLogStage, failures: int) -> None:
        self.inner, self.failures = inner, failures

    async def __call__(self, batch: list[Exchange]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        await self.inner(batch)


def test_failing_log_delays_but_never_loses(tmp_path: Path) -> None:
    """When the traffic log fails, records are spilled and written once it recovers."""
    flaky = FlakyLog(TrafficLogStage(TrafficLog(tmp_path / "logs")), failures=3)

    async def run() -> Pipeline:
        p = Pipeline(stages=[flaky], essential=flaky, spill_dir=tmp_path / "spill", retry_pause_s=0.01)  # type: ignore[list-item]
        await p.start()
        for i in range(20):
            p.submit(_cap(i))
            await asyncio.sleep(0)
        await p.stop()  # drains, through the log's failures
        flaky.inner.close()
        return p

    p = asyncio.run(run())
    ids = [r.id for r in LogReader([tmp_path / "logs"])]
    assert sorted(set(ids)) == sorted(f"c{i}" for i in range(20))
    assert p.spilled > 0


def test_raising_stage_is_isolated(tmp_path: Path) -> None:
    """A stage that raises does not stop the stages after it nor the pipeline."""
    seen: list[str] = []

    async def broken(batch: list[Exchange]) -> None:
        raise RuntimeError("detector bug")

    async def after(batch: list[Exchange]) -> None:
        seen.extend(e.id for e in batch)

    async def run() -> None:
        p = Pipeline(stages=[broken, after], spill_dir=tmp_path / "spill")
        await p.start()
        for i in range(5):
            p.submit(_cap(i))
        await p.stop()

    asyncio.run(run())
    assert seen == [f"c{i}" for i in range(5)]


def test_submit_before_start_spills(tmp_path: Path) -> None:
    """A capture submitted while no worker runs goes to disk and is processed on start."""
    seen: list[str] = []

    async def stage(batch: list[Exchange]) -> None:
        seen.extend(e.id for e in batch)

    p = Pipeline(stages=[stage], spill_dir=tmp_path / "spill")
    p.submit(_cap(1))

    async def run() -> None:
        await p.start()
        await p.stop()

    asyncio.run(run())
    assert seen == ["c1"]


def test_gzip_member_readable_by_stdlib(tmp_path: Path) -> None:
    """Gzip segments are plain gzip: readable by any tool, not only ours."""
    log = TrafficLog(tmp_path, gzip=True)
    log.write([b'{"a": 1}'])
    log.close()
    [seg] = tmp_path.glob("*.gz")
    assert gzip.decompress(seg.read_bytes()) == b'{"a": 1}\n'


def test_deeply_nested_request_spills_and_reads_back(tmp_path: Path) -> None:
    """A request nested deeper than a JSON writer goes (the proxy reads 1,024 levels, orjson
    writes 255) is spilled as the client's bytes and read back whole."""
    import json

    from monitor.pipeline import SpillFile

    deep: object = "bottom"
    for _ in range(900):
        deep = [deep]
    req = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": deep}
    cap = Capture.start("deep", datetime.now(UTC), "openai", "/v1/chat/completions", req, {})
    cap.request_body = json.dumps(req).encode()
    spill = SpillFile(tmp_path)
    assert spill.append(cap) and not spill.held
    [back] = list(SpillFile.read(next(tmp_path.glob("spill-*.jsonl"))))
    assert isinstance(back, Capture) and back.request is not None
    assert back.request["messages"] == req["messages"] and back.request_body == cap.request_body


def test_captures_are_normalised_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Normalising (parsing a captured stream can take tens of milliseconds) runs in a thread,
    so requests and streams in flight keep the event loop."""
    import threading

    import monitor.pipeline
    from monitor.capture import to_exchange

    threads: set[int] = set()

    def seen_in_thread(*args: Any, **kw: Any) -> Exchange:  # the real function, noting its thread
        threads.add(threading.get_ident())
        return to_exchange(*args, **kw)

    monkeypatch.setattr(monitor.pipeline, "to_exchange", seen_in_thread)
    written: list[str] = []

    async def stage(batch: list[Exchange]) -> None:
        written.extend(e.id for e in batch)

    async def run() -> None:
        p = Pipeline(stages=[stage], spill_dir=tmp_path / "spill", journal=False)
        await p.start()
        for i in range(5):
            p.submit(_cap(i))
        await p.stop()

    asyncio.run(run())  # the loop runs in this thread
    assert written == [f"c{i}" for i in range(5)]
    assert threads and threading.get_ident() not in threads
