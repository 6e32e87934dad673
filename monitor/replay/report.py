"""The replay report: `report.json` (deterministic) and `report.html`, one self-contained file
(inline SVG plots made with matplotlib, no network). `cuewatch report RUN_DIR` rebuilds the HTML
from the JSON."""

from __future__ import annotations

import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from detectors.stats import bernoulli_cs
from monitor.errors import ConfigError

BAND_ALPHA = 0.05


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(
        json.dumps(report, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False, default=_finite) + "\n",
        encoding="utf-8",
    )
    return json_path, write_html(report, out)


def _finite(obj: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def rebuild(run_dir: Path) -> Path:
    path = run_dir / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the report: {exc}") from exc
    return write_html(report, run_dir)


# ----------------------------------------------------------------------------- plots


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["svg.hashsalt"] = "cuewatch"
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("the HTML report needs matplotlib: pip install 'cuewatch[report]'") from exc
    return plt


def _svg(fig: Any) -> str:
    """The figure as inline SVG, without matplotlib's metadata block (it carries a timestamp)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _plt().close(fig)
    text = buf.getvalue()
    return re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)


def _rates_plot(series: dict[str, Any]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    for arm in series["arms"]:
        xs, ys, lo, hi = [], [], [], []
        for p in series["points"]:
            n, k = p["n"].get(arm, 0.0), p["events"].get(arm, 0.0)
            if n:
                xs.append(p["i"])
                ys.append(k / n)
                a, b = bernoulli_cs(k, n, BAND_ALPHA)
                lo.append(a)
                hi.append(b)
        if xs:
            line = ax.plot(xs, ys, label=f"{arm}")[0]
            ax.fill_between(xs, lo, hi, alpha=0.2, color=line.get_color())
    ax.set_xlabel("records replayed")
    ax.set_ylabel(f"{series['metric']} rate")
    ax.set_title(f"{series['experiment']}: {series['metric']} per arm ({1 - BAND_ALPHA:.0%} confidence sequences)")
    ax.legend()
    return _svg(fig)


def _evalue_plot(series: dict[str, Any]) -> str:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3))
    xs = [p["i"] for p in series["points"]]
    ax1.plot(xs, [math.exp(min(p["log_e"], 700)) for p in series["points"]], label="e-value (wealth)")
    ax1.plot(xs, [math.exp(p["threshold_log_e"]) for p in series["points"]], "--", label="alarm at 1/alpha")
    ax1.set_yscale("log")
    ax1.set_xlabel("records replayed")
    ax1.set_title("e-value path (restarts after each alarm)")
    ax1.legend()
    finite = [p for p in series["points"] if p["lo"] is not None and math.isfinite(p["lo"])]
    if finite:
        ax2.plot([p["i"] for p in finite], [p["estimate"] for p in finite], label="estimate")
        ax2.fill_between(
            [p["i"] for p in finite],
            [p["lo"] for p in finite],
            [p["hi"] for p in finite],
            alpha=0.25,
            label="confidence sequence",
        )
        ax2.axhline(0.0, color="grey", linewidth=0.8)
    ax2.set_xlabel("records replayed")
    ax2.set_title("gap between arms")
    ax2.legend()
    return _svg(fig)


def _probe_plot(rows: list[dict[str, Any]]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2.5))
    labels = [f"{r['experiment']}\n{r['arm']}" for r in rows]
    ax.bar(labels, [r["accuracy"] for r in rows])
    ax.set_ylim(0, 1)
    ax.set_ylabel("probe accuracy")
    ax.set_title("known-answer probes per arm")
    return _svg(fig)


# ----------------------------------------------------------------------------- page


def _arm_table(arms: dict[str, Any]) -> str:
    rows = []
    for arm, v in arms.items():
        rate = "" if v["rate"] is None else f"{v['rate']:.3%}"
        rows.append(f"<tr><td>{html.escape(arm)}</td><td>{v['n']:g}</td><td>{v['events']:g}</td><td>{rate}</td></tr>")
    return "<table><tr><th>arm</th><th>n</th><th>events</th><th>rate</th></tr>" + "".join(rows) + "</table>"


def write_html(report: dict[str, Any], out: Path) -> Path:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>cuewatch replay report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "pre{white-space:pre-wrap;background:#f6f6f6;padding:6px}mark{background:#ffd54f}"
        ".plot{margin:1em 0}",
        "</style></head><body><h1>cuewatch replay report</h1>",
        f"<p>{report['records']:,} records from {e(', '.join(report['inputs']))}; policy "
        f"{e(str(report['policy']))}; seed {report['seed']}; {report['first']} to {report['last']}.</p>",
        f"<p>Bad lines: {report['bad_lines']['count']}"
        + "".join(
            f"<br><code>{e(b['path'])}:{b['line']}: {e(b['error'])}</code>"
            for b in report["bad_lines"]["examples"][:10]
        )
        + "</p>",
        f"<h2>Findings ({len(report['findings'])})</h2>",
    ]
    if report["findings"]:
        parts.append("<table><tr><th>detector</th><th>metric</th><th>summary</th><th>effect</th><th>e-value</th></tr>")
        for f in report["findings"]:
            eff = f.get("effect") or {}
            shown = f"{eff.get('estimate', 0):+.3f} [{eff.get('lo', 0):+.3f}, {eff.get('hi', 0):+.3f}]" if eff else ""
            parts.append(
                f"<tr><td>{e(f['detector'])}</td><td>{e(f['metric'])}</td><td>{e(f['summary'])}</td>"
                f"<td>{e(shown)}</td><td>{f['e_value']:.3g}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No detector raised a finding.</p>")
    parts.append("<h2>Metrics per arm over time</h2>")
    for s in report["series"]:
        if s["metric"].startswith("evalue:"):
            continue
        parts.append(f"<div class='plot rates'>{_rates_plot(s)}</div>")
        parts.append(_arm_table(s["arms"]))
    parts.append("<h2>Evidence: e-value paths and confidence sequences</h2>")
    evalue = [s for s in report["series"] if s["metric"].startswith("evalue:")]
    for s in evalue:
        parts.append(f"<h3>{e(s['experiment'])}: {e(s['metric'].split(':', 1)[1])}</h3>")
        parts.append(f"<div class='plot evalue'>{_evalue_plot(s)}</div>")
    if not evalue:
        parts.append("<p>No betting test ran (no cue-gap detector, or no experiment traffic).</p>")
    parts.append("<h2>Probe accuracy per arm</h2>")
    parts.append(
        f"<div class='plot probes'>{_probe_plot(report['probe_accuracy'])}</div>"
        if report["probe_accuracy"]
        else "<p>No probes in this traffic.</p>"
    )
    parts.append("<h2>Flagged scratchpad excerpts</h2>")
    if report["flagged_excerpts"]:
        parts.append(
            "<table><tr><th>finding</th><th>excerpt</th></tr>"
            + "".join(
                f"<tr><td>{e(x['finding'])}</td><td><pre><mark>{e(x['excerpt'])}</mark></pre></td></tr>"
                for x in report["flagged_excerpts"]
            )
            + "</table>"
        )
    else:
        parts.append("<p>No flagged excerpts.</p>")
    parts.append(f"<h2>Alerts that would have fired ({len(report['alerts_would_fire'])})</h2>")
    if report["alerts_would_fire"]:
        parts.append(
            "<table><tr><th>severity</th><th>summary</th><th>reproduce</th></tr>"
            + "".join(
                f"<tr><td>{e(a['severity'])}</td><td>{e(a['summary'])}</td><td><code>{e(a['replay_command'])}</code></td></tr>"
                for a in report["alerts_would_fire"]
            )
            + "</table>"
        )
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
