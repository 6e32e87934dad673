"""Findings and exchanges read back from traffic logs for the evidence page.

`LogIndex` follows the log folders incrementally: each `refresh()` reads only the bytes appended
since the last one and keeps the findings (a cheap byte test picks their lines; only those are
parsed). Exchanges are looked up by id on demand, newest segment first, and cached: a finding's
examples are recent, so the search usually ends in the segment being written.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from monitor.records import Exchange, Finding
from monitor.store import open_segment, segment_paths

FINDING_MARK = b'"kind":"finding"'
MAX_FINDINGS = 10_000  # the newest kept in memory
MAX_CACHED = 2_000  # exchanges kept after a lookup


class LogIndex:
    """Findings (all, newest `MAX_FINDINGS`) and exchanges (by id) of some traffic-log folders."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = list(paths)
        self._offsets: dict[Path, int] = {}  # bytes read of each plain segment
        self._sizes: dict[Path, int] = {}  # size of each gzip segment when last read
        self._findings: dict[str, Finding] = {}
        self._exchanges: OrderedDict[str, Exchange] = OrderedDict()
        self._lock = threading.Lock()  # refreshes run in threads

    # ------------------------------------------------------------------ findings

    def refresh(self) -> None:
        """Read what was appended to the logs since the last call."""
        with self._lock:
            for path in self._segments():
                for line in self._new_lines(path):
                    if FINDING_MARK in line:
                        try:
                            f = Finding.model_validate_json(line)
                        except ValidationError:
                            continue  # a bad line: `cuewatch replay` counts and reports those
                        self._findings[f.id] = f
            if len(self._findings) > MAX_FINDINGS:
                keep = sorted(self._findings.values(), key=lambda f: f.time)[-MAX_FINDINGS:]
                self._findings = {f.id: f for f in keep}

    def _segments(self) -> list[Path]:
        return segment_paths(p for p in self.paths if p.exists())

    def _new_lines(self, path: Path) -> Iterator[bytes]:
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                gz = fh.read(2) == b"\x1f\x8b"
            if gz:  # gzip segments are re-read whole when they grow (findings dedupe by id)
                if self._sizes.get(path) == size:
                    return
                self._sizes[path] = size
                with open_segment(path) as fh:
                    yield from fh
                return
            start = self._offsets.get(path, 0)
            if size <= start:
                return
            with open(path, "rb") as fh:
                fh.seek(start)
                chunk = fh.read(size - start)
            end = chunk.rfind(b"\n") + 1  # a line being written is read next time
            self._offsets[path] = start + end
            yield from chunk[:end].splitlines()
        except (OSError, EOFError, zlib.error):
            return

    def findings(
        self,
        *,
        detector: str | None = None,
        experiment: str | None = None,
        severity: str | None = None,
        since: datetime | None = None,
        limit: int = 200,
    ) -> list[Finding]:
        """The newest findings first, filtered."""
        self.refresh()
        out = [
            f
            for f in self._findings.values()
            if (detector is None or f.detector == detector)
            and (experiment is None or f.experiment == experiment)
            and (severity is None or f.severity == severity)
            and (since is None or f.time >= since)
        ]
        out.sort(key=lambda f: f.time, reverse=True)
        return out[:limit]

    def finding(self, ident: str) -> Finding | None:
        self.refresh()
        return self._findings.get(ident)

    def facets(self) -> dict[str, list[str]]:
        """The detectors, experiments and severities seen, for the filters."""
        fs = list(self._findings.values())
        return {
            "detector": sorted({f.detector for f in fs}),
            "experiment": sorted({f.experiment for f in fs if f.experiment}),
            "severity": sorted({f.severity for f in fs}),
        }

    # ------------------------------------------------------------------ exchanges

    def exchanges(self, ids: Iterable[str]) -> dict[str, Exchange]:
        """The exchanges with these ids that the logs hold (newest segments searched first)."""
        wanted = [i for i in dict.fromkeys(ids) if i]
        found = {i: self._exchanges[i] for i in wanted if i in self._exchanges}
        missing = [i for i in wanted if i not in found]
        if missing:
            needle = re.compile(b'"id":"(' + b"|".join(re.escape(i.encode()) for i in missing) + b')"')
            for path in reversed(self._segments()):
                try:
                    with open_segment(path) as fh:
                        for line in fh:
                            if FINDING_MARK in line or not needle.search(line):
                                continue
                            try:
                                ex = Exchange.model_validate_json(line)
                            except ValidationError:
                                continue
                            if ex.id in missing and ex.id not in found:
                                found[ex.id] = ex
                except (OSError, EOFError, zlib.error):
                    continue
                if len(found) == len(wanted):
                    break
        with self._lock:
            for ex in found.values():
                self._exchanges[ex.id] = ex
                self._exchanges.move_to_end(ex.id)
            while len(self._exchanges) > MAX_CACHED:
                self._exchanges.popitem(last=False)
        return found
