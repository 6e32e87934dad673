"""The traffic log: append-only JSONL segments, rotated by size and age, optionally gzip.

Segments are named `traffic-<UTC time>-<pid>-<seq>.jsonl[.gz]`, so several processes can share
one directory and a directory listing sorts by time. `LogReader` reads any mix of files and
folders back through the record model, counting (never hiding) lines it cannot read.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from gzip import GzipFile
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import TypeAdapter, ValidationError

from monitor.records import Record

_RECORD = TypeAdapter(Record)
FsyncPolicy = Literal["always", "interval", "never"]


class TrafficLog:
    """Synchronous segment writer; the pipeline calls `write` from a worker thread.

    Parameters
    ----------
    directory: where segments go (created if missing).
    max_bytes: rotate when a segment holds this many (uncompressed) bytes.
    max_age_s: rotate when a segment is this old.
    gzip: compress segments (each batch is a flushed gzip block, so a crash loses at most the
        batch being written).
    fsync: `always` after every batch, `interval` at most every `fsync_interval_s`, `never`
        (the OS decides; a process crash still loses nothing already written).
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_age_s: float = 3600.0,
        gzip: bool = False,
        fsync: FsyncPolicy = "interval",
        fsync_interval_s: float = 1.0,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.gzip = gzip
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self._raw: AppendFile | None = None
        self._gz: GzipFile | None = None
        self._size = 0
        self._opened = 0.0
        self._last_sync = 0.0
        self._seq = 0
        self.path: Path | None = None

    def write(self, lines: list[bytes]) -> None:
        """Append JSON lines (each without its newline) as one batch: all of it or none.

        A failed write (disk full, I/O error) cuts the segment back to where the batch began and
        closes it, then raises: the caller keeps the batch and retries, and the retry starts a
        new segment, so no line is written twice or in part.
        """
        if not lines:
            return
        now = time.monotonic()
        data = b"\n".join(lines) + b"\n"
        start = 0
        try:
            if self._raw is None or self._size >= self.max_bytes or now - self._opened >= self.max_age_s:
                self._rotate(now)
            assert self._raw is not None
            start = self._raw.tell()
            (self._gz or self._raw).write(data)
            self._flush(now)
        except BaseException:
            self._abandon(start)
            raise
        self._size += len(data)

    def close(self) -> None:
        raw, gz, self._raw, self._gz = self._raw, self._gz, None, None
        if raw is None:
            return
        try:
            if gz is not None:
                gz.close()  # writes the gzip trailer
            self._sync(raw, time.monotonic(), force=True)
        finally:
            raw.close()

    def _abandon(self, good: int) -> None:
        """Drop the current segment after a failed write, cut back to `good` bytes."""
        raw, self._raw, self._gz = self._raw, None, None
        if raw is None or raw.closed:
            return
        raw.cut(good)
        with contextlib.suppress(OSError):
            raw.close()

    def _rotate(self, now: float) -> None:
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        suffix = ".jsonl.gz" if self.gzip else ".jsonl"
        self.path = self.directory / f"traffic-{stamp}-{os.getpid()}-{self._seq:04d}{suffix}"
        # Unbuffered: each write reaches the file or raises, so a failed batch can be cut back.
        self._raw = AppendFile(self.path)
        self._gz = GzipFile(fileobj=self._raw, mode="ab") if self.gzip else None
        self._size = 0
        self._opened = now

    def _flush(self, now: float) -> None:
        assert self._raw is not None
        if self._gz is not None:
            self._gz.flush(zlib.Z_SYNC_FLUSH)
        self._sync(self._raw, now)

    def _sync(self, raw: AppendFile, now: float, force: bool = False) -> None:
        due = self.fsync == "always" or (self.fsync == "interval" and now - self._last_sync >= self.fsync_interval_s)
        if due or (force and self.fsync != "never"):
            os.fsync(raw.fileno())
            self._last_sync = now


class AppendFile(io.RawIOBase):
    """An unbuffered append-only file whose `write` writes everything or raises (no short
    writes), and which can `cut` itself back to a known length after a failed write."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # records hold prompts
        self._size = os.lseek(self._fd, 0, os.SEEK_END)  # then counted here: no syscall per tell()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        finally:
            self._size += done
        return done

    def tell(self) -> int:
        """The file's length (this process is its only writer)."""
        return self._size

    def cut(self, size: int) -> None:
        """Truncate to `size` bytes (best effort: the disk may refuse this too)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, size)
            self._size = size

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


@dataclass(frozen=True)
class BadLine:
    """A line that could not be read back, with where it was."""

    path: str
    line: int
    error: str


def segment_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Expand folders into their segments (sorted); keep files as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and q.name.endswith((".jsonl", ".jsonl.gz"))))
        else:
            out.append(p)
    return out


class LogReader:
    """Iterate records from traffic-log files and folders, streaming (constant memory).

    Bad lines are collected in `bad_lines` (file and line number) and skipped; reading goes on.
    """

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.paths = segment_paths(paths)
        self.bad_lines: list[BadLine] = []

    def __iter__(self) -> Iterator[Record]:
        for path in self.paths:
            yield from self._read(path)

    def _read(self, path: Path) -> Iterator[Record]:
        n = 0
        try:
            with open_segment(path) as fh:
                for n, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        yield _RECORD.validate_json(line)
                    except ValidationError as exc:
                        self.bad_lines.append(BadLine(str(path), n, _short(exc)))
        except (OSError, EOFError, zlib.error) as exc:
            self.bad_lines.append(BadLine(str(path), n + 1, f"unreadable: {exc}"))


def open_segment(path: Path) -> IO[bytes]:
    """A segment for reading, gzip or not (told by its first bytes)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is a binary IO
    return open(path, "rb")


def _short(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ())) or "line"
    return f"{loc}: {err.get('msg')} ({exc.error_count()} error(s))"
