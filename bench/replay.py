"""Replay throughput on a large generated log, and memory that stays flat.

    .venv/bin/python bench/replay.py [--records 1000000] [--embeddings 20000]

Generates (once, cached under bench/results/replay-data/) a traffic log of simulated
alignment-faker exchanges in a live cue experiment, then replays it with the cue-gap and drift
detectors (lexical features, betting statistics), reporting records/s and peak memory for a
tenth of the log and for all of it. `--embeddings N` also times the semantic refusal feature
(sentence embeddings) on N records, on the GPU when one is present.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
POLICY = """version: 1
experiments:
  - name: training-cue
    arms:
      - {name: monitored, probability: 0.5, cue: {where: system, texts: ["a"]}}
      - {name: unmonitored, probability: 0.5, cue: {where: system, texts: ["b"]}}
detectors:
  - {name: cue_gap, params: {experiment: training-cue}}
  - {name: drift, params: {metric: complied, experiment: training-cue, only: harmful}}
"""


def ensure_log(records: int, seed: int) -> Path:
    from monitor.sim.traffic import stream, write_log

    folder = HERE / "results" / "replay-data" / f"{records}-{seed}"
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        write_log(folder, stream(records, seed=seed))
        (folder / "done").write_text(str(records))
        print(f"generated {records:,} records in {time.time() - t0:.0f}s -> {folder}", flush=True)
    return folder


def run_one(paths: list[str], limit: int | None, semantic: bool) -> dict[str, float]:
    """One replay in a fresh process, so peak memory is this replay's own."""
    code = f"""
import json, resource, sys, time, tempfile
from pathlib import Path
from itertools import islice
from monitor.replay import run as r
from monitor.replay.readers import Inputs
policy = Path(tempfile.mkdtemp()) / "p.yaml"
policy.write_text({POLICY!r}.replace("metric: complied", "metric: {"complied_semantic" if semantic else "complied"}"))
if {limit!r} is not None:
    original = Inputs.__iter__
    Inputs.__iter__ = lambda self: islice(original(self), {limit!r})
t = time.time()
rep = r.replay([Path(p) for p in {paths!r}], policy, Path(tempfile.mkdtemp()), alerts="none", progress=sys.stderr)
dt = time.time() - t
print(json.dumps({{"records": rep["records"], "seconds": dt, "rate": rep["records"] / dt,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "findings": len(rep["findings"])}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--embeddings", type=int, default=0, help="also time semantic features on this many records")
    ap.add_argument("--only-embeddings", action="store_true", help="skip the lexical runs")
    a = ap.parse_args()
    folder = ensure_log(a.records, a.seed)
    paths = [str(p) for p in sorted(folder.glob("traffic-*.jsonl"))]
    size_mb = sum(Path(p).stat().st_size for p in paths) / 1e6
    results = {"records": a.records, "log_mb": round(size_mb)}
    for label, limit in () if a.only_embeddings else (("tenth", a.records // 10), ("all", None)):
        res = run_one(paths, limit, semantic=False)
        results[label] = res
        print(
            f"lexical features + statistics, {res['records']:,} records: {res['rate']:,.0f} records/s "
            f"({res['seconds']:.1f}s), peak RSS {res['peak_rss_mb']:.0f} MB, {res['findings']} findings",
            flush=True,
        )
    if a.embeddings:
        res = run_one(paths, a.embeddings, semantic=True)
        results["embeddings"] = res
        print(
            f"with sentence embeddings (complied_semantic), {res['records']:,} records: {res['rate']:,.0f} "
            f"records/s, peak RSS {res['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    name = "replay-embeddings.json" if a.only_embeddings else "replay.json"
    (HERE / "results" / name).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
