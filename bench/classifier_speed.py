"""Throughput of the request and response classifiers as the live features run them.

    .venv/bin/python bench/classifier_speed.py [--exchanges 20000] [--semantic 500] [--texts simulator]

Exchanges are built from third-party prompts and responses (bench/data/external/), paired at
random, and pushed through `features.compute_batch` in batches of 256 with `harmful`,
`harm_category` and `refused` wanted (the default policies' classifiers), then the semantic
tier (hashed n-grams beside MiniLM: `harmful_semantic`, and with `refused_semantic`) on a
sample. Reports exchanges per second of wall time and of CPU time of this process (one thread:
torch and BLAS limited to one). Each text is distinct, so the per-text cache never hits.
`--texts simulator` takes the simulator's prompts and answers instead, for a machine without
the third-party data (shorter texts: figures not comparable).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.external import rows  # noqa: E402
from detectors import features  # noqa: E402
from monitor.records import Exchange, Message  # noqa: E402


def exchanges(n: int, seed: int = 0, texts: str = "third-party") -> list[Exchange]:
    rng = random.Random(seed)
    if texts == "simulator":  # a machine without the third-party data: the simulator's wording
        from monitor.sim.traffic import stream

        sim = list(stream(500, seed=seed))
        prompts = [ex.messages[0].text for ex in sim]
        answers = [ex.response_text or "" for ex in sim]
    else:
        prompts = [r["text"] for r in rows("prompts")]
        answers = [r["response"] for r in rows("responses")]
    now = datetime.now(UTC)
    return [
        Exchange(
            id=f"s{i}",
            time=now,
            dialect="openai",
            path="/v1/chat/completions",
            status=200,
            outcome="ok",
            messages=[Message(role="user", text=f"{rng.choice(prompts)} ({i})")],
            response_text=f"{rng.choice(answers)} ({i})",
        )
        for i in range(n)
    ]


def run(batch: list[Exchange], wanted: set[str], size: int = 256) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(batch), size):
        features.compute_batch(batch[i : i + size], wanted)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exchanges", type=int, default=20000)
    ap.add_argument("--semantic", type=int, default=500, help="exchanges for the semantic model (0: skip)")
    ap.add_argument(
        "--texts",
        choices=["third-party", "simulator"],
        default="third-party",
        help="where prompts and answers come from (simulator: no data to build; not comparable)",
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    exs = exchanges(args.exchanges, texts=args.texts)
    run(exs[:256], {"harmful", "harm_category", "refused"})  # load the models
    for wanted in ({"harmful", "harm_category"}, {"refused"}, {"harmful", "harm_category", "refused"}):
        features._memo.clear()
        wall, cpu = run(exs, wanted)
        print(
            f"{'+'.join(sorted(wanted)):32s} {len(exs):,} exchanges: {len(exs) / wall:,.0f}/s wall, "
            f"{len(exs) / cpu:,.0f}/s per CPU second"
        )
    if args.semantic:
        sample = exchanges(args.semantic, seed=1, texts=args.texts)
        run(sample[:32], {"harmful_semantic", "refused_semantic"})
        for wanted in ({"harmful_semantic"}, {"harmful_semantic", "refused_semantic"}):
            features._memo.clear()
            wall, cpu = run(sample, wanted, size=64)
            name = f"{'+'.join(sorted(wanted))} (1 thread)"
            print(f"{name:32s} {len(sample):,} exchanges: {len(sample) / wall:,.0f}/s wall")


if __name__ == "__main__":
    main()
