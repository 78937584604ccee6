"""Event-level evaluation: did the alerts find the labelled faults, and how many were false?

A per-window ROC curve says how well scores separate normal from faulty windows; an operator
cares about something else: *was I told about the fault, how soon, about the right sensor, and
how often was I woken for nothing?* This module answers that from the two things a run leaves
behind, in event time (epoch seconds, UTC): the fault labels (:class:`FaultSpan`) and the alert
documents from the alert topic (CloudEvents JSON, ``docs/alert.schema.json``), paired into
episodes by :func:`alert_spans`. :func:`match_alerts` then scores them.

The rules, exactly (``tolerance_s`` = τ):

- An episode is *raised* at the end time of the window that made it fire: ``data.details.window
  .end`` of its ``firing`` event. That is the first moment the operator could know, so
  time-to-detect is measured to it. ``data.starts_at`` (the end of the *first* window of the
  triggering run) is earlier by up to the k-window run and would flatter the detector.
- A fault ``[start_ts, end_ts)`` on an asset is *detected* when an alert on the same asset is
  raised in ``[start_ts, end_ts + τ]``. τ exists because a window ends after the data it
  covers: windows containing the fault's last steps end up to one window span after
  ``end_ts``, plus the run of ``k`` exceedances that fires. Set τ to about window span plus
  ``k`` strides. The detecting alert is the earliest one raised in that interval;
  ``time_to_detect_s`` = its raised time − ``start_ts`` (≥ 0).
- An alert raised in the intervals of two faults of its asset (only possible when τ makes them
  overlap) belongs to the one that started last: the later fault is the likelier cause, and an
  alert never counts for two faults.
- An alert *already open* when a fault starts (raised before ``start_ts``, not resolved by it)
  does **not** detect the fault. It was raised by data from before the fault (windows are
  causal), so it is not evidence that the detector saw this fault; and since an asset has at
  most one open alert (one ``dedup_key``), the fault cannot raise its own until that one
  resolves. Such a fault is detected only if a later alert is raised within its interval;
  :attr:`FaultOutcome.open_alert` names the open alert so a report can say why it was missed.
- A *false alert* is an alert raised inside no fault's interval on its asset — including the
  open alert of the previous rule, unless it was itself raised within an earlier fault's
  interval. Further alerts raised inside an interval after the detecting one are *repeats*
  (counted per fault in :attr:`FaultOutcome.alerts`), not false: the fault is real.
- The false-alert rate is false alerts per scored asset-hour: the caller gives the asset-hours
  the detector actually judged (:func:`scored_asset_hours` computes them from per-window score
  times). Warm-up time, in which nothing can alert, would dilute the rate. Fault time stays in
  the denominator: it is short next to healthy time, and a rate over "all judged time" is the
  one an operator can multiply by fleet size.
- Whether the alert names the right sensor uses the firing event's top channel (largest share
  of the excess score over the triggering run): what the operator reads when paged.

Example:
    >>> fault = FaultSpan("pump-1", "stuck", "temperature", 1000.0, 2000.0)
    >>> hit = AlertSpan("pump-1", 1600.0, 1300.0, 2600.0, "temperature", "warning")
    >>> noise = AlertSpan("pump-2", 500.0, 400.0, 700.0, "flow", "warning")
    >>> s = match_alerts([fault], [hit, noise], tolerance_s=300.0, asset_hours=10.0)
    >>> s.detected, s.outcomes[0].time_to_detect_s, len(s.false_alerts)
    (1, 600.0, 1)
    >>> s.false_alerts_per_asset_hour
    0.1
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streamvae.errors import InputError
from streamvae.types import AlertEvent

__all__ = [
    "AlertSpan",
    "EventSummary",
    "FaultOutcome",
    "FaultSpan",
    "alert_spans",
    "faults_from_labels",
    "match_alerts",
    "scored_asset_hours",
]


@dataclass(frozen=True, slots=True)
class FaultSpan:
    """One labelled fault: ``channel`` of ``asset`` misbehaves over ``[start_ts, end_ts)``.

    Times are event times in epoch seconds; ``end_ts`` is exclusive (the first healthy step).
    ``asset_kind`` (e.g. ``"pump"``) is carried for reports when the labels know it.

    Example:
        >>> f = FaultSpan("pump-3", "level_shift", "pressure", 3600.0, 7200.0)
        >>> f.duration_s
        3600.0
    """

    asset: str
    kind: str
    channel: str
    start_ts: float
    end_ts: float
    asset_kind: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_ts) and math.isfinite(self.end_ts)):
            raise InputError(f"FaultSpan({self.asset!r}): start_ts and end_ts must be finite")
        if self.end_ts < self.start_ts:
            raise InputError(
                f"FaultSpan({self.asset!r}): end_ts {self.end_ts} is before start_ts "
                f"{self.start_ts}"
            )

    @property
    def duration_s(self) -> float:
        """Length of the fault in seconds."""
        return self.end_ts - self.start_ts

    @classmethod
    def from_mapping(cls, item: Mapping[str, Any]) -> FaultSpan:
        """A fault from one entry of a labels file's ``faults`` list; unknown keys are
        ignored (label files grow fields, e.g. a magnitude, that evaluation does not need)."""
        try:
            kind = item.get("asset_kind")
            return cls(
                asset=str(item["asset"]),
                kind=str(item["kind"]),
                channel=str(item["channel"]),
                start_ts=float(item["start_ts"]),
                end_ts=float(item["end_ts"]),
                asset_kind=None if kind is None else str(kind),
            )
        except KeyError as err:
            raise InputError(f"fault label without {err.args[0]!r}: {dict(item)}") from None
        except (TypeError, ValueError) as err:
            raise InputError(f"fault label with a bad value ({err}): {dict(item)}") from None


def faults_from_labels(labels: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[FaultSpan]:
    """The faults of a labels document (``{"faults": [...], ...}``, as ``streamvae simulate``
    writes it) or of a bare list of fault entries, sorted by start time then asset.

    Example:
        >>> doc = {"about": {}, "faults": [{"asset": "p", "kind": "spike", "channel": "flow",
        ...        "start_ts": 60.0, "end_ts": 120.0, "magnitude": 4.0}]}
        >>> faults_from_labels(doc)[0].kind
        'spike'
    """
    items: Iterable[Mapping[str, Any]]
    if isinstance(labels, Mapping):
        if "faults" not in labels:
            raise InputError("a labels document needs a 'faults' list")
        items = labels["faults"]
    else:
        items = labels
    out = [FaultSpan.from_mapping(x) for x in items]
    return sorted(out, key=lambda f: (f.start_ts, f.asset))


@dataclass(frozen=True, slots=True)
class AlertSpan:
    """One alert episode of one asset, from its ``firing`` and ``resolved`` events.

    ``raised_ts`` is when the operator was told: the end of the window that made the alert
    fire (the firing event's ``details.window.end``). ``starts_at_ts`` is the end of the first
    window of the triggering run (the alert's ``starts_at``, never later than ``raised_ts``).
    ``ended_ts`` is the resolved event's ``ends_at``, or None while the episode is still open
    (or its resolved event was not seen). ``top_channel`` is the firing event's top channel;
    ``severity`` is the resolved event's (computed from the episode's peak) when there is
    one, else the firing event's; ``score`` is the firing window's score, ``peak_score`` the
    episode's peak (from the resolved event, None while open), both in nats per value, with
    the ``threshold`` the firing score was compared to. When only the resolved event was seen
    (``firing_seen`` False), ``raised_ts`` falls back to ``starts_at_ts`` — a lower bound —
    and ``top_channel`` to the resolved event's (over the whole episode).

    Example:
        >>> a = AlertSpan("pump-1", 1600.0, 1300.0, None, "vibration", "critical", 9.5)
        >>> a.is_open, a.duration_s
        (True, None)
    """

    asset: str
    raised_ts: float
    starts_at_ts: float
    ended_ts: float | None
    top_channel: str | None
    severity: str
    score: float | None = None
    peak_score: float | None = None
    threshold: float | None = None
    model_version: str | None = None
    reason: str | None = None
    dedup_key: str = ""
    firing_seen: bool = True

    @property
    def is_open(self) -> bool:
        """No resolved event seen: the episode was still firing when the run ended."""
        return self.ended_ts is None

    @property
    def duration_s(self) -> float | None:
        """From raised to resolved, in seconds; None while open."""
        return None if self.ended_ts is None else self.ended_ts - self.raised_ts

    def open_at(self, ts: float) -> bool:
        """Whether the alert had been raised and not yet resolved at event time ``ts``."""
        return self.raised_ts < ts and (self.ended_ts is None or self.ended_ts > ts)


def _document(item: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    try:
        doc = json.loads(item)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"an alert document is not JSON ({err})") from None
    if not isinstance(doc, Mapping):
        raise InputError(f"an alert document is a JSON {type(doc).__name__}, not an object")
    return doc


def alert_spans(documents: Iterable[Mapping[str, Any] | str | bytes]) -> list[AlertSpan]:
    """Pair the alert topic's documents into episodes, sorted by raised time then asset.

    The pair of an episode shares ``dedup_key`` and ``starts_at`` (the event ``id`` hashes
    both with the status). Delivery is at-least-once, so the same event may come twice: the
    first copy of an ``id`` counts, later ones are ignored. An episode whose resolved event
    never came (the run stopped while it fired) is open (``ended_ts`` None). Documents may be
    parsed JSON objects or the raw JSON text/bytes of the topic's values; each is checked by
    :meth:`AlertEvent.from_cloudevent`, and a malformed or altered one raises
    :class:`~streamvae.errors.InputError` rather than silently changing the counts.

    Example:
        >>> fire = AlertEvent("firing", "s", "pump-1", "warning", "x", 60.0, None, 5.0, 2.0,
        ...                   {"flow": 1.0}, 30.0, 90.0, "v1")
        >>> done = AlertEvent("resolved", "s", "pump-1", "critical", "x", 60.0, 300.0, 9.0,
        ...                   2.0, {"flow": 1.0}, 100.0, 150.0, "v1", reason="recovered")
        >>> [(a.raised_ts, a.ended_ts, a.severity, a.peak_score)
        ...  for a in alert_spans([fire.to_json(), done.to_json(), fire.to_json()])]
        [(90.0, 300.0, 'critical', 9.0)]
    """
    firing: dict[tuple[str, float], AlertEvent] = {}
    resolved: dict[tuple[str, float], AlertEvent] = {}
    for item in documents:
        event = AlertEvent.from_cloudevent(_document(item))
        key = (event.dedup_key, event.starts_at)
        target = firing if event.status == "firing" else resolved
        target.setdefault(key, event)
    spans = []
    for key in firing.keys() | resolved.keys():
        fire, done = firing.get(key), resolved.get(key)
        first = fire if fire is not None else done
        assert first is not None
        spans.append(
            AlertSpan(
                asset=first.asset,
                raised_ts=first.starts_at if fire is None else fire.window_end,
                starts_at_ts=first.starts_at,
                ended_ts=None if done is None else done.ends_at,
                top_channel=first.top_channel,
                severity=(done if done is not None else first).severity,
                score=None if fire is None else fire.score,
                peak_score=None if done is None else done.score,
                threshold=first.threshold,
                model_version=first.model_version,
                reason=None if done is None else done.reason,
                dedup_key=first.dedup_key,
                firing_seen=fire is not None,
            )
        )
    return sorted(spans, key=lambda a: (a.raised_ts, a.asset, a.dedup_key))


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    """What happened to one fault: the alert that detected it (the earliest raised within
    ``[start_ts, end_ts + tolerance]`` on its asset), how many alerts were raised in that
    interval (``alerts``, the detecting one included), and ``open_alert``, an alert already
    open on the asset when the fault started (which does not count as detecting it; see the
    module docstring).

    Example:
        >>> f = FaultSpan("pump-1", "spike", "vibration", 100.0, 400.0)
        >>> o = FaultOutcome(f, AlertSpan("pump-1", 460.0, 400.0, 900.0, "flow", "warning"), 1)
        >>> o.detected, o.time_to_detect_s, o.top_channel, o.names_channel
        (True, 360.0, 'flow', False)
    """

    fault: FaultSpan
    alert: AlertSpan | None
    alerts: int = 0
    open_alert: AlertSpan | None = None

    @property
    def detected(self) -> bool:
        return self.alert is not None

    @property
    def time_to_detect_s(self) -> float | None:
        """Seconds from the fault's start to the detecting alert's raised time."""
        return None if self.alert is None else self.alert.raised_ts - self.fault.start_ts

    @property
    def top_channel(self) -> str | None:
        """The detecting alert's top channel (what the page named)."""
        return None if self.alert is None else self.alert.top_channel

    @property
    def names_channel(self) -> bool | None:
        """Whether the detecting alert's top channel is the faulted channel; None if missed."""
        return None if self.alert is None else self.alert.top_channel == self.fault.channel


@dataclass(frozen=True, slots=True)
class EventSummary:
    """The event-level score of a run: one outcome per fault (in the faults' order), the
    false alerts, and the rates derived from them.

    ``detection_rate`` and ``channel_named_rate`` are None without faults / detections
    (there is nothing to rate); ``false_alerts_per_asset_hour`` is None when the scored
    asset-hours are not known or zero.

    Example:
        >>> s = EventSummary((), (), tolerance_s=0.0, asset_hours=None)
        >>> s.detection_rate, s.false_alerts_per_asset_hour
        (None, None)
    """

    outcomes: tuple[FaultOutcome, ...]
    false_alerts: tuple[AlertSpan, ...]
    tolerance_s: float
    asset_hours: float | None

    @property
    def faults(self) -> int:
        return len(self.outcomes)

    @property
    def detected(self) -> int:
        return sum(o.detected for o in self.outcomes)

    @property
    def missed(self) -> tuple[FaultOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.detected)

    @property
    def detection_rate(self) -> float | None:
        return None if not self.outcomes else self.detected / self.faults

    @property
    def false_alerts_per_asset_hour(self) -> float | None:
        if self.asset_hours is None or self.asset_hours <= 0:
            return None
        return len(self.false_alerts) / self.asset_hours

    @property
    def times_to_detect_s(self) -> tuple[float, ...]:
        return tuple(o.time_to_detect_s for o in self.outcomes if o.time_to_detect_s is not None)

    @property
    def median_time_to_detect_s(self) -> float | None:
        ttd = self.times_to_detect_s
        return statistics.median(ttd) if ttd else None

    @property
    def channel_named_rate(self) -> float | None:
        """Share of detected faults whose alert's top channel is the faulted channel."""
        named = [o.names_channel for o in self.outcomes if o.names_channel is not None]
        return sum(named) / len(named) if named else None


def match_alerts(
    faults: Iterable[FaultSpan],
    alerts: Iterable[AlertSpan],
    *,
    tolerance_s: float,
    asset_hours: float | None = None,
) -> EventSummary:
    """Score alert episodes against labelled faults by the rules in the module docstring.

    ``tolerance_s`` (≥ 0) extends each fault's interval past its end, for windows that end
    after the fault does; ``asset_hours`` is the scored time over all assets, the denominator
    of the false-alert rate (see :func:`scored_asset_hours`).
    """
    if not (math.isfinite(tolerance_s) and tolerance_s >= 0):
        raise InputError(f"tolerance_s must be a finite number >= 0, got {tolerance_s}")
    if asset_hours is not None and not (math.isfinite(asset_hours) and asset_hours >= 0):
        raise InputError(f"asset_hours must be a finite number >= 0, got {asset_hours}")
    fault_list = list(faults)
    alert_list = sorted(alerts, key=lambda a: (a.raised_ts, a.asset, a.dedup_key))
    by_asset: dict[str, list[int]] = {}
    for i, f in enumerate(fault_list):
        by_asset.setdefault(f.asset, []).append(i)

    matched: dict[int, list[AlertSpan]] = {i: [] for i in range(len(fault_list))}
    false: list[AlertSpan] = []
    for a in alert_list:
        owners = [
            i
            for i in by_asset.get(a.asset, ())
            if fault_list[i].start_ts <= a.raised_ts <= fault_list[i].end_ts + tolerance_s
        ]
        if owners:  # the fault that started last is the likelier cause
            matched[max(owners, key=lambda i: (fault_list[i].start_ts, i))].append(a)
        else:
            false.append(a)

    outcomes = []
    for i, f in enumerate(fault_list):
        hits = matched[i]
        before = [a for a in alert_list if a.asset == f.asset and a.open_at(f.start_ts)]
        outcomes.append(
            FaultOutcome(f, hits[0] if hits else None, len(hits), before[-1] if before else None)
        )
    return EventSummary(tuple(outcomes), tuple(false), float(tolerance_s), asset_hours)


def scored_asset_hours(points: Iterable[tuple[str, float]]) -> float:
    """Asset-hours judged by the detector, from ``(asset, window end time)`` of every scored
    window: per asset, the span from its first to its last scored window plus one typical
    step (the median gap between its windows), summed over assets, in hours. Gaps inside an
    asset's span count (a sensor outage is still time the asset was watched).

    Example:
        >>> scored_asset_hours([("a", 0.0), ("a", 1800.0), ("a", 3600.0), ("b", 0.0)])
        1.5
    """
    times: dict[str, list[float]] = {}
    for asset, ts in points:
        times.setdefault(asset, []).append(float(ts))
    total = 0.0
    for ts_list in times.values():
        ts_list.sort()
        gaps = [b - a for a, b in itertools.pairwise(ts_list) if b > a]
        total += ts_list[-1] - ts_list[0] + (statistics.median(gaps) if gaps else 0.0)
    return total / 3600.0
