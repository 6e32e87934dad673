"""The third-party labelled data the classifiers are trained and judged on (docs/data.md).

The data are not in the repository: `bench/data/build_prompts.py`, `build_responses.py` and
`build_reasoning.py` rebuild `bench/data/external/` from snapshots of the source repositories
(each pinned to a commit). Every row names its `source`; figures split by source, never by row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL = ROOT / "bench" / "data" / "external"
#: Third-party data whose licence lets it be committed (each file beside its licence).
THIRD_PARTY = ROOT / "bench" / "data" / "third_party"


def rows(kind: str, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every row of `bench/data/external/<kind>/*.jsonl` (kind: prompts, responses, reasoning, sandbagging)
    and of the committed `bench/data/third_party/<kind>/*.jsonl`."""
    folder = EXTERNAL / kind
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise SystemExit(
            f"no data in {folder.relative_to(ROOT)}: rebuild it with bench/data/build_{kind}.py (see docs/data.md)"
        )
    files += sorted((THIRD_PARTY / kind).glob("*.jsonl"))
    out = []
    for f in files:
        for line in f.read_text(encoding="utf-8").split("\n"):  # not splitlines: U+2028 is text
            if line.strip():
                row = json.loads(line)
                if row["source"] not in exclude:
                    out.append(row)
    return out


def sources(data: list[dict[str, Any]]) -> list[str]:
    return sorted({r["source"] for r in data})
