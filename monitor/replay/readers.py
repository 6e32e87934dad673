"""Read logged traffic for replay: this product's traffic log, OpenAI Batch output (joined with
its input file on `custom_id`), and Anthropic Message Batches results (joined with the requests).

Batch lines carry no arm; it is taken from the request's `metadata` (`cuewatch_experiment`,
`cuewatch_arm`, optional `cuewatch_probability`, default 0.5 — an assumption the replay cannot
check) or from a `custom_id` of the form `<experiment>/<arm>/<pair>`, where lines sharing
`<experiment>/.../<pair>` are the same prompt under each arm and are tested as pairs.
Every unreadable line is counted with its file and line number; reading goes on.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from monitor.capture import Capture, to_exchange
from monitor.plugins import LOG_FORMATS
from monitor.records import Exchange, Record
from monitor.store import BadLine, segment_paths

_RECORD: TypeAdapter[Any] = TypeAdapter(Record)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")  # type: ignore[return-value]


class _Join:
    """Batch requests by custom_id, and results waiting for every request to be read."""

    def __init__(self) -> None:
        self.requests: dict[str, tuple[str, str, dict[str, Any]]] = {}  # custom_id -> (dialect, path, body)
        self.results: list[tuple[LineFormat, Path, int, dict[str, Any]]] = []


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineFormat(Protocol):
    """One kind of line `cuewatch replay` reads (`monitor.plugins.LOG_FORMATS`)."""

    Params: ClassVar[type[BaseModel]]
    test_params: ClassVar[dict[str, Any]]

    def matches(self, doc: dict[str, Any]) -> bool: ...

    def line(self, doc: dict[str, Any], join: _Join, where: tuple[Path, int]) -> Exchange | None:
        """The exchange this line is, or None (a request kept, or a result queued in `join`)."""
        ...

    def joined(self, doc: dict[str, Any], join: _Join) -> Exchange | None:
        """A queued result with its request, or None when no request has its custom_id."""
        ...


@LOG_FORMATS.register("cuewatch")
class TrafficLogFormat:
    """This product's traffic log: records with a `kind` (exchanges; findings are skipped)."""

    Params: ClassVar[type[BaseModel]] = NoParams
    test_params: ClassVar[dict[str, Any]] = {}

    def matches(self, doc: dict[str, Any]) -> bool:
        return "kind" in doc

    def line(self, doc: dict[str, Any], join: _Join, where: tuple[Path, int]) -> Exchange | None:
        rec = _RECORD.validate_python(doc)
        return rec if isinstance(rec, Exchange) else None

    def joined(self, doc: dict[str, Any], join: _Join) -> Exchange | None:
        return None


@LOG_FORMATS.register("openai_batch")
class OpenAIBatchFormat:
    """OpenAI Batch API: input lines (custom_id, url, body) and output lines (custom_id, response)."""

    Params: ClassVar[type[BaseModel]] = NoParams
    test_params: ClassVar[dict[str, Any]] = {}

    def matches(self, doc: dict[str, Any]) -> bool:
        return "custom_id" in doc and ("response" in doc or ("body" in doc and "url" in doc))

    def line(self, doc: dict[str, Any], join: _Join, where: tuple[Path, int]) -> Exchange | None:
        if "response" in doc and "result" not in doc:
            join.results.append((self, *where, doc))
        else:
            dialect = "responses" if doc["url"].endswith("/responses") else "openai"
            join.requests[doc["custom_id"]] = (dialect, doc["url"], doc["body"])
        return None

    def joined(self, doc: dict[str, Any], join: _Join) -> Exchange | None:
        resp = doc.get("response") or {}
        status = int(resp.get("status_code") or (500 if doc.get("error") else 200))
        payload = resp.get("body") if resp else {"error": doc.get("error")}
        created = (payload or {}).get("created") if isinstance(payload, dict) else None
        time = datetime.fromtimestamp(created, UTC) if isinstance(created, int | float) else _EPOCH
        return _batch_exchange(doc, join, status, payload, time)


@LOG_FORMATS.register("anthropic_batch")
class AnthropicBatchFormat:
    """Anthropic Message Batches: request lines (custom_id, params) and results (custom_id, result)."""

    Params: ClassVar[type[BaseModel]] = NoParams
    test_params: ClassVar[dict[str, Any]] = {}

    def matches(self, doc: dict[str, Any]) -> bool:
        return "custom_id" in doc and ("result" in doc or "params" in doc)

    def line(self, doc: dict[str, Any], join: _Join, where: tuple[Path, int]) -> Exchange | None:
        if "result" in doc:
            join.results.append((self, *where, doc))
        else:
            join.requests[doc["custom_id"]] = ("anthropic", "/v1/messages", doc["params"])
        return None

    def joined(self, doc: dict[str, Any], join: _Join) -> Exchange | None:
        result = doc.get("result") or {}
        ok = result.get("type") == "succeeded"
        payload = result.get("message") if ok else {"type": "error", "error": result.get("error") or result}
        return _batch_exchange(doc, join, 200 if ok else 500, payload, _EPOCH)


def _batch_exchange(doc: dict[str, Any], join: _Join, status: int, payload: Any, time: datetime) -> Exchange | None:
    cid = str(doc.get("custom_id"))
    if cid not in join.requests:
        return None
    dialect, url, body = join.requests[cid]
    cap = Capture(
        id=cid,
        time=time,
        dialect=dialect,
        path=url.split("?")[0],
        request=body,
        status=status,
        outcome="ok" if status < 400 else "upstream_error",
        content_type="application/json",
        body=json.dumps(payload).encode(),
        labels=_labels(cid, body),
    )
    return to_exchange(cap)


class Inputs:
    """Exchanges from any mix of supported files and folders, in file order."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.paths = segment_paths(paths)
        self.bad_lines: list[BadLine] = []
        self.skipped_results = 0  # batch results with no matching request
        self.position = 0  # bytes of input consumed (compressed bytes for gzip files), for progress

    def __iter__(self) -> Iterator[Exchange]:
        formats = [LOG_FORMATS.create(name, {}) for name in LOG_FORMATS.names()]
        join = _Join()
        for path in self.paths:
            yield from self._read(path, formats, join)
        for fmt, path, n, doc in join.results:  # batch results, joined now that every request is known
            ex = fmt.joined(doc, join)
            if ex is None:
                self.skipped_results += 1
                self.bad_lines.append(BadLine(str(path), n, f"no request for custom_id {doc.get('custom_id')!r}"))
            else:
                yield ex

    def _read(self, path: Path, formats: list[LineFormat], join: _Join) -> Iterator[Exchange]:
        n = 0
        done = self.position
        try:
            with _open(path) as fh:
                raw_file = getattr(fh, "fileobj", None) or fh
                for n, raw in enumerate(fh, start=1):
                    if n % 256 == 0:
                        self.position = done + raw_file.tell()
                    if not raw.strip():
                        continue
                    try:
                        if raw.startswith(b'{"kind":'):  # this product's log: one validating parse
                            rec = _RECORD.validate_json(raw)
                            if isinstance(rec, Exchange):
                                yield rec
                            continue
                        doc = orjson.loads(raw)
                        fmt = next((f for f in formats if isinstance(doc, dict) and f.matches(doc)), None)
                        if fmt is None:
                            raise ValueError("not a cuewatch record, nor a batch request or result line")
                        ex = fmt.line(doc, join, (path, n))
                        if ex is not None:
                            yield ex
                    except (ValueError, KeyError, TypeError, ValidationError, orjson.JSONDecodeError) as exc:
                        self.bad_lines.append(BadLine(str(path), n, _short(exc)))
        except (OSError, EOFError) as exc:
            self.bad_lines.append(BadLine(str(path), n + 1, f"unreadable: {exc}"))
        self.position = done + (path.stat().st_size if path.exists() else 0)


def _labels(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    experiment, arm = meta.get("cuewatch_experiment"), meta.get("cuewatch_arm")
    pair = None
    if not (experiment and arm):
        parts = custom_id.split("/", 2)
        if len(parts) == 3:
            experiment, arm, pair = parts
    if not (experiment and arm):
        return {}
    labels: dict[str, Any] = {
        "experiment": experiment,
        "arm": arm,
        "mode": "live",
        "assignment_probability": float(meta.get("cuewatch_probability") or 0.5),
    }
    if pair:
        labels.update(mode="shadow", pair_id=f"{experiment}/{pair}", origin="shadow")
    return labels


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(x) for x in err.get('loc', ())) or 'line'}: {err.get('msg')}"
    return f"{type(exc).__name__}: {exc}"[:200]
