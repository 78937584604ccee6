"""The demo's report: one self-contained HTML page saying what the detector found.

``write_report`` scores the run's alerts against the fault labels
(:mod:`streamvae.evaluation`) and writes ``index.html`` with

- a headline: faults detected, false alerts and their rate per scored asset-hour, throughput;
- a table of the faults (detected or missed, time to detect, which channel the alert named)
  and one of the false alerts;
- the run's facts, as the caller words them;
- per faulted asset (and one healthy asset for comparison) a figure: every channel as a small
  panel, the faulted one highlighted, the fault's span shaded on all of them, and the score
  against the threshold below with the alert episodes, threshold crossings and model swaps.

The figures are PNG files beside the page and are also embedded in it as data URIs, so the
page alone can be mailed or archived: it needs no network and no JavaScript. Plots use
matplotlib's Agg canvas directly (no pyplot, no global backend switch), so a report can be
written from any thread of a running service.

Example:
    >>> import tempfile
    >>> from streamvae import Reading
    >>> readings = [Reading("pump-1", 300.0 * i, {"flow": 1.0 + (i == 50)}) for i in range(100)]
    >>> fault = FaultSpan("pump-1", "spike", "flow", 15000.0, 15300.0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     page = write_report(tmp, readings=readings, faults=[fault],
    ...                         facts={"readings": "100"})
    ...     "missed" in page.read_text()
    True
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streamvae.evaluation import (
    AlertSpan,
    EventSummary,
    FaultOutcome,
    FaultSpan,
    alert_spans,
    faults_from_labels,
    match_alerts,
    scored_asset_hours,
)
from streamvae.types import Reading

__all__ = ["DEFAULT_UNITS", "write_report"]

# Units of streamvae.testing.SyntheticPlant's channels, the fallback when the caller gives
# none; units that differ by asset (a motor's flow is not a pump's) come in ``asset_units``.
DEFAULT_UNITS: Mapping[str, str] = {
    "flow": "m³/h",
    "pressure": "bar",
    "temperature": "°C",
    "bearing_temp": "°C",
    "vibration": "mm/s",
    "current": "A",
    "speed": "rpm",
    "power": "kW",
}
RAW_UNITS = "raw units"
DEFAULT_WINDOW_STEPS = 32  # the Detector's default window: the default tolerance is one span

# Colours: faults are orange (the truth), alerts purple (what the detector said), the score
# near-black, the threshold teal; chosen to stay distinct for the common colour blindnesses.
C_SIGNAL = "#5b7083"
C_FAULTED = "#d35400"
C_FAULT_SPAN = "#f5b041"
C_GRACE = "#fbe3c0"
C_SCORE = "#1b1b1b"
C_THRESHOLD = "#138d75"
C_ABOVE = "#e6194b"
C_ALERT = {"warning": "#b38cd9", "critical": "#6a1b9a"}
C_RAISED = "#6a1b9a"
C_MODEL = "#7f8c8d"
C_UNSCORED = "#eeeeee"

FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------- formatting


def _utc(ts: float, *, seconds: bool = False) -> str:
    when = datetime.fromtimestamp(ts, UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    """A duration with its unit, in the largest unit that keeps it readable."""
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 120:
        return f"{sign}{s:.0f} s"
    if s < 2 * 3600:
        return f"{sign}{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{sign}{s / 3600:.1f} h"
    return f"{sign}{s / 86400:.1f} d"


def _number(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _safe_name(asset: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", asset).strip("._") or "asset"


# ---------------------------------------------------------------------------- inputs


@dataclass
class _Signals:
    """One asset's readings as arrays, sorted by event time, per channel."""

    ts: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, r: Reading) -> None:
        for channel, value in r.values.items():
            self.ts.setdefault(channel, []).append(r.ts)
            self.values.setdefault(channel, []).append(float(value))

    def arrays(self, channel: str) -> tuple[FloatArray, FloatArray]:
        t = np.asarray(self.ts[channel], dtype=np.float64)
        v = np.asarray(self.values[channel], dtype=np.float64)
        order = np.argsort(t, kind="stable")
        return t[order], v[order]

    @property
    def span(self) -> tuple[float, float] | None:
        if not self.ts:
            return None
        return min(min(t) for t in self.ts.values()), max(max(t) for t in self.ts.values())


@dataclass
class _Scores:
    """One asset's per-window scores, sorted by window end time."""

    ts: FloatArray
    score: FloatArray
    threshold: FloatArray
    anomalous: npt.NDArray[np.bool_]
    versions: list[str]

    @classmethod
    def of(cls, rows: list[Mapping[str, Any]]) -> _Scores:
        rows = sorted(rows, key=lambda r: float(r["ts"]))
        return cls(
            np.array([float(r["ts"]) for r in rows]),
            np.array([float(r["score"]) for r in rows]),
            np.array([float(r["threshold"]) for r in rows]),
            np.array([bool(r.get("anomalous", False)) for r in rows], dtype=bool),
            [str(r.get("model_version", "")) for r in rows],
        )

    def version_changes(self) -> list[tuple[float, str]]:
        """(first window end, version) wherever the model version differs from the last."""
        return [
            (float(self.ts[i]), v)
            for i, v in enumerate(self.versions)
            if i > 0 and v != self.versions[i - 1]
        ]


def _group_readings(readings: Iterable[Reading]) -> dict[str, _Signals]:
    out: dict[str, _Signals] = {}
    for r in readings:
        sig = out.get(r.asset)
        if sig is None:
            sig = out[r.asset] = _Signals()
        sig.add(r)
    return out


def _group_scores(scores: Iterable[Mapping[str, Any]]) -> dict[str, _Scores]:
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for s in scores:
        rows.setdefault(str(s["asset"]), []).append(s)
    return {asset: _Scores.of(r) for asset, r in rows.items()}


def _median_step(signals: Mapping[str, _Signals]) -> float | None:
    for sig in signals.values():
        for t in sig.ts.values():
            ts = sorted(set(t))
            gaps = [b - a for a, b in itertools.pairwise(ts)]
            if gaps:
                return float(statistics.median(gaps))
    return None


# ---------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class _View:
    asset: str
    faults: tuple[FaultOutcome, ...]
    alerts: tuple[AlertSpan, ...]
    start: float
    end: float
    healthy: bool


def _days(ts: FloatArray | float) -> Any:
    """Epoch seconds → matplotlib date numbers (days since 1970-01-01, its default epoch)."""
    return np.asarray(ts, dtype=np.float64) / 86400.0


def _figure_png(
    view: _View,
    signals: _Signals | None,
    scores: _Scores | None,
    units: Mapping[str, str],
    tolerance_s: float,
    scored_from: float | None,
) -> bytes:
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    channels = sorted(signals.ts) if signals is not None else []
    faulted = {o.fault.channel for o in view.faults}
    # The faulted channels first: the eye lands on the top panel.
    channels.sort(key=lambda c: (c not in faulted, c))
    n = len(channels)
    # Fixed margins in inches: constrained layout would double the rendering time.
    width, panel, score_panel, gap = 13.0, 0.8, 2.3, 0.14
    bottom, left, right = 0.55, 1.35, 0.2
    placed = _place_labels(view, width - left - right) if n else []
    rows = 1 + max((row for _, row, _ in placed), default=-1)
    top = 0.55 + 0.19 * rows
    height = top + bottom + n * panel + score_panel + n * gap
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    grid = {"height_ratios": [panel] * n + [score_panel]}
    axes = list(np.atleast_1d(fig.subplots(n + 1, 1, sharex=True, gridspec_kw=grid)))
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=gap / ((n * panel + score_panel) / (n + 1)),
    )
    lo, hi = view.start, view.end
    lo_d, hi_d = _days(lo), _days(hi)
    unscored_until = scored_from if scored_from is not None and scored_from > lo else None

    def x_frac(ts: float) -> float:
        return (ts - lo) / (hi - lo) if hi > lo else 0.0

    def shade(ax: Any) -> None:
        for o in view.faults:
            f = o.fault
            # A fault of one step would be a hairline: draw at least 0.4 % of the view.
            span = max(f.end_ts - f.start_ts, 0.004 * (hi - lo))
            ax.axvspan(
                _days(f.start_ts),
                _days(f.start_ts + span),
                color=C_FAULT_SPAN,
                alpha=0.35,
                lw=0,
                zorder=0,
            )
        if unscored_until is not None:
            ax.axvspan(lo_d, _days(unscored_until), color=C_UNSCORED, lw=0, zorder=-1)
        for a in view.alerts:
            if lo <= a.raised_ts <= hi:
                ax.axvline(_days(a.raised_ts), color=C_RAISED, lw=1.0, ls="--", zorder=1)

    def tidy(ax: Any) -> None:
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    for ax, channel in zip(axes[:n], channels, strict=False):
        assert signals is not None
        t, v = signals.arrays(channel)
        keep = (t >= lo) & (t <= hi)
        hot = channel in faulted
        ax.plot(
            _days(t[keep]),
            v[keep],
            lw=1.1 if hot else 0.8,
            color=C_FAULTED if hot else C_SIGNAL,
            zorder=2,
        )
        shade(ax)
        ax.set_ylabel(
            f"{channel}\n[{units.get(channel, RAW_UNITS)}]",
            rotation=0,
            ha="right",
            va="center",
            fontsize=9,
            fontweight="bold" if hot else "normal",
            color=C_FAULTED if hot else "#333333",
        )
        ax.yaxis.set_major_locator(MaxNLocator(nbins=3, min_n_ticks=2))
        tidy(ax)

    # Name each fault above the top panel, where its band starts; labels that would overlap
    # go on rows of their own (the top margin was sized for them).
    for o, row, frac in placed:
        f = o.fault
        axes[0].annotate(
            _fault_text(o),
            (frac, 1.0),
            xycoords="axes fraction",
            xytext=(0, 4 + 13 * row),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=9,
            color=C_FAULTED if o.detected else "#b71c1c",
            fontweight="bold",
        )

    ax = axes[n]
    shade(ax)
    if tolerance_s > 0:  # the interval in which an alert still counts as detecting the fault
        for o in view.faults:
            f = o.fault
            ax.axvspan(
                _days(f.end_ts),
                _days(f.end_ts + tolerance_s),
                facecolor=C_GRACE,
                edgecolor=C_FAULT_SPAN,
                hatch="///",
                lw=0,
                alpha=0.6,
                zorder=0,
            )
    linear, any_above, changes = True, False, False
    has_scores = scores is not None and scores.ts.size > 0
    if scores is not None and has_scores:
        keep = (scores.ts >= lo) & (scores.ts <= hi)
        t, s, th = _days(scores.ts[keep]), scores.score[keep], scores.threshold[keep]
        ax.plot(t, s, color=C_SCORE, lw=0.9, zorder=3)
        ax.step(t, th, where="post", color=C_THRESHOLD, lw=1.4, ls="--", zorder=4)
        above = scores.anomalous[keep]
        any_above = bool(above.any())
        ax.scatter(t[above], s[above], s=9, color=C_ABOVE, zorder=5, lw=0)
        if s.size:
            base = float(np.nanmax(np.abs(th)))
            spread = float(np.nanmax(s) - min(float(np.nanmin(s)), float(np.nanmin(th))))
            # Faults can score 100x the threshold: a log scale above 1 keeps the threshold
            # region readable next to them.
            linear = float(np.nanmax(s)) < 5 or spread <= 25 * max(base, 1e-9)
            if not linear:
                ax.set_yscale("symlog", linthresh=1.0, linscale=1.0)
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        for at, version in scores.version_changes():
            if lo <= at <= hi:
                changes = True
                ax.axvline(_days(at), color=C_MODEL, lw=0.8, zorder=2)
                # Above the panel, in the gap between panels, clear of the score line.
                ax.annotate(
                    f"model {version} from here",
                    (_days(at), 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(2, 1),
                    textcoords="offset points",
                    va="bottom",
                    fontsize=7.5,
                    color=C_MODEL,
                )
    else:
        ax.text(
            0.5,
            0.5,
            "no scores received for this asset",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#888888",
        )
        ax.set_yticks([])
    # Alert episodes as a band along the top of the score panel, raised → resolved.
    severities = set()
    for a in view.alerts:
        start = max(a.raised_ts, lo)
        end = hi if a.ended_ts is None else min(a.ended_ts, hi)
        colour = C_ALERT.get(a.severity, C_ALERT["warning"])
        severities.add(a.severity if a.severity in C_ALERT else "warning")
        ax.broken_barh(
            [(_days(start), max(_days(end) - _days(start), 1e-6))],
            (0.90, 0.08),
            transform=ax.get_xaxis_transform(),
            color=colour,
            zorder=6,
        )
        text = f"alert raised {datetime.fromtimestamp(a.raised_ts, UTC):%b %d %H:%M}"
        if a.top_channel:
            text += f", top channel: {a.top_channel}"
        if a.ended_ts is None:
            text += " (still open at the end)"
        elif a.duration_s is not None:
            text += f", lasted {_duration(a.duration_s)}"
        right_side = x_frac(start) > 0.6
        ax.annotate(
            text,
            (_days(end if right_side else start), 0.88),
            xycoords=("data", "axes fraction"),
            xytext=(-3 if right_side else 3, -1),
            textcoords="offset points",
            va="top",
            ha="right" if right_side else "left",
            fontsize=8,
            color=C_RAISED,
            zorder=7,
            bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1},
        )
    label = "score\n[nats/value]" + ("" if linear else "\n(log scale\nabove 1)")
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if has_scores:
        ax.set_ylim(top=_headroom(ax))
    tidy(ax)

    ax.set_xlim(lo_d, hi_d)
    # matplotlib.dates is not typed: the two calls are checked by the report's tests.
    locator = mdates.AutoDateLocator(minticks=5, maxticks=12, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
            locator,
            tz=UTC,
            formats=["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S.%f"],
            zero_formats=["", "%Y", "%b %d", "%b %d", "%H:%M", "%H:%M"],
            show_offset=False,
        )
    )
    first, last = datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
    ax.set_xlabel(f"event time (UTC), {first:%Y %b %d %H:%M} to {last:%b %d %H:%M}", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)

    # One legend for the whole figure, above the panels, naming only the marks it has.
    handles: list[Any] = [Line2D([], [], color=C_SIGNAL, lw=1, label="signal")]
    if view.faults:
        handles += [
            Line2D([], [], color=C_FAULTED, lw=1.3, label="faulted channel"),
            Patch(color=C_FAULT_SPAN, alpha=0.35, label="fault (labelled span)"),
        ]
        if tolerance_s > 0:
            grace = f"{_duration(tolerance_s)} after the fault: an alert still counts"
            handles.append(
                Patch(facecolor=C_GRACE, edgecolor=C_FAULT_SPAN, hatch="///", label=grace)
            )
    if has_scores:
        handles += [
            Line2D([], [], color=C_SCORE, lw=1, label="score per window"),
            Line2D([], [], color=C_THRESHOLD, lw=1.4, ls="--", label="threshold"),
        ]
    if any_above:
        handles.append(
            Line2D([], [], color=C_ABOVE, marker="o", ls="", ms=4, label="window over threshold")
        )
    for severity in ("warning", "critical"):
        if severity in severities:
            handles.append(Patch(color=C_ALERT[severity], label=f"alert open ({severity})"))
    if view.alerts:
        handles.append(Line2D([], [], color=C_RAISED, lw=1, ls="--", label="alert raised"))
    if changes:
        handles.append(Line2D([], [], color=C_MODEL, lw=0.8, label="model swap"))
    if unscored_until is not None:
        handles.append(Patch(color=C_UNSCORED, label="warm-up: not scored"))
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(len(handles), 5),
        fontsize=8.5,
        frameon=False,
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _fault_text(o: FaultOutcome) -> str:
    verdict = f"detected after {_duration(o.time_to_detect_s or 0.0)}" if o.detected else "missed"
    return f"fault: {o.fault.kind} on {o.fault.channel} — {verdict}"


def _place_labels(view: _View, axes_width_in: float) -> list[tuple[FaultOutcome, int, float]]:
    """(fault, row, x as a fraction of the axes) for each fault's label: at the start of its
    band, moved left to stay inside the axes, on the first row where it overlaps nothing."""
    span = view.end - view.start
    ends: list[float] = []  # per row, where its last label ends (axes fraction)
    out = []
    for o in sorted(view.faults, key=lambda o: o.fault.start_ts):
        wide = len(_fault_text(o)) * 0.078 / axes_width_in  # 9 pt bold ≈ 0.078 in a char
        frac = (o.fault.start_ts - view.start) / span if span > 0 else 0.0
        frac = min(max(frac, 0.0), max(0.0, 1.0 - wide))
        row = next((i for i, end in enumerate(ends) if end + 0.01 < frac), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = frac + wide
        out.append((o, row, frac))
    return out


def _headroom(ax: Any) -> float:
    """The top of the y axis that leaves the upper ~30 % of the panel (measured on the axis'
    own scale, linear or log) to the alert band and its labels, clear of the data."""
    lo, hi = ax.get_ylim()
    scale = ax.yaxis.get_transform()
    a, b = scale.transform([lo, hi])
    return float(scale.inverted().transform([b + 0.45 * (b - a)])[0])


def _views(
    summary: EventSummary,
    alerts: Sequence[AlertSpan],
    signals: Mapping[str, _Signals],
    scores: Mapping[str, _Scores],
    tolerance_s: float,
    healthy: int,
) -> list[_View]:
    by_asset: dict[str, list[FaultOutcome]] = {}
    for o in summary.outcomes:
        by_asset.setdefault(o.fault.asset, []).append(o)
    views = []
    for asset in sorted(by_asset):
        outcomes = by_asset[asset]
        span = signals[asset].span if asset in signals else None
        first = min(o.fault.start_ts for o in outcomes)
        last = max(o.fault.end_ts for o in outcomes) + tolerance_s
        for o in outcomes:
            if o.alert is not None and o.alert.ended_ts is not None:
                last = max(last, o.alert.ended_ts)
        # Context either side: enough to see normal behaviour and the score settle back.
        pad = max(0.5 * (last - first), 6 * 3600.0)
        start, end = first - pad, last + pad
        if span is not None:
            start, end = max(start, span[0]), min(end, span[1])
        shown = tuple(
            a
            for a in alerts
            if a.asset == asset
            and a.raised_ts <= end
            and (a.ended_ts is None or a.ended_ts >= start)
        )
        views.append(_View(asset, tuple(outcomes), shown, start, end, healthy=False))
    candidates = [a for a in sorted(signals) if a not in by_asset]
    count = {a: sum(x.asset == a for x in alerts) for a in candidates}
    # The quietest healthy assets with scores: what normal looks like to the detector.
    candidates.sort(key=lambda a: (a not in scores, count[a], a))
    for asset in candidates[:healthy]:
        span = signals[asset].span
        if span is None:
            continue
        shown = tuple(a for a in alerts if a.asset == asset)
        views.append(_View(asset, (), shown, span[0], span[1], healthy=True))
    return views


# ---------------------------------------------------------------------------- page


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b;
       margin: 0 auto; padding: 24px 32px; max-width: 1340px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; }
h3 { font-size: 16px; margin: 24px 0 4px; }
.sub { color: #555; margin: 0 0 16px; }
.cards { display: flex; gap: 14px; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 10px 16px; min-width: 190px; }
.card .big { font-size: 28px; font-weight: 650; } .card .what { color: #555; font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0; font-size: 14px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 5px 12px 5px 0; text-align: left;
         vertical-align: top; }
th { font-weight: 600; color: #444; border-bottom: 2px solid #ccc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1e7d32; font-weight: 600; } .miss { color: #c62828; font-weight: 600; }
.note { color: #666; font-size: 13px; }
figure { margin: 8px 0 28px; } figure img { width: 100%; max-width: 1300px; }
figcaption { color: #444; font-size: 14px; margin-bottom: 4px; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 18px; }
dl.facts dt { color: #555; } dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
"""


def _fault_rows(summary: EventSummary, kinds: Mapping[str, str]) -> str:
    rows = []
    for o in summary.outcomes:
        f = o.fault
        if o.alert is not None:
            result = '<span class="ok">detected</span>'
            if o.alerts > 1:
                result += f' <span class="note">({o.alerts} alerts)</span>'
            ttd = _e(_duration(o.time_to_detect_s or 0.0))
            top = _e(o.top_channel or "—")
            top += (
                ' <span class="ok">✓ the faulted channel</span>'
                if o.names_channel
                else ' <span class="note">(not the faulted channel)</span>'
            )
            severity = _e(o.alert.severity)
        else:
            result = '<span class="miss">missed</span>'
            if o.open_alert is not None:
                result += (
                    ' <span class="note">(an alert on this asset was already open, raised '
                    f"{_e(_utc(o.open_alert.raised_ts))})</span>"
                )
            ttd, top, severity = "—", "—", "—"
        rows.append(
            f"<tr><td>{_e(f.asset)}</td><td>{_e(kinds.get(f.asset, '—'))}</td><td>{_e(f.kind)}</td>"
            f"<td>{_e(f.channel)}</td><td>{_e(_utc(f.start_ts))}</td>"
            f'<td class="num">{_e(_duration(f.duration_s))}</td><td>{result}</td>'
            f'<td class="num">{ttd}</td><td>{top}</td><td>{severity}</td></tr>'
        )
    head = (
        "<tr><th>asset</th><th>asset kind</th><th>fault</th><th>faulted channel</th>"
        "<th>fault start</th><th>duration</th><th>result</th><th>time to detect</th>"
        "<th>alert's top channel</th><th>severity</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>" if rows else "<p>No faults in the labels.</p>"


def _false_rows(summary: EventSummary) -> str:
    if not summary.false_alerts:
        return "<p>No false alerts.</p>"
    rows = []
    for a in summary.false_alerts:
        lasted = "still open at the end" if a.duration_s is None else _duration(a.duration_s)
        peak = a.peak_score if a.peak_score is not None else a.score
        score = "—" if peak is None else _number(peak)
        threshold = "—" if a.threshold is None else _number(a.threshold)
        rows.append(
            f"<tr><td>{_e(a.asset)}</td><td>{_e(_utc(a.raised_ts))}</td>"
            f'<td class="num">{_e(lasted)}</td><td>{_e(a.top_channel or "—")}</td>'
            f'<td>{_e(a.severity)}</td><td class="num">{_e(score)}</td>'
            f'<td class="num">{_e(threshold)}</td></tr>'
        )
    head = (
        "<tr><th>asset</th><th>raised</th><th>lasted</th><th>top channel</th><th>severity</th>"
        "<th>peak score [nats/value]</th><th>threshold [nats/value]</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _cards(summary: EventSummary, facts: Mapping[str, str]) -> str:
    """The headline: one card per number, each with what it counts (a line per clause)."""
    cards: list[tuple[str, list[str]]] = []
    rate = summary.detection_rate
    cards.append(
        (
            f"{summary.detected} / {summary.faults}",
            ["faults detected" + ("" if rate is None else f" ({rate:.0%})")],
        )
    )
    per_hour = summary.false_alerts_per_asset_hour
    lines = ["false alerts"]
    if per_hour is None:
        lines.append("rate unknown: no scored time")
    else:
        lines.append(f"{per_hour:.2g} per asset-hour")
        if per_hour > 0:
            lines.append(f"one every {_duration(3600 / per_hour)} per asset")
        lines.append(f"over {summary.asset_hours:,.0f} scored asset-hours")
    cards.append((str(len(summary.false_alerts)), lines))
    ttd = summary.median_time_to_detect_s
    if ttd is not None:
        cards.append((_duration(ttd), ["median time to detect", "fault start → alert raised"]))
    named = summary.channel_named_rate
    if named is not None:
        cards.append((f"{named:.0%}", ["of detections named", "the faulted channel first"]))
    for label, value in facts.items():
        if "throughput" in label.lower():
            cards.append((value, [label]))
    return "".join(
        f'<div class="card"><div class="big">{_e(big)}</div>'
        f'<div class="what">{"<br>".join(_e(x) for x in what)}</div></div>'
        for big, what in cards
    )


def _figure_caption(view: _View, kind: str | None) -> str:
    span = f"{_utc(view.start)} – {_utc(view.end)}"
    name = f"<b>{_e(view.asset)}</b>" + (f" ({_e(kind)})" if kind else "")
    if view.healthy:
        return (
            f"{name} — no fault injected (for comparison): what normal "
            f"looks like to the detector. Whole run, {_e(span)}."
        )
    parts = []
    for o in view.faults:
        f = o.fault
        what = f"detected after {_duration(o.time_to_detect_s or 0.0)}" if o.detected else "missed"
        parts.append(
            f"{_e(f.kind)} on <b>{_e(f.channel)}</b> from {_e(_utc(f.start_ts))} for "
            f"{_e(_duration(f.duration_s))} — {_e(what)}"
        )
    return f"{name}: {'; '.join(parts)}. Showing {_e(span)}."


def write_report(
    out_dir: str | Path,
    *,
    readings: Iterable[Reading],
    labels_path: str | Path | None = None,
    faults: Iterable[FaultSpan] | None = None,
    alert_documents: Iterable[Mapping[str, Any] | str | bytes] = (),
    scores: Iterable[Mapping[str, Any]] = (),
    facts: Mapping[str, str] | None = None,
    tolerance_s: float | None = None,
    asset_hours: float | None = None,
    units: Mapping[str, str] | None = None,
    asset_units: Mapping[str, Mapping[str, str]] | None = None,
    asset_kinds: Mapping[str, str] | None = None,
    healthy_assets: int = 1,
    title: str = "streamvae demo report",
) -> Path:
    """Write ``out_dir/index.html`` (and the figures as ``asset-<name>.png`` beside it) and
    return the page's path.

    The faults come from ``labels_path`` (a labels JSON as ``streamvae simulate`` writes it;
    unknown keys are ignored) or ``faults``. ``alert_documents`` are the alert topic's
    CloudEvents (parsed or raw JSON; duplicates are fine); ``scores`` the per-window score
    dicts (``asset``, ``ts`` = window end, ``score``, ``threshold``, ``anomalous``,
    ``model_version``, …). ``facts`` are shown as given, label → value; a fact whose label
    contains "throughput" also goes into the headline. ``tolerance_s`` is how long after a
    fault's end an alert still counts as detecting it (default: 32 reading periods, one
    default window span); ``asset_hours`` the scored time for the false-alert rate (default:
    measured from ``scores``; unknown without them). Units of a channel are looked up in
    ``asset_units[asset]`` (asset → channel → unit, for fleets whose kinds measure a channel
    differently), then ``units`` (channel → unit), then :data:`DEFAULT_UNITS`, else shown as
    "raw units". ``asset_kinds`` (asset → kind) names kinds the labels do not (a healthy
    asset's). ``healthy_assets`` healthy assets get a figure for comparison.
    """
    if (labels_path is None) == (faults is None):
        raise ValueError("give exactly one of labels_path and faults")
    if labels_path is not None:
        fault_list = faults_from_labels(json.loads(Path(labels_path).read_text()))
    else:
        assert faults is not None
        fault_list = list(faults)
    facts = dict(facts or {})
    unit_map = {**DEFAULT_UNITS, **(units or {})}
    kinds = {f.asset: f.asset_kind for f in fault_list if f.asset_kind}
    kinds.update(asset_kinds or {})
    signals = _group_readings(readings)
    score_rows = list(scores)
    by_asset = _group_scores(score_rows)
    alerts = alert_spans(alert_documents)
    if tolerance_s is None:
        step = _median_step(signals)
        tolerance_s = 0.0 if step is None else DEFAULT_WINDOW_STEPS * step
    if asset_hours is None and score_rows:
        asset_hours = scored_asset_hours((str(s["asset"]), float(s["ts"])) for s in score_rows)
    summary = match_alerts(fault_list, alerts, tolerance_s=tolerance_s, asset_hours=asset_hours)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    used: set[str] = set()
    for view in _views(summary, alerts, signals, by_asset, tolerance_s, healthy_assets):
        scores_of = by_asset.get(view.asset)
        scored_from = (
            float(scores_of.ts[0]) if scores_of is not None and scores_of.ts.size else None
        )
        png = _figure_png(
            view,
            signals.get(view.asset),
            scores_of,
            {**unit_map, **(asset_units or {}).get(view.asset, {})},
            tolerance_s,
            scored_from,
        )
        name = f"asset-{_safe_name(view.asset)}"
        while name in used:
            name += "_"
        used.add(name)
        (out / f"{name}.png").write_bytes(png)
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        figures.append(
            f"<figure><figcaption>{_figure_caption(view, kinds.get(view.asset))}</figcaption>"
            f'<img alt="signals and score of {_e(view.asset)}" src="{uri}"></figure>'
        )

    fact_rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items())
    rule = (
        "A fault counts as <b>detected</b> when an alert on the same asset is raised between "
        f"the fault's start and {_e(_duration(tolerance_s))} after its end (windows end after "
        "the data they cover). <b>Time to detect</b> runs from the fault's start to the end "
        "of the window that made the alert fire. An alert already open when a fault starts "
        "does not count for it. Any alert raised outside every fault's interval on its asset "
        "is a <b>false alert</b>; the rate divides by the asset-hours the detector scored."
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="sub">Injected faults against the alerts the detector raised; all times are event
times of the readings (UTC).</p>
<div class="cards">{_cards(summary, facts)}</div>
<h2>Faults</h2>
{_fault_rows(summary, kinds)}
<p class="note">{rule}</p>
<h2>False alerts</h2>
{_false_rows(summary)}
<h2>Run facts</h2>
{f'<dl class="facts">{fact_rows}</dl>' if fact_rows else "<p>None given.</p>"}
<h2>Signals and scores</h2>
<p class="note">One figure per faulted asset and one healthy asset. Each small panel is a
channel (the faulted one first, in orange); the orange band marks the labelled fault on every
panel. The bottom panel is the detector's score per window against its threshold: red dots
are windows judged anomalous, the purple band along its top is an open alert (raised at the
dashed purple line), grey vertical lines are model swaps.</p>
{"".join(figures) if figures else "<p>No readings to plot.</p>"}
</body></html>
"""
    target = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target
