"""The demo's live view: what the running service is doing, redrawn a few times a second.

Kept apart from the orchestration in ``consumers/demo.py`` so the picture is a pure function
of one :class:`LiveState`: the demo fills the state from the service's ``/metrics``, the
plant's producer and the alert topic, and this module only draws it — as a rich terminal
panel when stdout is a terminal, as plain timestamped lines otherwise (CI logs, pipes), so
the same run reads well in both.

Example:
    >>> state = LiveState(elapsed_s=12.0, duration_s=30.0, sent=900, total=9000)
    >>> status_line(state).startswith("[  12 s/30 s]")
    True
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

import streamvae as sv

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["AlertLine", "LiveState", "LiveView", "alert_line", "alert_text", "status_line"]


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One alert event as the view lists it, with what the plant says really happened.

    ``truth`` names the injected fault the alert falls in (``"bearing_wear on vibration"``),
    or is empty for an alert outside every fault: a false alert, shown as such.

    Example:
        >>> AlertLine("firing", "pump-01", 1.7e9, "critical", 5.2, 1.1, "vibration", "spike").status
        'firing'
    """

    status: str
    asset: str
    event_ts: float
    severity: str
    score: float
    threshold: float
    top_channel: str
    truth: str
    minutes: float = 0.0  # resolved: how long it was open, in event-time minutes


@dataclass(slots=True)
class LiveState:
    """Everything the view shows, each number with its unit where it is drawn.

    Example:
        >>> LiveState(elapsed_s=1.0, duration_s=10.0, sent=0, total=10).plant_ratio
        0.0
    """

    elapsed_s: float
    duration_s: float
    sent: int
    total: int
    event_ts: float | None = None  # event time of the newest reading sent
    readings_per_s: float = 0.0  # processed by the service, over the last few seconds
    lag: float = 0.0  # records between the service's position and the topic's end
    assets: int = 0
    model_version: str = ""
    retrains_promoted: int = 0
    retrains_rejected: int = 0
    warmup: float = 0.0  # 0..1
    training: float = 0.0  # 0..1
    firing_now: int = 0
    alerts_total: int = 0
    false_alerts: int = 0
    phase: str = "starting"
    broker: str = ""
    recent: deque[AlertLine] = field(default_factory=lambda: deque(maxlen=12))

    @property
    def plant_ratio(self) -> float:
        return self.sent / self.total if self.total else 0.0


def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")


def status_line(s: LiveState) -> str:
    """The one-line summary printed every few seconds when there is no terminal."""
    model = s.model_version or "none yet"
    return (
        f"[{s.elapsed_s:4.0f} s/{s.duration_s:.0f} s] {s.phase}: "
        f"plant {100 * s.plant_ratio:3.0f} % "
        f"(event time {_iso(s.event_ts)}), service {s.readings_per_s:,.0f} readings/s, lag "
        f"{s.lag:,.0f} records, warm-up {100 * s.warmup:.0f} %, first training "
        f"{100 * s.training:.0f} %, model {model}, retrains {s.retrains_promoted} promoted/"
        f"{s.retrains_rejected} rejected, alerts {s.alerts_total} ({s.firing_now} firing)"
    )


def alert_text(a: AlertLine) -> str:
    """An alert event as one plain line."""
    truth = f"injected: {a.truth}" if a.truth else "no fault injected here: a false alert"
    if a.status == "firing":
        return (
            f"  {_iso(a.event_ts)}  FIRING   {a.asset:<14} {a.severity:<8} score "
            f"{a.score:7.2f} > {a.threshold:.2f} nats  top: {a.top_channel:<12} ({truth})"
        )
    return f"  {_iso(a.event_ts)}  RESOLVED {a.asset:<14} after {a.minutes:5.0f} min of event time"


class LiveView:
    """Draws :class:`LiveState`: a rich panel on a terminal, plain lines elsewhere.

    ``update`` is cheap and may be called often; the plain mode prints a status line at most
    every ``every_s`` seconds and every alert line once.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> view = LiveView(out, rich=False)
        >>> view.start(); view.update(LiveState(1.0, 30.0, 10, 100)); view.stop()
        >>> "plant  10 %" in out.getvalue()
        True
    """

    def __init__(self, out: TextIO, rich: bool | None = None, every_s: float = 5.0) -> None:
        self.out = out
        self.rich = out.isatty() if rich is None else rich
        self.every_s = every_s
        self._live: object | None = None
        self._last_line = 0.0
        self._printed = 0  # alert lines already printed (plain mode)

    def start(self) -> None:
        if self.rich:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.out)
            live = Live(console=self._console, refresh_per_second=4, transient=False)
            live.start()
            self._live = live

    def print(self, text: str) -> None:
        """A line above the live panel (or in the plain stream)."""
        if self._live is not None:
            self._console.print(text, highlight=False, markup=False)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def note_alert(self, line: AlertLine) -> None:
        """An alert event, printed once as it arrives (plain mode: every one, in order)."""
        if self._live is None:
            self.print(alert_text(line))

    def update(self, state: LiveState) -> None:
        if self._live is not None:
            from rich.live import Live

            assert isinstance(self._live, Live)
            self._live.update(_panel(state))
            return
        now = time.monotonic()
        if now - self._last_line >= self.every_s:
            self._last_line = now
            self.print(status_line(state))

    def stop(self, state: LiveState | None = None) -> None:
        if self._live is not None:
            from rich.live import Live

            assert isinstance(self._live, Live)
            if state is not None:
                self._live.update(_panel(state))
            self._live.stop()
            self._live = None
        elif state is not None:
            self.print(status_line(state))


def _bar(ratio: float, width: int = 28) -> str:
    ratio = max(0.0, min(1.0, ratio))
    full = round(ratio * width)
    return "█" * full + "░" * (width - full) + f" {100 * ratio:3.0f} %"


def _panel(s: LiveState) -> RenderableType:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row(
        "readings/s",
        f"{s.readings_per_s:,.0f} readings/s",
        "lag",
        f"{s.lag:,.0f} records",
    )
    facts.add_row(
        "assets",
        f"{s.assets}",
        "event time",
        _iso(s.event_ts) + " UTC",
    )
    facts.add_row(
        "model",
        s.model_version or "none yet (warming up)",
        "retrains",
        f"{s.retrains_promoted} promoted, {s.retrains_rejected} rejected",
    )
    facts.add_row(
        "alerts",
        f"{s.alerts_total} events, {s.firing_now} firing now",
        "false alerts",
        f"{s.false_alerts}",
    )
    if s.broker:
        facts.add_row("broker", s.broker, "", "")
    bars = Table.grid(padding=(0, 2))
    bars.add_column(style="bold")
    bars.add_column()
    bars.add_row("plant", _bar(s.plant_ratio) + f"  ({s.sent:,}/{s.total:,} readings sent)")
    bars.add_row("warm-up", _bar(s.warmup) + "  (normal data collected for the first model)")
    bars.add_row("training", _bar(s.training) + "  (epochs of the first model)")

    alerts = Table(expand=True, show_edge=False, pad_edge=False)
    for name in ("event time (UTC)", "alert", "asset", "score", "top channel"):
        alerts.add_column(name, no_wrap=True)
    alerts.add_column("what was injected", ratio=1)
    for a in reversed(s.recent):
        style = "red" if a.status == "firing" else "green"
        if a.status == "firing":
            score = f"{a.score:.2f} > {a.threshold:.2f} nats"
        else:
            score = f"open {a.minutes:.0f} min"
        truth = Text(a.truth or "nothing: a false alert", style="" if a.truth else "yellow")
        status = f"FIRING {a.severity}" if a.status == "firing" else "RESOLVED"
        alerts.add_row(
            _iso(a.event_ts),
            Text(status, style=style),
            a.asset,
            score,
            a.top_channel if a.status == "firing" else "",
            truth,
        )
    title = f"streamvae demo — {s.phase} — {s.elapsed_s:.0f} s of {s.duration_s:.0f} s"
    return Panel(Group(facts, Text(""), bars, Text(""), alerts), title=title)


def alert_line(event: sv.AlertEvent, truth: str) -> AlertLine:
    """An :class:`AlertEvent` from the alert topic as the view lists it."""
    when = event.window_end if event.status == "firing" else (event.ends_at or event.starts_at)
    minutes = ((event.ends_at or event.starts_at) - event.starts_at) / 60.0
    return AlertLine(
        event.status,
        event.asset,
        when,
        event.severity,
        event.score,
        event.threshold,
        event.top_channel or "",
        truth,
        minutes,
    )
