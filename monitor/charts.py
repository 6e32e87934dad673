"""Charts for the evidence page and the replay report: Plotly figures as plain JSON specs, drawn in
the browser by the plotly.js bundle that ships in the `plotly` package (served by the sidecar,
inlined in the report), so pages never load anything from the network.

Example
-------
>>> fig = evalue_figure(["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"], [0.5, 4.9], [4.6, 4.6])
>>> [t["name"] for t in fig["data"]], fig["layout"]["yaxis"]["type"]
(['e-value', 'alarm line (1/alpha)'], 'log')
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError

#: The arms' colours, in order (colour-blind safe: Okabe-Ito).
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
LOG_CAP = 700.0  # exp(700) is near the largest double


def interval_note(binary: bool = True) -> str:
    """Why an effect's interval can include 0 although its test alarmed (shown beside the charts
    of the evidence page and the report)."""
    per_arm = "Bernoulli confidence sequences" if binary else "confidence sequences for the mean"
    return (
        "The alarm and the interval are two different methods. The alarm comes from a sequential betting "
        "test of 'no difference': it alarms when its e-value reaches 1/alpha, and that is the evidence for "
        f"the finding. The interval is a separate, more conservative time-uniform confidence sequence: two "
        f"per-arm {per_arm} at alpha/2 each, combined by a union bound. So at the moment of an alarm it can "
        "still include 0; it narrows as traffic continues. Both are valid at any stopping time: the e-value "
        "is the evidence for the alarm, the interval bounds the size of the gap."
    )


def plotly_js_path() -> Path:
    """The plotly.js bundle of the installed `plotly` package."""
    try:
        import plotly
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ConfigError("charts need the plotly package: pip install plotly") from exc
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@cache
def plotly_js() -> str:
    return plotly_js_path().read_text(encoding="utf-8")


def _layout(title: str, xtitle: str, ytitle: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "xaxis": {"title": {"text": xtitle}},
        "yaxis": {"title": {"text": ytitle}, **extra.pop("yaxis", {})},
        "height": 340,
        "margin": {"l": 70, "r": 20, "t": 45, "b": 50},
        "legend": {"orientation": "h", "y": -0.25},
        "hovermode": "x unified",
        **extra,
    }


def evalue_figure(
    xs: list[Any],
    log_e: list[float],
    log_threshold: list[float],
    *,
    alarms: Sequence[tuple[Any, float]] = (),
    xtitle: str = "time (UTC)",
    title: str = "evidence against 'no difference' (e-value)",
) -> dict[str, Any]:
    """The e-value path on a log axis against the line at which the test alarms; `alarms` marks
    each crossing (x, log e-value)."""
    data: list[dict[str, Any]] = [
        {"x": xs, "y": [math.exp(min(v, LOG_CAP)) for v in log_e], "name": "e-value", "mode": "lines",
         "line": {"color": COLOURS[0], "width": 2}},
        {"x": xs, "y": [math.exp(min(v, LOG_CAP)) for v in log_threshold], "name": "alarm line (1/alpha)",
         "mode": "lines", "line": {"color": "#C00000", "dash": "dash", "width": 1.5}},
    ]  # fmt: skip
    if alarms:
        data.append(
            {"x": [a[0] for a in alarms], "y": [math.exp(min(a[1], LOG_CAP)) for a in alarms], "name": "alarm",
             "mode": "markers", "marker": {"color": "#C00000", "size": 10, "symbol": "x"}}
        )  # fmt: skip
    return {"data": data, "layout": _layout(title, xtitle, "e-value", yaxis={"type": "log", "exponentformat": "power"})}


def interval_figure(
    xs: list[Any],
    estimate: list[float],
    lo: list[float],
    hi: list[float],
    *,
    label: str,
    xtitle: str = "time (UTC)",
    title: str = "effect with its confidence sequence",
    scale: float = 1.0,
) -> dict[str, Any]:
    """An estimate over time inside its interval band, with the zero line."""

    def shown(v: list[float]) -> list[float | None]:
        return [x * scale if math.isfinite(x) and abs(x) < 1e100 else None for x in v]

    band: dict[str, Any] = {
        "fill": "tonexty",
        "fillcolor": "rgba(0,114,178,0.18)",
        "line": {"width": 0},
        "mode": "lines",
    }
    data: list[dict[str, Any]] = [
        {"x": xs, "y": shown(lo), "name": "interval low", "mode": "lines", "line": {"width": 0}, "showlegend": False},
        {"x": xs, "y": shown(hi), "name": "confidence sequence", **band},
        {"x": xs, "y": shown(estimate), "name": "estimate", "mode": "lines", "line": {"color": COLOURS[0]}},
    ]
    layout = _layout(title, xtitle, label)
    layout["shapes"] = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0, "line": {"color": "#666", "width": 1}}
    ]
    return {"data": data, "layout": layout}


def rates_figure(
    series: dict[str, tuple[list[Any], list[float], list[float], list[float]]],
    *,
    title: str,
    ytitle: str,
    xtitle: str = "time (UTC)",
) -> dict[str, Any]:
    """One line per arm (x, rate, lo, hi) with its band."""
    data: list[dict[str, Any]] = []
    for i, (arm, (xs, ys, lo, hi)) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
        data.append({"x": xs, "y": lo, "mode": "lines", "line": {"width": 0}, "showlegend": False, "name": arm,
                     "legendgroup": arm, "hoverinfo": "skip"})  # fmt: skip
        data.append({"x": xs, "y": hi, "mode": "lines", "line": {"width": 0}, "fill": "tonexty",
                     "fillcolor": f"rgba({r},{g},{b},0.18)", "showlegend": False, "name": arm, "legendgroup": arm,
                     "hoverinfo": "skip"})  # fmt: skip
        data.append({"x": xs, "y": ys, "mode": "lines", "name": arm, "legendgroup": arm, "line": {"color": colour}})
    return {"data": data, "layout": _layout(title, xtitle, ytitle)}


def bars_figure(labels: list[str], values: list[float], *, title: str, ytitle: str) -> dict[str, Any]:
    data = [{"type": "bar", "x": labels, "y": values, "marker": {"color": COLOURS[0]}}]
    return {"data": data, "layout": _layout(title, "", ytitle, yaxis={"range": [0, 1]})}


def div(fig: dict[str, Any], ident: str) -> str:
    """A div and the script that draws `fig` into it (plotly.js must be on the page)."""
    spec = json.dumps(fig, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    return (
        f"<div class='chart' id='{html.escape(ident)}'></div>"
        f"<script>(function(f){{Plotly.newPlot({json.dumps(ident)},f.data,f.layout,"
        f"{{displaylogo:false,responsive:true}})}})({spec});</script>"
    )
