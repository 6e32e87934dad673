"""The replay report's evidence series and charts: each test's e-value path merged with the
full-resolution paths its findings carry (so every alarm shows its crossing), the records axis,
and the Plotly figures of each experiment's section.

Example
-------
>>> axis = RecordAxis([("2026-01-01T00:00:00+00:00", 1), ("2026-01-01T00:01:40+00:00", 101)])
>>> axis.at(utc("2026-01-01T00:00:50Z"))
51
"""

from __future__ import annotations

import html
import math
from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from detectors.stats import bernoulli_cs
from monitor import charts
from monitor.records import Finding

BAND_ALPHA = 0.05
XAxis = Literal["time", "records"]
X_AXES: tuple[XAxis, ...] = ("time", "records")


# ----------------------------------------------------------------------------- evidence series


def utc(value: str | datetime) -> datetime:
    """A time as an aware UTC datetime (a time without a zone is taken as UTC)."""
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and abs(value) < 1e300 else None


class RecordAxis:
    """Where a moment falls on the records axis, interpolated between known (time, record) pairs:
    the samples and the alarms are exact, the points of an alarm's path in between are not."""

    def __init__(self, known: Sequence[tuple[str, int]]) -> None:
        pairs = sorted({(utc(t).timestamp(), int(i)) for t, i in known})
        self.times = [t for t, _ in pairs]
        self.records = [i for _, i in pairs]

    def at(self, t: datetime) -> int:
        if not self.times:
            return 0
        s = t.timestamp()
        k = bisect_right(self.times, s)
        if k == 0:
            return self.records[0]
        if k == len(self.times) or self.times[k - 1] == s:
            return self.records[k - 1]
        t0, t1, i0, i1 = self.times[k - 1], self.times[k], self.records[k - 1], self.records[k]
        return round(i0 + (i1 - i0) * (s - t0) / (t1 - t0))


def merge_evidence(
    samples: list[dict[str, Any]], findings: Sequence[tuple[Finding, int | None]], axis: RecordAxis
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One test's e-value series at full resolution: its sampled points and the path each of its
    findings carries (from the test's start or last alarm up to the crossing), in time order, with
    the restart at 1 just after each alarm. Returns the points and the alarms."""
    rows: list[tuple[tuple[datetime, int, int, int], dict[str, Any]]] = []
    for j, p in enumerate(samples):
        point = {**p, "lo": number(p.get("lo")), "hi": number(p.get("hi")), "source": "sample"}
        rows.append(((utc(p["time"]), 2, 0, j), point))
    alarms = []
    for k, (f, record) in enumerate(findings):
        path: list[dict[str, Any]] = [
            {"time": utc(p.time), "log_e": p.log_e, "log_threshold": p.log_threshold, "estimate": p.estimate,
             "lo": p.lo, "hi": p.hi}
            for p in f.path
        ]  # fmt: skip
        if not path:  # a finding without its path: the crossing alone
            eff = f.effect
            path = [
                {"time": utc(f.time), "log_e": math.log(max(f.e_value, 1e-300)), "log_threshold": -math.log(f.alpha),
                 "estimate": eff.estimate if eff else None, "lo": eff.lo if eff else None,
                 "hi": eff.hi if eff else None}
            ]  # fmt: skip
        for j, p in enumerate(path):
            last = j == len(path) - 1
            t = p["time"]
            point = {
                "i": record if last and record is not None else axis.at(t),
                "time": t.isoformat(),
                "log_e": p["log_e"],
                "threshold_log_e": p["log_threshold"],
                "estimate": number(p["estimate"]),
                "lo": number(p["lo"]),
                "hi": number(p["hi"]),
                "source": "alarm" if last else "path",
            }
            rows.append(((t, 0, k, j), point))
        crossing = rows[-1][1]
        # the test restarts at e-value 1 (log 0), against a stricter line (filled in below)
        rows.append(((path[-1]["time"], 1, k, 0), {**crossing, "log_e": 0.0, "source": "restart"}))
        alarms.append(
            {
                "finding": f.id,
                "time": crossing["time"],
                "i": crossing["i"],
                "log_e": crossing["log_e"],
                "threshold_log_e": crossing["threshold_log_e"],
                "estimate": crossing["estimate"],
                "lo": crossing["lo"],
                "hi": crossing["hi"],
            }
        )
    rows.sort(key=lambda r: r[0])
    points = [p for _, p in rows]
    following: float | None = None
    for p in reversed(points):  # after a restart the line is the next point's, the stricter level
        if p["source"] == "restart" and following is not None:
            p["threshold_log_e"] = following
        elif p["source"] != "restart":
            following = p["threshold_log_e"]
    return points, alarms


# ----------------------------------------------------------------------------- charts

_e = html.escape


def plot_time(value: str) -> str:
    """An ISO time as plotly.js reads dates: UTC, no zone suffix."""
    t = utc(value)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f" if t.microsecond else "%Y-%m-%d %H:%M:%S")


def _xs(points: list[dict[str, Any]], x: XAxis) -> list[Any]:
    return [plot_time(p["time"]) if x == "time" else p["i"] for p in points]


def xtitle(x: XAxis) -> str:
    return "time (UTC)" if x == "time" else "records replayed"


def readable(fig: dict[str, Any], span: list[Any] | None = None) -> dict[str, Any]:
    """Larger text, the legend above the plot (clear of the axis title), and the x axis over
    `span` (the whole replay, so that the charts of a section line up)."""
    layout = fig["layout"]
    layout["font"] = {"size": 13, "family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"}
    layout["title"] = {**layout.get("title", {}), "x": 0, "xanchor": "left", "font": {"size": 16}}
    layout["legend"] = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"}
    layout["margin"] = {"l": 70, "r": 20, "t": 70, "b": 55}
    layout["plot_bgcolor"] = "#ffffff"
    for axis in ("xaxis", "yaxis"):
        layout.setdefault(axis, {}).update(gridcolor="#e6e6e6", zeroline=False, automargin=True)
    if span is not None:
        layout["xaxis"]["range"] = span
    return fig


def _upper_range(bands: list[list[float]], floor: float) -> float:
    """A y-axis top that ignores the first tenth of each band (where few observations make it
    very wide) so that the rest stays readable."""
    later = [v for band in bands for v in band[len(band) // 10 :] if math.isfinite(v)]
    return max([floor, *later]) * 1.1 if later else floor


def rates_chart(s: dict[str, Any], x: XAxis, ident: str, span: list[Any] | None) -> str:
    binary = s.get("binary", True)
    series: dict[str, tuple[list[Any], list[float], list[float], list[float]]] = {}
    for arm in s["arms"]:
        xs: list[Any] = []
        ys: list[float] = []
        lo: list[float] = []
        hi: list[float] = []
        for p in s["points"]:
            n, k = p["n"].get(arm, 0.0), p["events"].get(arm, 0.0)
            if not n:
                continue
            xs.append(plot_time(p["time"]) if x == "time" else p["i"])
            if binary:
                a, b = bernoulli_cs(k, n, BAND_ALPHA)
                ys.append(100 * k / n)
                lo.append(100 * a)
                hi.append(100 * b)
            else:
                ys.append(k / n)
                lo.append(k / n)
                hi.append(k / n)
        series[arm] = (xs, ys, lo, hi)
    metric = s["metric"]
    what = f"{metric} (harmful requests)" if metric == "complied" else metric
    title = (
        f"{what}: rate per arm, shaded {1 - BAND_ALPHA:.0%} confidence sequence" if binary else f"{what}: mean per arm"
    )
    fig = charts.rates_figure(
        series, title=_e(title), ytitle=f"% {_e(metric)}" if binary else _e(metric), xtitle=xtitle(x)
    )
    if binary:
        top = _upper_range([hi for _, _, _, hi in series.values()], 1.0)
        fig["layout"]["yaxis"]["range"] = [0, min(top, 100.0)]
    return charts.div(readable(fig, span), ident)


def _test_label(s: dict[str, Any]) -> str:
    arms = s.get("test", {}).get("arms") or []
    return " − ".join(arms) if len(arms) == 2 else "estimate"


def evalue_chart(s: dict[str, Any], x: XAxis, ident: str, span: list[Any] | None) -> str:
    points = s["points"]
    xs = _xs(points, x)
    alarms = [(plot_time(a["time"]) if x == "time" else a["i"], a["log_e"]) for a in s.get("alarms", [])]
    test = s.get("test") or {}
    arms = test.get("arms") or []
    name = test.get("metric", s["metric"].split(":")[1] if ":" in s["metric"] else s["metric"])
    versus = f" between {' and '.join(arms)}" if arms else ""
    fig = charts.evalue_figure(
        xs,
        [p["log_e"] for p in points],
        [p["threshold_log_e"] for p in points],
        alarms=alarms,
        xtitle=xtitle(x),
        title=_e(f"evidence that {name} differs{versus} (e-value; alarm at the dashed line)"),
    )
    return charts.div(readable(fig, span), ident)


def interval_chart(s: dict[str, Any], x: XAxis, ident: str, span: list[Any] | None) -> str | None:
    points = [p for p in s["points"] if p.get("estimate") is not None]
    if not points:
        return None
    nan = float("nan")
    scale = 100.0 if s.get("binary") and s.get("difference") else 1.0
    label = _test_label(s) if s.get("difference") else "estimate"
    unit = " (points)" if scale == 100.0 else ""
    fig = charts.interval_figure(
        _xs(points, x),
        [p["estimate"] for p in points],
        [nan if p["lo"] is None else p["lo"] for p in points],
        [nan if p["hi"] is None else p["hi"] for p in points],
        label="difference" + unit if s.get("difference") else "estimate",
        xtitle=xtitle(x),
        title=_e(f"{label}: estimate with its {'confidence sequence' if scale == 100.0 else 'interval'}"),
        scale=scale,
    )
    alarms = [a for a in s.get("alarms", []) if a.get("estimate") is not None]
    # the axis clear of the first tenth's very wide band; the alarms' intervals and 0 always in view
    highs = [p["hi"] if p["hi"] is not None else p["estimate"] for p in points]
    lows = [p["lo"] if p["lo"] is not None else p["estimate"] for p in points]
    at_alarms = [(a["lo"], a["hi"]) for a in alarms if a["lo"] is not None and a["hi"] is not None]
    top = _upper_range([[v * scale for v in highs], [hi * scale for _, hi in at_alarms]], 0.0)
    bottom = _upper_range([[-v * scale for v in lows], [-lo * scale for lo, _ in at_alarms]], 0.0)
    if top > 0 or bottom > 0:
        pad = 0.05 * (top + bottom)
        fig["layout"]["yaxis"]["range"] = [-max(bottom, pad), max(top, pad)]
    if alarms:  # the interval as it stood at each alarm
        est = [a["estimate"] * scale for a in alarms]
        fig["data"].append(
            {
                "x": [plot_time(a["time"]) if x == "time" else a["i"] for a in alarms],
                "y": est,
                "name": "at an alarm",
                "mode": "markers",
                "marker": {"color": "#333333", "size": 7},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [0 if a["hi"] is None else a["hi"] * scale - y for a, y in zip(alarms, est, strict=True)],
                    "arrayminus": [
                        0 if a["lo"] is None else y - a["lo"] * scale for a, y in zip(alarms, est, strict=True)
                    ],
                    "color": "#333333",
                    "thickness": 1.5,
                    "width": 5,
                },
            }
        )
    return charts.div(readable(fig, span), ident)
