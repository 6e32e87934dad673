"""The replay report: `report.json` (deterministic) and `report.html`, one self-contained page
(plotly.js inlined once, charts drawn in the browser, nothing loaded from the network).
`cuewatch report RUN_DIR` rebuilds the HTML from the JSON.

The page opens with a summary in plain words, then one section per experiment (each arm's rate
over time, each test's e-value path with every alarm, the effect with its confidence sequence,
the findings), then flagged scratchpad excerpts, unreadable lines and the alerts that would have
fired.

The evidence series and the charts are in `monitor.replay.figures`.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from monitor import charts
from monitor.errors import ConfigError
from monitor.records import Effect, stated_effect
from monitor.replay.figures import (
    BAND_ALPHA,
    X_AXES,
    XAxis,
    evalue_chart,
    interval_chart,
    number,
    plot_time,
    rates_chart,
    readable,
    utc,
    xtitle,
)

_SEVERITY = {"critical": 2, "warning": 1, "info": 0}
_e = html.escape


def write_report(report: dict[str, Any], out: Path, *, x: XAxis = "time") -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(
        json.dumps(report, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False, default=_finite) + "\n",
        encoding="utf-8",
    )
    return json_path, write_html(report, out, x=x)


def _finite(obj: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def rebuild(run_dir: Path, *, x: XAxis = "time") -> Path:
    path = run_dir / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the report: {exc}") from exc
    return write_html(report, run_dir, x=x)


# ----------------------------------------------------------------------------- words

CSS = """
:root{--ink:#1d2330;--muted:#5a6272;--line:#d9dde5;--soft:#f5f7fa}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--ink);font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 32px 80px}
h1{font-size:30px;margin:0 0 4px}
h2{font-size:23px;margin:44px 0 12px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:18px;margin:28px 0 6px}
p{margin:8px 0}
a{color:#24509d}
.meta,.muted{color:var(--muted);font-size:14px}
.summary{background:var(--soft);border:1px solid var(--line);border-radius:10px;padding:18px 26px;margin-top:18px}
.summary h2{margin:0 0 8px;border:0;padding:0}
.summary ul{margin:6px 0;padding-left:22px}
.summary li{margin:7px 0}
.gap{color:#8f2d12;font-weight:650}
.ok{color:#1d6b34;font-weight:650}
.note{background:#fbf7ea;border-left:4px solid #b8962e;border-radius:4px;padding:10px 16px;margin:12px 0;font-size:15px}
.howto{background:var(--soft);border-left:4px solid #7a8599}
nav{margin:14px 0 0;font-size:15px}
nav a{margin-right:16px}
table{border-collapse:collapse;width:100%;font-size:14.5px;margin:8px 0 14px}
th,td{border-bottom:1px solid var(--line);padding:7px 10px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.chart{width:100%;min-height:280px;margin:10px 0 18px}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;background:var(--soft);padding:8px 10px;margin:0;border-radius:4px}
mark{background:#ffe39a}
.sev-critical{color:#8f2d12;font-weight:650}
.sev-warning{color:#7a5200;font-weight:600}
section.experiment{margin-top:12px}
"""

HOW_TO_READ = (
    "<b>How to read this.</b> <i>Rates</i>: each arm's rate so far, with a shaded band that holds "
    f"the true rate at every moment at once with {1 - BAND_ALPHA:.0%} confidence. <i>E-value</i>: the evidence "
    "against 'no difference between the arms', the wealth of a running bet that only pays when the arms "
    "differ. The test alarms when it reaches the dashed red line (1/alpha, marked ×); it then restarts at 1 "
    "against a stricter line, so each alarm shows as a rise to the line and a drop. <i>Effect</i>: the "
    "difference between the arms with its confidence sequence (valid at any moment); the black bars are "
    "the interval as it stood at each alarm. The e-value is the evidence for an alarm; the interval bounds "
    "the size of the gap."
)


def _effect_text(f: dict[str, Any]) -> str:
    """'A − B = +x points [lo, hi]', the higher arm first (an unbounded end, stored as null: ∞)."""
    eff = f.get("effect")
    if not eff:
        return ""
    lo, hi = number(eff["lo"]), number(eff["hi"])
    bounded = {"lo": -math.inf if lo is None else lo, "hi": math.inf if hi is None else hi}
    return stated_effect(Effect.model_validate({**eff, **bounded}), list(f.get("arms") or []))


def _includes_zero(f: dict[str, Any]) -> bool:
    """The effect is a difference whose interval includes 0, at an alarm."""
    eff = f.get("effect")
    if not eff or not str(eff.get("unit", "")).endswith("difference"):
        return False
    lo, hi = eff["lo"], eff["hi"]
    return bool(lo <= 0 <= hi and f.get("e_value", 0) * f.get("alpha", 1) >= 1)


def _span(first: str | None, last: str | None) -> str:
    if not first or not last:
        return "no records"
    a, b = utc(first), utc(last)
    secs = (b - a).total_seconds()
    if secs < 120:
        length = f"{secs:.0f} s"
    elif secs < 2 * 3600:
        length = f"{secs / 60:.0f} minutes"
    elif secs < 2 * 86400:
        length = f"{secs / 3600:.1f} hours"
    else:
        length = f"{secs / 86400:.1f} days"
    end = b.strftime("%H:%M:%S") if a.date() == b.date() else b.strftime("%Y-%m-%d %H:%M:%S")
    return f"{a:%Y-%m-%d %H:%M:%S} to {end} UTC ({length})"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _headline(f: dict[str, Any], experiment: str) -> str:
    text = str(f.get("summary") or f.get("direction") or f["metric"])
    prefix = f"{experiment}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _worst(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest-severity finding; the latest (most evidence) among equals."""
    return max(enumerate(findings), key=lambda kv: (_SEVERITY.get(kv[1].get("severity", ""), 0), kv[0]))[1]


def _alpha_of(tests: list[dict[str, Any]]) -> float | None:
    for s in tests:
        for p in s["points"]:
            return math.exp(-p["threshold_log_e"])
    return None


def _verdict(experiment: str, findings: list[dict[str, Any]], tests: list[dict[str, Any]]) -> str:
    if findings:
        worst = _worst(findings)
        which = "; shown: the most severe, latest" if len(findings) > 1 else ""
        what = "gap found" if any(len(f.get("arms") or []) >= 2 for f in findings) else "finding raised"
        return (
            f"<span class='gap'>{what}</span>: {_e(_headline(worst, experiment))} "
            f"<span class='muted'>({_plural(len(findings), 'finding')}{which})</span>"
        )
    alpha = _alpha_of(tests)
    if alpha is None:
        return "no gap test ran on it (no cue_gap detector for this experiment, or too little traffic)"
    best = max((p["log_e"] for s in tests for p in s["points"]), default=0.0)
    return (
        f"<span class='ok'>no gap found at alpha {alpha:.3g}</span> (the highest e-value reached was "
        f"{math.exp(min(best, 700)):.3g}; an alarm needs {1 / alpha:.3g})"
    )


def _probe_text(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{_e(r['arm'])} {r['accuracy']:.1%} (n={r['n']:g})" for r in rows)


# ----------------------------------------------------------------------------- page


def _arm_table(s: dict[str, Any]) -> str:
    binary = s.get("binary", True)
    rows = []
    for arm, v in s["arms"].items():
        rate = "" if v["rate"] is None else (f"{v['rate']:.2%}" if binary else f"{v['rate']:.4g}")
        rows.append(
            f"<tr><td>{_e(arm)}</td><td class='num'>{v['n']:,.0f}</td><td class='num'>{v['events']:,.6g}</td>"
            f"<td class='num'>{rate}</td></tr>"
        )
    what = "rate" if binary else "mean"
    return (
        f"<table><tr><th>arm</th><th class='num'>exchanges</th><th class='num'>{_e(s['metric'])}</th>"
        f"<th class='num'>{what}</th></tr>{''.join(rows)}</table>"
    )


def _findings_table(findings: list[dict[str, Any]], binary: bool) -> list[str]:
    rows = []
    zero = False
    for f in findings:
        eff = _e(_effect_text(f))
        if _includes_zero(f):
            zero = True
            eff += "<br><span class='muted'>includes 0 at the alarm: see the note below</span>"
        alpha = f.get("alpha")
        line = f" ≥ {1 / alpha:.3g}" if alpha else ""
        extra = ""
        if f.get("effect_all_traffic"):
            shown = _effect_text({**f, "effect": f["effect_all_traffic"]})
            extra = f"<br><span class='muted'>all traffic: {_e(shown)}</span>"
        sev = _e(str(f.get("severity", "")))
        rows.append(
            f"<tr><td>{_e(utc(f['time']).strftime('%Y-%m-%d %H:%M:%S'))}</td><td>{_e(f['detector'])}<br>"
            f"<span class='muted'>{_e(f['metric'])}</span></td><td>{_e(f.get('direction') or f.get('summary', ''))}"
            f"</td><td>{eff}{extra}</td>"
            f"<td class='num'>{f['e_value']:.3g}{line}</td><td class='sev-{sev}'>{sev}</td></tr>"
        )
    out = [
        "<table><tr><th>alarm (UTC)</th><th>detector</th><th>finding</th><th>effect [interval] at the alarm</th>"
        "<th class='num'>e-value</th><th>severity</th></tr>" + "".join(rows) + "</table>"
    ]
    if zero:
        why = "<b>Why an interval can include 0 although the test alarmed.</b> "
        out.append(f"<p class='note'>{why}{charts.interval_note(binary)}</p>")
    return out


def write_html(report: dict[str, Any], out: Path, *, x: XAxis = "time") -> Path:
    if x not in X_AXES:
        raise ConfigError(f"x axis: expected one of {', '.join(X_AXES)}, got {x!r}")
    findings: list[dict[str, Any]] = report["findings"]
    series: list[dict[str, Any]] = report["series"]
    probes: list[dict[str, Any]] = report["probe_accuracy"]
    alerts: list[dict[str, Any]] = report["alerts_would_fire"]
    bad = report["bad_lines"]
    experiments = sorted(
        {s["experiment"] for s in series}
        | {f["experiment"] for f in findings if f.get("experiment")}
        | {r["experiment"] for r in probes}
    )
    ids = {name: f"exp-{k + 1}" for k, name in enumerate(experiments)}

    # --- summary, first
    summary = [f"<li><b>{report['records']:,} records</b> replayed, {_e(_span(report['first'], report['last']))}.</li>"]
    by_detector = Counter(f["detector"] for f in findings)
    summary.append(
        "<li><b>"
        + _plural(len(findings), "finding")
        + "</b>"
        + (" (" + ", ".join(f"{_e(d)}: {n:,}" for d, n in sorted(by_detector.items())) + ")" if findings else "")
        + ".</li>"
    )
    for name in experiments:
        mine = [f for f in findings if f.get("experiment") == name]
        tests = [s for s in series if s["experiment"] == name and s["metric"].startswith("evalue:")]
        summary.append(
            f"<li>Experiment <a href='#{ids[name]}'><b>{_e(name)}</b></a>: {_verdict(name, mine, tests)}</li>"
        )
    by_exp: dict[str, list[dict[str, Any]]] = {}
    for r in probes:
        by_exp.setdefault(r["experiment"], []).append(r)
    for name, rows in sorted(by_exp.items()):
        summary.append(f"<li>Probe accuracy in {_e(name)}: {_probe_text(rows)}.</li>")
    if alerts:
        sev = Counter(a.get("severity", "") for a in alerts)
        summary.append(
            f"<li><b>{_plural(len(alerts), 'alert')} would have fired</b> ("
            + ", ".join(f"{n} {_e(s)}" for s, n in sorted(sev.items()))
            + ") under the policy's rules; see <a href='#alerts'>alerts</a>.</li>"
        )
    else:
        summary.append("<li>No alert would have fired.</li>")
    if bad["count"]:
        summary.append(f"<li>{_plural(bad['count'], 'line')} could not be read (<a href='#bad'>listed below</a>).</li>")

    nav = "".join(f"<a href='#{ids[n]}'>{_e(n)}</a>" for n in experiments)
    nav += "<a href='#excerpts'>scratchpad excerpts</a><a href='#bad'>unreadable lines</a><a href='#alerts'>alerts</a>"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>cuewatch replay report</title>",
        f"<style>{CSS}</style>",
        f"<script>{charts.plotly_js()}</script>",
        "</head><body><main>",
        "<h1>cuewatch replay report</h1>",
        f"<p class='meta'>{_e(', '.join(report['inputs']))} · policy {_e(str(report['policy']))} · "
        f"seed {report['seed']} · x axis: {_e(xtitle(x))}</p>",
        f"<nav>{nav}</nav>",
        "<section class='summary'><h2>Summary</h2><ul>" + "".join(summary) + "</ul></section>",
    ]

    # --- one section per experiment
    span: list[Any] | None = None
    if report["records"] and report["first"] and report["last"]:
        span = [plot_time(report["first"]), plot_time(report["last"])] if x == "time" else [1, report["records"]]
    if experiments:
        parts.append(f"<p class='note howto'>{HOW_TO_READ}</p>")
    for name in experiments:
        sid = ids[name]
        mine = [f for f in findings if f.get("experiment") == name]
        rates = [s for s in series if s["experiment"] == name and not s["metric"].startswith("evalue:")]
        tests = [s for s in series if s["experiment"] == name and s["metric"].startswith("evalue:")]
        parts.append(f"<section class='experiment' id='{sid}'><h2>Experiment: {_e(name)}</h2>")
        parts.append(f"<p>{_verdict(name, mine, tests)}</p>")
        for k, s in enumerate(rates):
            parts.append(f"<h3>{_e(s['metric'])} per arm</h3>")
            parts.append(_arm_table(s))
            parts.append(rates_chart(s, x, f"{sid}-rates-{k}", span))
        for k, s in enumerate(tests):
            test = s.get("test") or {}
            what = test.get("metric", s["metric"].split(":")[1])
            arms = test.get("arms") or []
            n_alarms = len(s.get("alarms", []))
            parts.append(f"<h3>Test: {_e(what)}, {_e(' vs '.join(arms))}</h3>")
            parts.append(
                f"<p class='muted'>{_plural(n_alarms, 'alarm')}; {len(s['points']):,} points "
                "(samples, plus each alarm's evidence at full resolution).</p>"
            )
            parts.append(evalue_chart(s, x, f"{sid}-evalue-{k}", span))
            interval = interval_chart(s, x, f"{sid}-effect-{k}", span)
            if interval:
                parts.append(interval)
        rows = by_exp.get(name, [])
        if rows:
            fig = charts.bars_figure(
                [r["arm"] for r in rows], [r["accuracy"] for r in rows],
                title="known-answer probes: accuracy per arm", ytitle="accuracy",
            )  # fmt: skip
            fig["data"][0].update(
                text=[f"{r['accuracy']:.1%} (n={r['n']:g})" for r in rows], textposition="outside", cliponaxis=False
            )
            fig["layout"].update(height=280, bargap=0.6)
            fig["layout"]["yaxis"]["tickformat"] = ".0%"
            parts.append("<h3>Probe accuracy</h3>")
            parts.append(charts.div(readable(fig), f"{sid}-probes"))
        parts.append(f"<h3>Findings ({len(mine)})</h3>")
        if mine:
            binary = any(s.get("binary") for s in tests)
            parts += _findings_table(mine, binary or not tests)
        else:
            parts.append("<p>No detector raised a finding for this experiment.</p>")
        parts.append("</section>")
    other = [f for f in findings if not f.get("experiment")]
    if other:
        parts.append(f"<h2>Other findings ({len(other)})</h2>")
        parts += _findings_table(other, True)

    # --- the rest
    parts.append(f"<h2 id='excerpts'>Flagged scratchpad excerpts ({len(report['flagged_excerpts'])})</h2>")
    if report["flagged_excerpts"]:
        parts.append(
            "<table><tr><th>finding</th><th>detector</th><th>excerpt</th></tr>"
            + "".join(
                f"<tr><td><code>{_e(x_['finding'])}</code></td><td>{_e(x_.get('detector', ''))}</td>"
                f"<td><pre><mark>{_e(x_['excerpt'])}</mark></pre></td></tr>"
                for x_ in report["flagged_excerpts"]
            )
            + "</table>"
        )
    else:
        parts.append("<p>No flagged excerpts.</p>")
    parts.append(f"<h2 id='bad'>Unreadable lines ({bad['count']:,})</h2>")
    if bad["examples"]:
        shown = bad["examples"][:20]
        parts.append(
            "<table><tr><th>file</th><th class='num'>line</th><th>error</th></tr>"
            + "".join(
                f"<tr><td><code>{_e(b['path'])}</code></td><td class='num'>{b['line']}</td>"
                f"<td><code>{_e(b['error'])}</code></td></tr>"
                for b in shown
            )
            + "</table>"
        )
        if bad["count"] > len(shown):
            parts.append(f"<p class='muted'>The first {len(shown)} shown; report.json lists up to 100.</p>")
    else:
        parts.append("<p>Every line was read.</p>")
    parts.append(f"<h2 id='alerts'>Alerts that would have fired ({len(alerts)})</h2>")
    if alerts:
        parts.append(
            "<table><tr><th>severity</th><th>summary</th><th>reproduce</th></tr>"
            + "".join(
                f"<tr><td class='sev-{_e(a['severity'])}'>{_e(a['severity'])}</td><td>{_e(a['summary'])}</td>"
                f"<td><code>{_e(a['replay_command'])}</code></td></tr>"
                for a in alerts
            )
            + "</table>"
        )
    else:
        parts.append("<p>None.</p>")
    parts.append("</main></body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
