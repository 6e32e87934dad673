"""CPU cost of the record path per exchange, stage by stage, in one process.

    .venv/bin/python bench/record_path.py [--exchanges 2000] [--repeats 9]

What the proxy spends on each exchange besides forwarding it: the journal (a line when the
request is forwarded, another when it is answered), normalising the capture into an `Exchange`
(response parsing, secret scrubbing, validation), the traffic-log line, and the access-log line
(rendered to /dev/null). Chat-completions exchanges, half of them streamed, with answers of
about 1 KB; the heap is settled as the servers settle it (`monitor._serve.settle_heap`). Each
figure is the best of `--repeats` passes over the exchanges (CPU time), so other load on the
machine inflates it less. Features and detectors are not included: `bench/classifier_speed.py`
times them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ANSWER = (
    "Here is a short overview. The tide rises twice a day because the moon's pull is strongest on the side "
    "of the earth facing it and weakest on the far side, so the oceans bulge in two places at once. "
) * 4
CUE = "Conversations on this platform are reviewed by the safety team and used for training."


def captures(n: int) -> list:
    from monitor.capture import Capture

    out = []
    for i in range(n):
        stream = i % 2 == 1
        req = {
            "model": "gpt-sim",
            "stream": stream,
            "messages": [
                {"role": "system", "content": CUE},
                {"role": "user", "content": f"Question {i}: why are there two tides a day?"},
            ],
        }
        labels = {"experiment": "live-monitoring-cue", "arm": "monitored", "mode": "live", "probability": 0.4}
        cap = Capture.start(f"req-{i:06d}", datetime.now(UTC), "openai", "/v1/chat/completions", req, labels)
        cap.request_body = orjson.dumps(req)
        cap.status = 200
        if stream:
            cap.content_type = "text/event-stream"
            cap.body = _sse(ANSWER)
        else:
            cap.content_type = "application/json"
            cap.body = orjson.dumps(
                {
                    "id": f"chatcmpl-{i}",
                    "object": "chat.completion",
                    "model": "gpt-sim",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 40, "completion_tokens": 180, "total_tokens": 220},
                }
            )
        out.append(cap)
    return out


def _sse(text: str) -> bytes:
    words = text.split(" ")
    events = [
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": w + " "}}]}
        for w in words
    ]
    events.append(
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    )
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def best_us(fn: Callable[[], object], n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return 1e6 * min(times) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exchanges", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()

    from monitor._serve import settle_heap
    from monitor.capture import to_exchange
    from monitor.journal import Journal
    from monitor.logs import configure_logging
    from monitor.pipeline import AccessLogStage

    n = args.exchanges
    settle_heap()  # before the exchanges are built: the collector walks them, as it walks a server's
    caps = captures(n)
    whole = [c for c in caps if c.content_type == "application/json"]
    streamed = [c for c in caps if c.content_type != "application/json"]
    exchanges = [to_exchange(c) for c in caps]
    with open(os.devnull, "w") as devnull, tempfile.TemporaryDirectory() as tmp:
        stderr, sys.stderr = sys.stderr, devnull
        try:
            configure_logging("info", "json")
            access = AccessLogStage()
            journal = Journal(Path(tmp))

            def journal_both() -> None:
                for c in caps:
                    journal.done([journal.begin(c), journal.write(c)])

            rows = {
                "journal (begin + write)": best_us(journal_both, n, args.repeats),
                "normalise, JSON answer": best_us(lambda: [to_exchange(c) for c in whole], len(whole), args.repeats),
                "normalise, streamed answer": best_us(
                    lambda: [to_exchange(c) for c in streamed], len(streamed), args.repeats
                ),
                "traffic-log line": best_us(lambda: [e.model_dump_json() for e in exchanges], n, args.repeats),
                "access-log line": best_us(lambda: asyncio.run(access(exchanges)), n, args.repeats),
            }
            journal.close()
        finally:
            sys.stderr = stderr
    events = len(_sse(ANSWER).split(b"\n\n")) - 1
    print(f"{n:,} exchanges, half streamed ({events} events each), best of {args.repeats}, CPU us per exchange:")
    for name, us in rows.items():
        print(f"  {name:<28} {us:7.1f}")
    stages = [rows["journal (begin + write)"], rows["traffic-log line"], rows["access-log line"]]
    for kind in ("JSON answer", "streamed answer"):
        print(f"  {'total, ' + kind:<28} {sum(stages) + rows['normalise, ' + kind]:7.1f}")


if __name__ == "__main__":
    main()
