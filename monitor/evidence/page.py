"""The evidence pages as HTML: the findings list with its filters, one finding (what was found,
the effect with its confidence sequence, the e-value path against the alarm line, counts per arm,
example exchanges side by side by arm, flagged scratchpad spans highlighted), and the sign-in form.
Plain HTML and one script, plotly.js, served by the sidecar itself (`/admin/static/plotly.min.js`)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from itertools import zip_longest

from monitor import charts
from monitor.records import Exchange, Finding, stated_effect

TEXT_MAX = 3000  # characters of a prompt, reasoning or answer shown (the rest: cuewatch show ID)
e = html.escape

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
main{max-width:1280px;margin:0 auto;padding:1.2em 2em 3em}
header.top{background:#123;color:#fff;padding:.6em 2em}header.top a{color:#cde}
h1{font-size:1.5em;margin:.6em 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:5px 9px;text-align:left;
vertical-align:top}th{background:#f0f2f5}td.t{white-space:nowrap}.num{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;padding:1px 8px;border-radius:9px;font-size:.85em;color:#fff;background:#777}
.sev.critical{background:#b00020}.sev.warning{background:#c77700}.sev.info{background:#2a6f97}
.effect{font-size:1.35em;font-weight:600;margin:.4em 0}.note{background:#fff8e1;border-left:4px solid #e6a700;
padding:.5em .9em;margin:.8em 0;max-width:70em}.muted{color:#666}
.arms{display:grid;gap:12px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em .8em;
overflow:hidden}.card h4{margin:0 0 .3em;font-size:.95em}.arm-head{font-weight:600;padding:.3em .2em}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f7f9;padding:6px 8px;margin:.3em 0;max-height:22em;
overflow:auto;font-size:.88em}mark{background:#ffd54f;padding:0 1px}.label{font-size:.8em;color:#555;
text-transform:uppercase;letter-spacing:.04em;margin-top:.5em}.chart{background:#fff;border:1px solid #ddd;
margin:.6em 0}form.filters{display:flex;gap:.8em;flex-wrap:wrap;align-items:end;margin:.8em 0}
form.filters label{display:flex;flex-direction:column;font-size:.85em}code{background:#eef;padding:0 3px}
"""


def layout(title: str, body: str, *, base: str = "/admin", charts_js: bool = False) -> str:
    script = f"<script src='{base}/static/plotly.min.js'></script>" if charts_js else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style>{script}</head>"
        f"<body><header class='top'><b>cuewatch</b> · <a href='{base}/findings'>findings</a></header>"
        f"<main>{body}</main></body></html>"
    )


# ----------------------------------------------------------------------------- list


def findings_list(
    findings: list[Finding], facets: Mapping[str, list[str]], filters: Mapping[str, str], *, base: str = "/admin"
) -> str:
    selects = []
    for name in ("detector", "experiment", "severity"):
        chosen = filters.get(name, "")
        options = "".join(
            f"<option value='{e(v)}'{' selected' if v == chosen else ''}>{e(v)}</option>" for v in facets.get(name, [])
        )
        selects.append(f"<label>{name}<select name='{name}'><option value=''>all</option>{options}</select></label>")
    since = e(filters.get("since", ""))
    form = (
        f"<form class='filters' method='get' action='{base}/findings'>{''.join(selects)}"
        f"<label>since (UTC)<input name='since' value='{since}' placeholder='2026-12-01T00:00'></label>"
        "<button type='submit'>filter</button></form>"
    )
    if findings:
        rows = "".join(
            f"<tr><td class='t'>{f.time:%Y-%m-%d %H:%M:%S}</td>"
            f"<td><span class='sev {e(f.severity)}'>{e(f.severity)}</span></td>"
            f"<td>{e(f.detector)}</td><td>{e(f.experiment or '')}</td>"
            f"<td><a href='{base}/findings/{e(f.id)}'>{e(f.summary or f.direction)}</a></td></tr>"
            for f in findings
        )
        table = (
            "<table><tr><th>time (UTC)</th><th>severity</th><th>detector</th><th>experiment</th><th>finding</th></tr>"
            f"{rows}</table>"
        )
    else:
        table = "<p class='muted'>No findings match.</p>"
    return layout("cuewatch findings", f"<h1>Findings ({len(findings)})</h1>{form}{table}", base=base)


# ----------------------------------------------------------------------------- one finding


def finding_page(
    f: Finding,
    examples: Mapping[str, Exchange],
    *,
    base: str = "/admin",
    logs: str = "LOG_DIR",
    policy: str = "POLICY",
) -> str:
    parts = [
        f"<p class='muted'>{f.time:%Y-%m-%d %H:%M:%S} UTC · detector <b>{e(f.detector)}</b> · metric "
        f"<b>{e(f.metric)}</b>" + (f" · experiment <b>{e(f.experiment)}</b>" if f.experiment else "")
        + (f" · model <b>{e(f.model)}</b>" if f.model else "") + f" · <span class='sev {e(f.severity)}'>"
        f"{e(f.severity)}</span></p>",
        f"<h1>{e(f.direction or f.summary)}</h1>",
        f"<p>{e(f.summary)}</p>",
    ]  # fmt: skip
    parts += _effect(f)
    parts += _charts(f)
    parts += _counts(f)
    parts += _examples(f, examples)
    parts.append("<h2>Take it further</h2><ul>")
    for ident in example_ids(f):
        parts.append(f"<li><code>cuewatch show {e(ident)} --log {e(logs)}</code></li>")
    if f.experiment:
        parts.append(
            f"<li><code>cuewatch replay {e(logs)} --policy {e(policy)} --until {f.time.isoformat()} "
            f"--out replay-{e(f.id[:8])}</code> "
            "reruns the detectors over the logged traffic and writes a report</li>"
        )
    parts.append(f"<li><a href='{base}/findings/{e(f.id)}?format=json'>this finding as JSON</a></li></ul>")
    return layout(f"cuewatch finding {f.id}", "".join(parts), base=base, charts_js=bool(f.path))


def _effect(f: Finding) -> list[str]:
    if f.effect is None:
        if f.score is not None:
            return [f"<p class='effect'>classifier score {f.score:.2f}</p>"]
        return []
    eff = f.effect
    out = [
        "<h2>Effect</h2>",
        f"<p class='effect'>{e(stated_effect(eff, f.arms))}</p>",
        f"<p class='muted'>{e(eff.unit)}; {1 - f.alpha:.1%} confidence sequence"
        + (f" ({e(eff.method)})" if eff.method else " (time-uniform)")
        + f"; e-value {f.e_value:.3g} (alarm at {1 / f.alpha:.3g}); always-valid p-value {f.p_value:.2g}</p>",
    ]
    if f.effect_all_traffic is not None:
        a = f.effect_all_traffic
        out.append(
            f"<p>Reweighted to all traffic: {e(stated_effect(a, f.arms))} "
            f"<span class='muted'>({e(a.method or a.unit)})</span></p>"
        )
    if eff.lo <= 0 <= eff.hi:
        note = charts.interval_note(eff.unit.startswith("rate"))
        out.append(f"<p class='note'><b>Why the interval includes 0 although the test alarmed.</b> {note}</p>")
    else:
        out.append(f"<p class='note'>{charts.interval_note(eff.unit.startswith('rate'))}</p>")
    return out


def _charts(f: Finding) -> list[str]:
    if not f.path:
        return []
    xs = [p.time.isoformat() for p in f.path]
    last = f.path[-1]
    binary = f.effect is not None and f.effect.unit.startswith("rate")
    # drawn as the effect is stated: the higher arm first
    flip = len(f.arms) == 2 and f.effect is not None and f.effect.estimate < 0
    first, second = (f.arms[::-1] if flip else f.arms) if len(f.arms) == 2 else ("", "")
    label = f"{first} − {second}" if len(f.arms) == 2 else "effect"
    sign = -1.0 if flip else 1.0
    evalue = charts.evalue_figure(
        xs, [p.log_e for p in f.path], [p.log_threshold for p in f.path], alarms=[(xs[-1], last.log_e)],
        title="evidence against 'no difference' since the test started (e-value)",
    )  # fmt: skip
    effect = charts.interval_figure(
        xs, [sign * p.estimate for p in f.path],
        [sign * (p.hi if flip else p.lo) for p in f.path], [sign * (p.lo if flip else p.hi) for p in f.path],
        label=label + (" (points)" if binary else ""), scale=100.0 if binary else 1.0,
        title=f"{label}: estimate and confidence sequence",
    )  # fmt: skip
    n0 = sum(f.path[0].n.values())
    return [
        "<h2>Evidence over time</h2>",
        f"<p class='muted'>{len(f.path)} points from {f.path[0].time:%Y-%m-%d %H:%M:%S} ({n0:g} exchanges in the "
        f"test) to the alarm at {last.time:%H:%M:%S} ({sum(last.n.values()):g}); the test restarts after each alarm "
        "at a stricter level.</p>",
        charts.div(evalue, "evalue"),
        charts.div(effect, "effect"),
    ]


def _counts(f: Finding) -> list[str]:
    if not f.counts:
        return []
    rows = []
    for arm, c in f.counts.items():
        n = c.get("n", 0.0)
        k = c.get("sum", c.get("events", 0.0))
        rate = f"{k / n:.1%}" if n and k <= n else (f"{k / n:.3g}" if n else "")
        rows.append(
            f"<tr><td>{e(arm)}</td><td class='num'>{n:g}</td><td class='num'>{k:g}</td><td class='num'>{rate}</td></tr>"
        )
    what = e(f.metric)
    return [
        "<h2>Counts per arm</h2>",
        f"<table><tr><th>arm</th><th>exchanges</th><th>{what}</th><th>rate</th></tr>{''.join(rows)}</table>",
    ]


def example_ids(f: Finding) -> list[str]:
    ids = [i for arm_ids in f.example_ids.values() for i in arm_ids]
    if f.exchange_id and f.exchange_id not in ids:
        ids.append(f.exchange_id)
    return ids


def _examples(f: Finding, examples: Mapping[str, Exchange]) -> list[str]:
    arms = list(f.example_ids) or ["all"]
    if not any(f.example_ids.values()):
        return []
    quotes = [q.strip() for q in (f.excerpt or "").split(" … ") if q.strip()]
    by_arm = {arm: [examples.get(i) or i for i in f.example_ids.get(arm, [])] for arm in arms}
    # Shadow pairs: the same prompt under each cue goes on one row.
    pairs: dict[str, dict[str, Exchange]] = {}
    for arm, items in by_arm.items():
        for ex in items:
            if isinstance(ex, Exchange) and ex.pair_id:
                pairs.setdefault(ex.pair_id, {})[arm] = ex
    paired = {pid: row for pid, row in pairs.items() if len(row) > 1}
    in_pairs = {ex.id for row in paired.values() for ex in row.values()}
    rows: list[list[Exchange | str | None]] = [[row.get(arm) for arm in arms] for row in paired.values()]
    rest = [[x for x in by_arm[arm] if not (isinstance(x, Exchange) and x.id in in_pairs)] for arm in arms]
    rows += [list(r) for r in zip_longest(*rest)]
    grid = f"grid-template-columns:repeat({len(arms)},minmax(0,1fr))"
    out = [
        "<h2>Example exchanges, side by side by arm</h2>",
        "<p class='muted'>The latest exchanges of each arm when the finding was raised"
        + ("; shadow pairs (the same prompt under each cue) share a row" if paired else "")
        + ("; flagged spans are highlighted" if quotes else "")
        + ".</p>",
        f"<div class='arms' style='{grid}'>" + "".join(f"<div class='arm-head'>{e(a)}</div>" for a in arms) + "</div>",
    ]
    for row in rows:
        cells = "".join(_card(x, quotes) for x in row)
        out.append(f"<div class='arms' style='{grid}'>{cells}</div>")
    return out


def _card(x: Exchange | str | None, quotes: list[str]) -> str:
    if x is None:
        return "<div></div>"
    if isinstance(x, str):
        return (
            f"<div class='card'><h4>{e(x)}</h4><p class='muted'>Not in the logs this page reads "
            f"(another sidecar's log, or rotated away): <code>cuewatch show {e(x)} --log LOG</code></p></div>"
        )
    ex = x
    prompt = next((m.text for m in reversed(ex.messages) if m.role == "user"), "")
    head = (
        f"<h4>{e(ex.id)}</h4><div class='muted'>{ex.time:%Y-%m-%d %H:%M:%S} · {e(ex.model or '?')} · "
        f"{e(ex.origin)} · {e(ex.outcome)}" + (f" · pair {e(ex.pair_id)}" if ex.pair_id else "") + "</div>"
    )
    body = [head]
    if ex.cue:
        body.append(f"<div class='label'>cue</div><pre>{e(_cut(ex.cue))}</pre>")
    body.append(f"<div class='label'>prompt</div><pre>{e(_cut(prompt))}</pre>")
    if ex.reasoning:
        body.append(f"<div class='label'>reasoning</div><pre>{_marked(_cut(ex.reasoning), quotes)}</pre>")
    if ex.response_text:
        body.append(f"<div class='label'>answer</div><pre>{_marked(_cut(ex.response_text), quotes)}</pre>")
    if ex.tool_calls:
        body.append(f"<div class='label'>tool calls</div><pre>{e(', '.join(t.name for t in ex.tool_calls))}</pre>")
    return f"<div class='card'>{''.join(body)}</div>"


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_MAX else text[:TEXT_MAX] + f" … [{len(text) - TEXT_MAX:,} more characters]"


def _marked(text: str, quotes: list[str]) -> str:
    """`text` escaped, with each flagged quote that occurs in it highlighted."""
    out = e(text)
    for q in sorted(set(quotes), key=len, reverse=True):
        eq = e(q)
        if eq and eq in out:
            out = out.replace(eq, f"<mark>{eq}</mark>")
    return out


# ----------------------------------------------------------------------------- sign in


def login_page(next_path: str, error: str | None = None, *, base: str = "/admin") -> str:
    err = f"<p class='note'>{e(error)}</p>" if error else ""
    body = (
        f"<h1>Sign in</h1>{err}<p>The evidence pages show prompts and answers: they need the admin token "
        "(<code>CUEWATCH_ADMIN_TOKEN</code>).</p>"
        f"<form method='post' action='{base}/login'><input type='hidden' name='next' value='{e(next_path)}'>"
        "<label>admin token <input type='password' name='token' autofocus autocomplete='current-password'></label> "
        "<button type='submit'>sign in</button></form>"
    )
    return layout("cuewatch sign in", body, base=base)
