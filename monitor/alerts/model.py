"""Alerts: a finding that matched a policy rule, with its evidence and how to reproduce it."""

from __future__ import annotations

import hashlib
import shlex
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.policy import AlertRule
from monitor.records import Effect, Finding, Severity

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
FINGERPRINT_LABELS = ("alertname", "experiment", "detector", "metric", "model", "arms")
EXCERPT_MAX = 1200


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effect: Effect | None = None
    e_value: float
    p_value: float
    alpha: float
    counts: dict[str, dict[str, float]] = {}
    example_ids: dict[str, list[str]] = {}
    excerpt: str | None = None
    finding_ids: list[str] = []


class Alert(BaseModel):
    """One alert; `fingerprint` identifies it across findings, replicas and restarts."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["alert"] = "alert"
    fingerprint: str
    labels: dict[str, str]
    status: Literal["firing", "resolved"] = "firing"
    severity: Severity
    summary: str
    evidence: Evidence
    replay_command: str
    next_step: str = Field("", description="one line: what the on-call engineer does first")
    url: str | None = Field(None, description="the evidence page of the latest finding (needs `public_url`)")
    starts_at: datetime
    updated_at: datetime
    ends_at: datetime | None = None
    test: bool = Field(False, description="a test alert sent by `cuewatch alert test`")


def fingerprint(labels: dict[str, str]) -> str:
    key = "\x1f".join(f"{k}={labels.get(k, '')}" for k in FINGERPRINT_LABELS)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def rule_matches(rule: AlertRule, finding: Finding) -> bool:
    if rule.detectors != ["*"] and finding.detector not in rule.detectors:
        return False
    if rule.metrics != ["*"] and finding.metric not in rule.metrics:
        return False
    if SEVERITY_RANK[finding.severity] < SEVERITY_RANK[rule.min_severity]:
        return False
    if rule.min_e_value is not None and finding.e_value < rule.min_e_value:
        return False
    n = sum(c.get("n", 0.0) for c in finding.counts.values())
    return rule.min_samples is None or n >= rule.min_samples


def next_step(finding: Finding, log_dir: str | None, url: str | None = None) -> str:
    """One line saying what to look at first: the example exchanges, an arm beside the other
    (on the evidence page when there is one)."""
    if url is not None:
        return f"Open the evidence page and read the example exchanges of each arm side by side: {url}"
    where = f" --log {log_dir}" if log_dir else ""
    examples = [(arm, ids[-1]) for arm, ids in finding.example_ids.items() if ids]
    if not examples:
        return "Replay the log up to this moment with the command below and read the report."
    if len(examples) == 1:
        arm, ident = examples[0]
        return f"Read the exchange that raised it ({arm}): cuewatch show {ident}{where}"
    shown = "; ".join(f"{arm}: cuewatch show {ident}{where}" for arm, ident in examples[:2])
    return f"Read an example under each arm side by side ({shown}), then replay to see the evidence grow."


def evidence_url(public_url: str | None, finding_id: str) -> str | None:
    """The finding's evidence page under the sidecar's (or worker's) public URL."""
    return f"{public_url.rstrip('/')}/admin/findings/{finding_id}" if public_url else None


def from_finding(
    finding: Finding,
    rule: AlertRule,
    *,
    policy_path: str | None,
    log_dir: str | None,
    redact: bool = False,
    public_url: str | None = None,
    labels: dict[str, str] | None = None,
) -> Alert:
    """Build the alert for a finding under a rule. `log_dir` is where people find the log (a
    path, URL or object-store location: it goes into the commands shown); `labels` (instance,
    environment) go on every alert but not into its fingerprint, so replicas' alerts merge."""
    severity = rule.severity or finding.severity
    labels = {
        "alertname": rule.name,
        "experiment": finding.experiment or "",
        "detector": finding.detector,
        "metric": finding.metric,
        "model": finding.model or "",
        "arms": ",".join(finding.arms),
        "severity": severity,
        **(labels or {}),
        **rule.labels,
    }
    excerpt = None
    if finding.excerpt:
        excerpt = (
            "[redacted]"
            if redact
            else finding.excerpt[:EXCERPT_MAX] + ("…" if len(finding.excerpt) > EXCERPT_MAX else "")
        )
    cmd = ["cuewatch", "replay", log_dir or "cuewatch-logs"]
    if policy_path:
        cmd += ["--policy", policy_path]
    cmd += ["--until", finding.time.isoformat()]
    return Alert(
        fingerprint=fingerprint(labels),
        labels=labels,
        severity=severity,
        summary=finding.summary or finding.direction,
        next_step=next_step(finding, log_dir, evidence_url(public_url, finding.id)),
        url=evidence_url(public_url, finding.id),
        evidence=Evidence(
            effect=finding.effect,
            e_value=finding.e_value,
            p_value=finding.p_value,
            alpha=finding.alpha,
            counts=finding.counts,
            example_ids=finding.example_ids,
            excerpt=excerpt,
            finding_ids=[finding.id],
        ),
        replay_command=shlex.join(cmd),
        starts_at=finding.time,
        updated_at=finding.time,
    )
