"""The Grafana dashboard and the Prometheus alerting rules in docs/ops/: well formed, and every
metric they query exists on a running proxy (with a live experiment and its detectors).
`promtool check rules` runs too where Prometheus's promtool is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from ruamel.yaml import YAML

import policies
from tests._support import start_proxy

OPS = Path(__file__).resolve().parents[1] / "docs" / "ops"
METRIC = re.compile(r"\bcuewatch_[a-z_]+")
DURATION = re.compile(r"^\d+[smhd]$")


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    tmp = tmp_path_factory.mktemp("ops")
    proxy = start_proxy(tmp, "http://127.0.0.1:9", policy=policies.path("live-ab"), sticky_salt="x")
    try:
        page = httpx.get(proxy.url + "/metrics").text
    finally:
        proxy.stop()
    return {line.split()[2] for line in page.splitlines() if line.startswith("# TYPE ")}


def _family(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_total"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _known(name: str, families: set[str]) -> bool:
    return name in families or _family(name) in families


def test_alerting_rules(families: set[str]) -> None:
    doc = YAML(typ="safe").load((OPS / "prometheus-rules.yaml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert len(rules) >= 10 and len({r["alert"] for r in rules}) == len(rules)
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r["alert"]
        assert r["labels"]["severity"] in {"info", "warning", "critical"}, r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert "for" not in r or DURATION.match(r["for"]), r["alert"]
        names = METRIC.findall(r["expr"])
        assert names, r["alert"]
        unknown = [n for n in names if not _known(n, families)]
        assert not unknown, f"{r['alert']} queries metrics no cuewatch process exports: {unknown}"
    promtool = shutil.which("promtool")
    if promtool:
        out = subprocess.run([promtool, "check", "rules", str(OPS / "prometheus-rules.yaml")], capture_output=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_grafana_dashboard(families: set[str]) -> None:
    dash = json.loads((OPS / "grafana-dashboard.json").read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource"}
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 12
    queried: set[str] = set()
    for p in panels:
        assert p["type"] == "timeseries" and p["title"] and p["targets"], p.get("title")
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        for t in p["targets"]:
            names = METRIC.findall(t["expr"])
            assert names and t["refId"], p["title"]
            unknown = [n for n in names if not _known(n, families)]
            assert not unknown, f"panel {p['title']!r} queries metrics no cuewatch process exports: {unknown}"
            queried |= {_family(n) for n in names}
    # the dashboard covers what an on-call engineer asks first
    for family in ("cuewatch_requests", "cuewatch_proxy_overhead_seconds", "cuewatch_spill_bytes", "cuewatch_findings"):
        assert family in queried, family
