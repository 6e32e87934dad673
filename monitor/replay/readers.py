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
from typing import IO, Any

import orjson
from pydantic import TypeAdapter, ValidationError

from monitor.capture import Capture, to_exchange
from monitor.records import Exchange, Record
from monitor.store import BadLine, segment_paths

_RECORD: TypeAdapter[Any] = TypeAdapter(Record)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")  # type: ignore[return-value]


def _kind(doc: dict[str, Any]) -> str:
    if "kind" in doc:
        return "record"
    if "custom_id" in doc:
        if "result" in doc:
            return "anthropic_result"
        if "response" in doc:
            return "openai_output"
        if "body" in doc and "url" in doc:
            return "openai_input"
        if "params" in doc:
            return "anthropic_request"
    return "unknown"


class Inputs:
    """Exchanges from any mix of supported files and folders, in file order."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.paths = segment_paths(paths)
        self.bad_lines: list[BadLine] = []
        self.skipped_results = 0  # batch results with no matching request
        self.position = 0  # bytes of input consumed (compressed bytes for gzip files), for progress

    def __iter__(self) -> Iterator[Exchange]:
        requests: dict[str, tuple[str, str, dict[str, Any]]] = {}  # custom_id -> (dialect, path, body)
        results: list[tuple[Path, int, str, dict[str, Any]]] = []
        for path in self.paths:
            yield from self._read(path, requests, results)
        for path, n, kind, doc in results:  # batch results, joined now that every request is known
            ex = self._batch_exchange(kind, doc, requests)
            if ex is None:
                self.skipped_results += 1
                self.bad_lines.append(BadLine(str(path), n, f"no request for custom_id {doc.get('custom_id')!r}"))
            else:
                yield ex

    def _read(self, path: Path, requests: dict[str, Any], results: list[Any]) -> Iterator[Exchange]:
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
                        kind = _kind(doc) if isinstance(doc, dict) else "unknown"
                        if kind == "record":
                            rec = _RECORD.validate_python(doc)
                            if isinstance(rec, Exchange):
                                yield rec
                        elif kind == "openai_input":
                            dialect = "responses" if doc["url"].endswith("/responses") else "openai"
                            requests[doc["custom_id"]] = (dialect, doc["url"], doc["body"])
                        elif kind == "anthropic_request":
                            requests[doc["custom_id"]] = ("anthropic", "/v1/messages", doc["params"])
                        elif kind in ("openai_output", "anthropic_result"):
                            results.append((path, n, kind, doc))
                        else:
                            raise ValueError("not a cuewatch record, nor a batch request or result line")
                    except (ValueError, KeyError, TypeError, ValidationError, orjson.JSONDecodeError) as exc:
                        self.bad_lines.append(BadLine(str(path), n, _short(exc)))
        except (OSError, EOFError) as exc:
            self.bad_lines.append(BadLine(str(path), n + 1, f"unreadable: {exc}"))
        self.position = done + (path.stat().st_size if path.exists() else 0)

    @staticmethod
    def _batch_exchange(kind: str, doc: dict[str, Any], requests: dict[str, Any]) -> Exchange | None:
        cid = str(doc.get("custom_id"))
        if cid not in requests:
            return None
        dialect, url, body = requests[cid]
        labels = _labels(cid, body)
        if kind == "openai_output":
            resp = doc.get("response") or {}
            status = int(resp.get("status_code") or (500 if doc.get("error") else 200))
            payload = resp.get("body") if resp else {"error": doc.get("error")}
            created = (payload or {}).get("created") if isinstance(payload, dict) else None
            time = datetime.fromtimestamp(created, UTC) if isinstance(created, int | float) else _EPOCH
        else:
            result = doc.get("result") or {}
            ok = result.get("type") == "succeeded"
            status = 200 if ok else 500
            payload = result.get("message") if ok else {"type": "error", "error": result.get("error") or result}
            time = _EPOCH
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
            labels=labels,
        )
        return to_exchange(cap)


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
