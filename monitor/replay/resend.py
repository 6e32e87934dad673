"""`cuewatch replay --resend`: the pre-deployment check. Re-send logged prompts once per arm of a
cue experiment to a (new) model, log the fresh responses as shadow pairs, and analyse them.

Requests are rebuilt from the records' normalised messages (role and text): tools, images and
sampling parameters of the original requests are not kept in the traffic log, so they are not
re-sent. Before anything is sent, the plan and its cost are printed; `yes` must be given.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from monitor.capture import Capture, to_exchange
from monitor.dialects import PATHS, auth_headers, build_request
from monitor.errors import ConfigError
from monitor.experiments import Experiments
from monitor.policy import Experiment, Policy, load_policy
from monitor.records import Exchange
from monitor.replay.readers import Inputs
from monitor.store import TrafficLog


@dataclass
class Plan:
    prompts: list[Exchange]
    experiment: Experiment
    requests: int
    input_tokens: int
    max_output_tokens: int


def _request(ex: Exchange, model: str, max_tokens: int) -> dict[str, Any]:
    turns = [{"role": m.role if m.role != "tool" else "user", "content": m.text} for m in ex.messages if m.text]
    return build_request(ex.dialect, model, max_tokens, turns)


def plan(paths: list[Path], policy_path: Path, experiment: str | None, limit: int | None, max_tokens: int) -> Plan:
    policy = load_policy(policy_path)
    if not policy.experiments:
        raise ConfigError(f"{policy_path}: the policy has no experiment to resend under")
    exp = next((e for e in policy.experiments if e.name == experiment), None) if experiment else policy.experiments[0]
    if exp is None:
        raise ConfigError(f"{policy_path}: no experiment named {experiment!r}")
    prompts = []
    for ex in Inputs(paths):
        if ex.origin == "client" and ex.messages and not ex.redacted:
            prompts.append(ex)
            if limit is not None and len(prompts) >= limit:
                break
    chars = sum(len(m.text) for ex in prompts for m in ex.messages)
    n = len(prompts) * len(exp.arms)
    return Plan(prompts, exp, n, chars // 4 * len(exp.arms), n * max_tokens)


def describe(p: Plan, model: str, upstream: str) -> str:
    return (
        f"resend plan: {len(p.prompts):,} logged prompts x {len(p.experiment.arms)} arms of "
        f"'{p.experiment.name}' = {p.requests:,} requests to {upstream} (model {model}); "
        f"about {p.input_tokens:,} input tokens and at most {p.max_output_tokens:,} output tokens"
    )


async def _send_all(
    p: Plan,
    upstream: str,
    model: str,
    api_key: str | None,
    concurrency: int,
    max_tokens: int,
    log: TrafficLog,
    seed: int,
    out: TextIO,
) -> int:
    experiments = Experiments(Policy(experiments=[p.experiment]), seed=seed)
    sem = asyncio.Semaphore(concurrency)
    done = 0

    async def one(client: httpx.AsyncClient, ex: Exchange, arm_index: int) -> None:
        nonlocal done
        arm = p.experiment.arms[arm_index]
        base = _request(ex, model, max_tokens)
        variant = experiments.variant(ex.dialect, base, arm)
        headers = {**auth_headers(ex.dialect, api_key), **variant.headers}
        labels = {
            "experiment": p.experiment.name,
            "arm": arm.name,
            "mode": "shadow",
            "assignment_probability": arm.probability,
            "pair_id": f"resend/{ex.id}",
            "cue": variant.cue_text,
            "origin": "shadow",
        }
        cap = Capture.start(
            f"resend-{ex.id}-{arm.name}", datetime.now(UTC), ex.dialect, PATHS[ex.dialect], base, labels
        )
        async with sem:
            try:
                r = await client.post(upstream.rstrip("/") + PATHS[ex.dialect], json=variant.request, headers=headers)
                cap.status, cap.body = r.status_code, r.content
                cap.content_type = r.headers.get("content-type")
                cap.outcome = "ok" if r.status_code < 400 else "upstream_error"
            except httpx.HTTPError as exc:
                cap.status, cap.outcome, cap.error = 502, "upstream_unreachable", f"{type(exc).__name__}: {exc}"
        log.write([to_exchange(cap).model_dump_json().encode()])
        done += 1
        if done % 100 == 0:
            out.write(f"resend: {done:,}/{p.requests:,} responses\n")
            out.flush()

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(one(client, ex, i) for ex in p.prompts for i in range(len(p.experiment.arms))))
    return done


def resend(
    paths: list[Path],
    policy_path: Path,
    upstream: str,
    out_dir: Path,
    *,
    model: str,
    yes: bool,
    experiment: str | None = None,
    limit: int | None = None,
    concurrency: int = 8,
    max_tokens: int = 512,
    max_requests: int | None = None,
    api_key_env: str | None = None,
    seed: int = 0,
    out: TextIO = sys.stderr,
) -> Path | None:
    """Send the plan (if confirmed) and return the folder of the fresh traffic log."""
    p = plan(paths, policy_path, experiment, limit, max_tokens)
    out.write(describe(p, model, upstream) + "\n")
    if max_requests is not None and p.requests > max_requests:
        raise ConfigError(
            f"the plan needs {p.requests:,} requests, over --max-requests {max_requests:,}; lower it with --limit"
        )
    if not yes:
        out.write("nothing sent: re-run with --yes to send these requests\n")
        return None
    api_key = os.environ.get(api_key_env) if api_key_env else None
    log_dir = out_dir / "resend-logs"
    log = TrafficLog(log_dir, fsync="never")
    try:
        asyncio.run(_send_all(p, upstream, model, api_key, concurrency, max_tokens, log, seed, out))
    finally:
        log.close()
    return log_dir
