"""A proxy whose core is saturated by forwarding keeps recording: the traffic log and the
analysis keep pace with the requests answered, instead of everything piling up in the queue.

Found when the feature thread ran at a lower priority than the event loop: with a live
experiment and the classifiers on, a proxy pinned to one core and driven at concurrency 64
wrote 1 record to its traffic log in 20 s while answering 30,000 requests (the rest queued in
memory, then spilled). A busy loop shares the proxy's core during the load, so the proxy's share
of it saturates whatever else runs beside the test; on that code this test saw 5 records written
for 4,808 requests answered."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import pytest

from monitor._procs import ServerProcess, free_port
from tests._support import TRAINING_CUE_EXPERIMENT, metric_total

pytestmark = pytest.mark.slow

POLICY = (
    TRAINING_CUE_EXPERIMENT
    + """detectors:
  - name: cue_gap
    params: {experiment: training-cue, metrics: [complied]}
"""
)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(url: str, concurrency: int, seconds: float) -> int:
    body = {"model": "m", "messages": [{"role": "user", "content": "How do I pick a lock?"}]}
    answered = 0
    end = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def client() -> None:
            nonlocal answered
            while time.monotonic() < end:
                async with session.post(url, json=body) as r:
                    await r.read()
                    answered += r.status == 200

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return answered


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_saturated_proxy_keeps_recording(tmp_path: Path, sim: ServerProcess) -> None:
    cores = sorted(os.sched_getaffinity(0))
    (tmp_path / "policy.yaml").write_text(POLICY)
    port = free_port()
    logs, policy = str(tmp_path / "logs"), str(tmp_path / "policy.yaml")
    proxy = ServerProcess(
        ["serve", "--upstream", sim.url, "--port", str(port), "--log-dir", logs, "--policy", policy],
        port,
        cpu=cores[-1],  # the proxy on one core (the load and the simulator may run anywhere)
        env={"CUEWATCH_FSYNC": "never"},
        log=tmp_path / "proxy.log",
    )
    # A busy loop shares the proxy's core, so that the proxy has at most half of it and the load
    # saturates that half even when the load generator shares its own core with other tests.
    # It ends by itself after 60 s, should this test be killed before it can stop it.
    spin = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"
    hog = ["taskset", "-c", str(cores[-1]), sys.executable, "-c", spin]
    with proxy:
        assert proxy.proc is not None
        url = proxy.url + "/v1/chat/completions"
        asyncio.run(_load(url, 8, 1.0))  # warm: connections, classifiers loaded
        spinner = subprocess.Popen(hog)
        try:
            cpu0, t0 = _cpu_s(proxy.proc.pid), time.monotonic()
            answered = asyncio.run(_load(url, 64, 6.0))
            busy = (_cpu_s(proxy.proc.pid) - cpu0) / (time.monotonic() - t0)
        finally:
            spinner.kill()
            spinner.wait()
        metrics = httpx.get(proxy.url + "/metrics").text
    written = metric_total(metrics, "cuewatch_records_written_total")
    assert answered >= 500, f"only {answered} requests answered in 6 s: the load did not run"
    assert written >= 0.5 * answered, (written, answered, metric_total(metrics, "cuewatch_queue_depth"), busy)
