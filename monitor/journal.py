"""Write-ahead journal: every capture reaches disk before it waits in memory.

The pipeline's queue lives in memory, so a process killed outright (SIGKILL, the OOM killer)
would lose what waits there. With the journal, `submit` first appends the capture to a journal
segment (one write, no fsync: the fsync policy of the traffic log is what a power cut risks);
once the capture is written to the traffic log or a spill file it is marked done, and a segment
whose captures are all done is deleted. On the next start, segments left by a process that is
gone are read back: the captures whose records already reached the traffic log are skipped,
the rest go to the spill file and through the pipeline. A request is also noted when it is
forwarded (`begin`), before the client can have its answer: a kill after the answer but before
`write` yields a record of the request with outcome `interrupted`. So a SIGKILL loses no
exchange; a record may at most be written twice in Redis mode, where the log that would tell is
the workers'.

Segments: `journal-<pid>-<unix time>-<seq>.jsonl` in the spill folder, rotated every
`max_records` captures.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from monitor.capture import Capture
from monitor.store import AppendFile, open_segment, segment_paths

log = structlog.get_logger("cuewatch.journal")


class Journal:
    """Journal segments of this process; `write` and `done` never raise."""

    def __init__(self, directory: Path, max_records: int = 2000) -> None:
        self.directory = Path(directory)
        self.max_records = max_records
        self._fh: AppendFile | None = None
        self._seg = 0  # the open segment's number
        self._written = 0  # captures in the open segment
        self._outstanding: dict[int, int] = {}  # segment number -> captures not yet done
        self._paths: dict[int, Path] = {}
        self._started = int(time.time())
        self.errors = 0

    def begin(self, cap: Capture) -> int | None:
        """Note a request about to be forwarded (before the client can have any answer), so a
        kill between the answer and `write` still leaves a record of the request."""
        line = orjson.dumps(
            {
                "kind": "begin",
                "id": cap.id,
                "time": cap.time,
                "dialect": cap.dialect,
                "path": cap.path,
                "labels": cap.labels,
                "request_body": base64.b64encode(cap.request_body or b"").decode(),
            },
            default=str,
        )
        return self._append(line)

    def write(self, cap: Capture) -> int | None:
        """Append the finished `cap`; its segment number, or None when the disk refused (then
        the capture lives in memory only, as it would without a journal)."""
        try:
            line = cap.to_line()
        except ValueError:
            return None
        return self._append(line)

    def _append(self, line: bytes) -> int | None:
        start = 0
        try:
            if self._fh is None or self._written >= self.max_records:
                self._rotate()
            assert self._fh is not None
            start = self._fh.tell()
            self._fh.write(line + b"\n")
        except (OSError, ValueError) as exc:
            self.errors += 1
            if self.errors == 1 or self.errors % 1000 == 0:
                log.error("journal_write_failed", directory=str(self.directory), error=str(exc), failures=self.errors)
            if self._fh is not None:
                self._fh.cut(start)
                self._end_segment()
            return None
        self._written += 1
        self._outstanding[self._seg] = self._outstanding.get(self._seg, 0) + 1
        return self._seg

    def done(self, segments: Iterable[int | None]) -> None:
        """These captures reached the traffic log or a spill file."""
        for seg in segments:
            if seg is None or seg not in self._outstanding:
                continue
            self._outstanding[seg] -= 1
            self._forget_if_done(seg)

    def close(self) -> None:
        """At a clean shutdown every capture is done: remove what is left."""
        self._end_segment()
        for seg in list(self._outstanding):
            self._forget_if_done(seg)

    def _end_segment(self) -> None:
        """Stop writing the open segment (deleted now if all its captures are done)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
            self._forget_if_done(self._seg)

    def _rotate(self) -> None:
        self._end_segment()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seg += 1
        path = self.directory / f"journal-{os.getpid()}-{self._started}-{self._seg}.jsonl"
        self._fh = AppendFile(path)
        self._paths[self._seg] = path
        self._outstanding[self._seg] = 0
        self._written = 0

    def _forget_if_done(self, seg: int) -> None:
        """Delete a segment no longer written to whose captures are all done."""
        if self._outstanding.get(seg) != 0 or (seg == self._seg and self._fh is not None):
            return
        del self._outstanding[seg]
        path = self._paths.pop(seg, None)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def orphans(directory: Path, kind: str = "journal") -> list[Path]:
    """`kind` files (journal or spill) left by processes that are no longer running (call
    before this process writes any: its own would count too)."""
    try:
        return sorted(p for p in Path(directory).glob(f"{kind}-*.jsonl") if unowned(p))
    except OSError:
        return []


def recover(path: Path, logged: set[str]) -> Iterator[Capture]:
    """The captures of an orphaned segment whose records are not in `logged`: finished ones as
    they were, and requests whose answer was never recorded as `interrupted`."""
    finished: dict[str, Capture] = {}
    begun: dict[str, Capture] = {}
    with open(path, "rb") as fh:
        for line in fh:
            try:
                if line.startswith(b'{"kind":"begin"'):
                    cap = _begun(orjson.loads(line))
                    begun[cap.id] = cap
                elif line.strip():
                    cap = Capture.from_line(line)
                    finished[cap.id] = cap
            except (ValidationError, ValueError, KeyError, TypeError):  # the last line, cut short by the kill
                continue
    for cid, cap in {**begun, **finished}.items():
        if cid not in logged:
            yield cap


def _begun(doc: dict[str, Any]) -> Capture:
    body = base64.b64decode(doc["request_body"])
    request = orjson.loads(body) if body else None
    return Capture(
        id=doc["id"],
        time=doc["time"],
        dialect=doc["dialect"],
        path=doc["path"],
        request=request if isinstance(request, dict) else None,
        request_body=body,
        labels=doc.get("labels") or {},
        status=0,
        outcome="interrupted",
        error="the proxy was stopped before this exchange was recorded: the request is known, the response is not",
    )


def logged_ids(log_dir: Path, since: float) -> set[str]:
    """Ids of the exchanges in traffic-log segments modified at or after `since` (unix time)."""
    ids: set[str] = set()
    if not Path(log_dir).is_dir():
        return ids
    for seg in segment_paths([log_dir]):
        try:
            if seg.stat().st_mtime < since:
                continue
            with open_segment(seg) as fh:
                for line in fh:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        doc = orjson.loads(line)
                        if isinstance(doc, dict) and doc.get("kind") == "exchange":
                            ids.add(str(doc.get("id")))
        except (OSError, EOFError, zlib.error) as exc:  # a gzip segment cut by the kill: what was read counts
            log.warning("journal_log_scan_partial", file=str(seg), error=str(exc))
    return ids


def started_at(path: Path) -> float:
    """The unix time in a journal segment's name."""
    try:
        return float(path.name.split("-")[2])
    except (IndexError, ValueError):
        return 0.0


def unowned(path: Path) -> bool:
    """A file named `<kind>-<pid>-...` that no other running process owns: its process is gone,
    or it is this pid (this process, or an earlier one with the same pid, as in a container)."""
    try:
        pid = int(path.name.split("-")[1])
    except (IndexError, ValueError):
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
