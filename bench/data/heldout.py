"""Find rows that share text with the evaluation sets held out from this project.

The fingerprints (salted, truncated SHA-1 of 12-word shingles of the held-out texts, a sample of
them) are kept beside the project, never in it: ``../shared/heldout-fingerprints.txt`` from the
repository root, or the file named by ``CUEWATCH_HELDOUT_FINGERPRINTS``. A row that shares any
fingerprinted shingle is dropped by the build scripts; no held-out text is read or stored here.

    python3 bench/data/heldout.py FILE.jsonl   # prints the indices of matching rows
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT.parent / "shared" / "heldout-fingerprints.txt"
SALT = b"cuewatch-heldout-v1"
SHINGLE = 12
_WORD = re.compile(r"[a-z0-9]+")


def fingerprint_file() -> Path | None:
    path = Path(os.environ.get("CUEWATCH_HELDOUT_FINGERPRINTS", DEFAULT))
    return path if path.is_file() else None


def load() -> frozenset[str]:
    """The fingerprints; raises FileNotFoundError when they are not beside the project."""
    path = fingerprint_file()
    if path is None:
        raise FileNotFoundError(
            f"held-out fingerprints not found at {DEFAULT} (set CUEWATCH_HELDOUT_FINGERPRINTS);"
            " refusing to build data that may overlap the held-out evaluation sets"
        )
    return _read(path)


@functools.cache
def _read(path: Path) -> frozenset[str]:
    lines = path.read_text().splitlines()
    return frozenset(s.strip() for s in lines if s.strip() and not s.startswith("#"))


def matches(text: str, prints: frozenset[str]) -> int:
    """How many of the text's 12-word shingles are fingerprinted."""
    words = _WORD.findall(text.lower())
    return sum(
        hashlib.sha1(SALT + " ".join(words[i : i + SHINGLE]).encode(), usedforsecurity=False).hexdigest()[:16] in prints
        for i in range(len(words) - SHINGLE + 1)
    )


def strings(value: object) -> list[str]:
    """Every string in a row, nested ones included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings(v)]
    return []


def held(row: dict, prints: frozenset[str]) -> bool:
    """True when any field, or the fields read together, share a fingerprinted shingle."""
    parts = strings(row)
    return any(matches(t, prints) for t in [*parts, "\n".join(parts)])


def held_rows(rows: Iterable[dict], prints: frozenset[str] | None = None) -> set[int]:
    """Indices of the rows that share any fingerprinted shingle with the held-out sets."""
    prints = load() if prints is None else prints
    return {i for i, r in enumerate(rows) if held(r, prints)}


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The rows to keep and the rows dropped for sharing text with the held-out sets."""
    drop = held_rows(rows)
    return [r for i, r in enumerate(rows) if i not in drop], [r for i, r in enumerate(rows) if i in drop]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for i in sorted(held_rows(rows)):
        print(i)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
