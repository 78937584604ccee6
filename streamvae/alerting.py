"""Decision → AlertEvent: the per-asset alert lifecycle (DESIGN §4).

One flagged window is not an incident. Per asset, the lifecycle turns the threshold's
per-window decisions into episodes with hysteresis, and every episode into exactly two events:

::

            k exceedances in the last n windows (n = k: k consecutive)
       OK ──────────────────────────────────────────────────────────► FIRING
       ▲                                                                 │
       │  cooldown_windows windows not judged            m consecutive   │
       └──────────────── COOLDOWN ◄──────────────────── normal windows ──┘
                                                        (or a regime change)

Rules, exactly:

- An *exceedance* is a window with ``anomalous=True``, ``warming_up=False`` and
  ``regime_change=False``. Every other window is *normal*, except that while an alert is
  open a window in the threshold's grace period is *not judged*: it neither extends nor
  resolves the episode. A grace period follows every recalibration (a model swap), when the
  threshold has not yet seen the new model's scores on live data; an alert open across a swap
  must not resolve just because the new threshold is still learning. While OK, a grace window
  never fires and breaks a run of consecutive exceedances.
- OK → FIRING when the current window is an exceedance and at least ``k`` of the last ``n``
  windows (the current one included) were exceedances. Those ``k`` windows are the
  *triggering run*. ``n=None`` means ``n=k``: ``k`` consecutive exceedances.
- FIRING → RESOLVED (reason ``"recovered"``) on the ``m``-th consecutive normal window, or at
  once (reason ``"regime_change"``) on a window flagged ``regime_change``: the threshold has
  accepted the new level as normal and retraining takes over. A regime change while OK clears
  the exceedances counted so far.
- After a resolution the next ``cooldown_windows`` windows of that asset are not judged at all
  (they neither fire nor count towards a later run).

What an event says:

- ``starts_at`` is the end time of the first window of the triggering run (the first moment
  the data showed the anomaly); ``ends_at`` is the end time of the window that resolved it.
- The firing event reports the score and threshold of the window that completed the
  triggering run; the resolved event reports the episode's peak score (and the threshold, the
  model version and the window bounds of that peak window).
- Contributions are the *mean* over the exceeding windows — of the triggering run for the
  firing event, of the whole episode for the resolved event — each share clamped to [0, 1],
  rounded to 4 decimals, largest first (ties by channel name). Measured on our model, the
  mean names the faulted sensor far more reliably than the single peak window.
- Severity compares score and threshold: ``ratio = score / threshold`` for a positive
  threshold, generalised to ``1 + (score - threshold) / |threshold|`` (the excess in units of
  the threshold's magnitude) because scores in nats per value can be negative. ``critical`` at
  ``ratio >= critical_ratio`` (default 2), ``warning`` below it.
- ``input`` is the Kafka offset span of the triggering run (firing) or of every window of the
  episode (resolved); null when any of those windows has no offsets or they come from more
  than one topic-partition.
- On the wire (:meth:`AlertEvent.to_json`) every time is an event time written as ISO-8601 UTC
  with exactly three fractional digits and a ``Z`` (``2026-11-23T18:04:05.000Z``); the id is
  the sha256 hex of ``dedup_key|starts_at|status`` with ``starts_at`` in that form. The schema
  is ``docs/alert.schema.json``.

Cost: a normal window of an asset with nothing pending is one dict lookup and returns an empty
list; only assets with pending exceedances, an open alert or a cooldown keep any state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, KeysView, Mapping
from dataclasses import dataclass, fields
from typing import Any

from streamvae.config import _DictMixin, _finite_float, _positive_int, _require
from streamvae.errors import ConfigError
from streamvae.types import AlertEvent, OffsetSpan, ScoredWindow

__all__ = ["AlertConfig", "Alerter", "AssetAlertState"]

SNAPSHOT_FORMAT = 1
SUMMARY_MAX_CHARS = 1024
CONTRIBUTION_DECIMALS = 4
_SITE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HUGE = 1.0e308


@dataclass(frozen=True, slots=True)
class AlertConfig(_DictMixin):
    """When an asset's alert fires, resolves and may fire again, and how it is labelled.

    ``k`` exceedances among the last ``n`` windows fire (``n=None``: ``k`` consecutive);
    ``m`` consecutive normal windows resolve; ``cooldown_windows`` windows after a resolution
    are not judged. The defaults (16 and 16) are half of a 32-step window at stride 1, the
    Detector's default windows: overlapping windows share all but ``stride`` steps, so one odd
    step makes ``W / stride`` windows exceed — a fault as short as one step still fires, while
    the normal tail's shorter excursions do not (``docs/detector.md`` has the measurements).
    With other windows keep ``k ≈ m ≈ W / (2 · stride)``. ``critical_ratio`` splits the
    severities (see the module docstring).
    ``site`` goes into the dedup key ``streamvae:<site>:<asset>`` and the CloudEvents source
    ``<source_prefix>/<site>``, so it is restricted to letters, digits, ``.``, ``_``, ``-``.

    Example:
        >>> cfg = AlertConfig(site="plant-1", k=3, n=5, m=4)
        >>> cfg.window_count, cfg.severity(9.0, 4.0), cfg.severity(5.0, 4.0)
        (5, 'critical', 'warning')
    """

    site: str = "default"
    k: int = 16
    n: int | None = None
    m: int = 16
    cooldown_windows: int = 0
    critical_ratio: float = 2.0
    alertname: str = "SensorAnomaly"
    source_prefix: str = "/streamvae"

    def __post_init__(self) -> None:
        owner = "AlertConfig"
        _require(
            isinstance(self.site, str) and _SITE_RE.fullmatch(self.site) is not None,
            owner,
            "site",
            "must be letters, digits, '.', '_' or '-' (it goes into the dedup key and the "
            f"CloudEvents source), got {self.site!r}",
        )
        _positive_int(owner, "k", self.k)
        if self.n is not None:
            _positive_int(owner, "n", self.n)
            _require(self.n >= self.k, owner, "n", f"must be >= k ({self.k}), got {self.n}")
        _positive_int(owner, "m", self.m)
        _positive_int(owner, "cooldown_windows", self.cooldown_windows, 0)
        _finite_float(owner, "critical_ratio", self.critical_ratio, low=1.0)
        _require(
            isinstance(self.alertname, str) and bool(self.alertname.strip()),
            owner,
            "alertname",
            f"must be a non-empty string, got {self.alertname!r}",
        )
        _require(
            isinstance(self.source_prefix, str)
            and bool(self.source_prefix)
            and not self.source_prefix.endswith("/")
            and not any(c.isspace() for c in self.source_prefix),
            owner,
            "source_prefix",
            "must be a non-empty URI reference without spaces or a trailing '/', e.g. "
            f"'/streamvae', got {self.source_prefix!r}",
        )

    @property
    def window_count(self) -> int:
        """n, the number of recent windows the k exceedances are counted in."""
        return self.k if self.n is None else self.n

    def severity(self, score: float, threshold: float) -> str:
        """``"critical"`` when the score/threshold ratio reaches ``critical_ratio``."""
        return "critical" if severity_ratio(score, threshold) >= self.critical_ratio else "warning"


def severity_ratio(score: float, threshold: float) -> float:
    """``score / threshold`` for a positive threshold; ``1 + (score − threshold)/|threshold|``
    in general (scores in nats per value may be negative); +inf above a zero threshold.

    Example:
        >>> severity_ratio(9.0, 3.0), severity_ratio(0.5, -1.0)
        (3.0, 2.5)
    """
    if threshold == 0.0:
        return math.inf if score > 0.0 else 1.0
    return 1.0 + (score - threshold) / abs(threshold)


@dataclass(frozen=True, slots=True)
class _Hit:
    """What the lifecycle keeps of an exceeding window (never the window's values)."""

    idx: int  # position in the asset's pending count
    score: float
    threshold: float
    label: str
    model_version: str
    start_ts: float
    end_ts: float
    contributions: dict[str, float]
    offsets: OffsetSpan | None

    @classmethod
    def of(cls, idx: int, sw: ScoredWindow) -> _Hit:
        w = sw.window
        return cls(
            idx,
            _finite(sw.score),
            _finite(sw.threshold),
            sw.threshold_label,
            sw.model_version,
            w.start_ts,
            w.end_ts,
            {c: _share(v) for c, v in sw.contributions.items()},
            w.offsets,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["contributions"] = dict(self.contributions)
        out["offsets"] = _span_to_dict(self.offsets)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _Hit:
        return cls(
            int(d["idx"]),
            float(d["score"]),
            float(d["threshold"]),
            str(d["label"]),
            str(d["model_version"]),
            float(d["start_ts"]),
            float(d["end_ts"]),
            {str(c): float(v) for c, v in d["contributions"].items()},
            _span_from_dict(d["offsets"]),
        )


class AssetAlertState:
    """One asset's place in the lifecycle. Only assets with something going on have one:
    exceedances pending (``pending``), an open alert (``firing``), or a cooldown.

    Example:
        >>> s = AssetAlertState()
        >>> s.firing is None, s.quiet
        (True, True)
    """

    __slots__ = (
        "age",
        "cooldown",
        "firing",
        "hits",
        "normal_run",
        "peak",
        "pending",
        "span",
        "sums",
    )

    def __init__(self) -> None:
        self.age = 0  # windows judged since the first pending exceedance
        self.pending: list[_Hit] = []  # exceedances among the last n windows (OK state)
        self.firing: AlertEvent | None = None
        self.sums: dict[str, float] = {}  # episode: sum of contributions of exceeding windows
        self.hits = 0  # episode: number of exceeding windows
        self.peak: _Hit | None = None  # episode: the highest-scoring window
        self.normal_run = 0  # episode: consecutive normal windows so far
        self.span: OffsetSpan | None = None  # episode: offsets of all its windows
        self.cooldown = 0  # windows left that are not judged

    @property
    def quiet(self) -> bool:
        """True when the state is indistinguishable from a fresh one (it can be dropped)."""
        return self.firing is None and not self.pending and self.cooldown == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "age": self.age,
            "pending": [h.to_dict() for h in self.pending],
            "firing": None if self.firing is None else _event_to_dict(self.firing),
            "sums": dict(self.sums),
            "hits": self.hits,
            "peak": None if self.peak is None else self.peak.to_dict(),
            "normal_run": self.normal_run,
            "span": _span_to_dict(self.span),
            "cooldown": self.cooldown,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AssetAlertState:
        s = cls()
        s.age = int(d["age"])
        s.pending = [_Hit.from_dict(h) for h in d["pending"]]
        s.firing = None if d["firing"] is None else _event_from_dict(d["firing"])
        s.sums = {str(c): float(v) for c, v in d["sums"].items()}
        s.hits = int(d["hits"])
        s.peak = None if d["peak"] is None else _Hit.from_dict(d["peak"])
        s.normal_run = int(d["normal_run"])
        s.span = _span_from_dict(d["span"])
        s.cooldown = int(d["cooldown"])
        return s


class Alerter:
    """The alert lifecycle of every asset: scored windows in, firing/resolved events out.

    Example:
        >>> import numpy as np
        >>> from streamvae.types import Window
        >>> alerter = Alerter(AlertConfig(site="plant-1", k=2, m=2))
        >>> def sw(t, anomalous):
        ...     w = Window("pump-7", t - 31.0, t, np.zeros((32, 1)), ("vib",))
        ...     return ScoredWindow(w, 9.7 if anomalous else 1.0, 4.1, anomalous, {"vib": 1.0},
        ...                         "v0001", "p99.5")
        >>> flags = [False, True, True, True, False, False, False]
        >>> events = alerter.update_many(sw(100.0 + t, a) for t, a in enumerate(flags))
        >>> [(e.status, e.starts_at, e.ends_at) for e in events]
        [('firing', 101.0, None), ('resolved', 101.0, 105.0)]
        >>> events[0].summary
        'pump-7 anomalous: score 9.70 nats > threshold 4.10 nats (p99.5); top channel vib'
    """

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config if config is not None else AlertConfig()
        if not isinstance(self.config, AlertConfig):
            raise ConfigError(
                f"Alerter: config must be an AlertConfig, got {type(self.config).__name__}"
            )
        self._k = self.config.k
        self._n = self.config.window_count
        self._states: dict[str, AssetAlertState] = {}

    def update(self, sw: ScoredWindow) -> list[AlertEvent]:
        """Judge one scored window (windows of an asset in event-time order)."""
        state = self._states.get(sw.window.asset)
        if state is None and not sw.anomalous:
            return []  # the common case: nothing pending, nothing open, nothing to do
        return self._step(sw, state)

    def update_many(self, windows: Iterable[ScoredWindow]) -> list[AlertEvent]:
        """Judge windows in order; the events of all of them, in order."""
        out: list[AlertEvent] = []
        states = self._states
        step = self._step
        for sw in windows:
            state = states.get(sw.window.asset)
            if state is None and not sw.anomalous:
                continue
            out += step(sw, state)
        return out

    def active(self) -> dict[str, AlertEvent]:
        """The firing event of every asset whose alert is open, by asset."""
        return {a: s.firing for a, s in self._states.items() if s.firing is not None}

    def watched(self) -> KeysView[str]:
        """A live view of the assets that are not quiet (pending exceedances, an open alert
        or a cooldown): a normal window of any other asset needs no :meth:`update`."""
        return self._states.keys()

    def state(self, asset: str) -> AssetAlertState | None:
        """An asset's lifecycle state; None when it is quiet (OK, nothing pending)."""
        return self._states.get(asset)

    # ------------------------------------------------------------------ the state machine

    def _step(self, sw: ScoredWindow, state: AssetAlertState | None) -> list[AlertEvent]:
        exceed = sw.anomalous and not sw.warming_up and not sw.regime_change
        asset = sw.window.asset
        if state is None:
            if not exceed:
                return []
            state = self._states[asset] = AssetAlertState()
        events: list[AlertEvent] = []
        if state.cooldown > 0:
            state.cooldown -= 1
        elif state.firing is not None:
            self._step_firing(state, sw, exceed, events)
        else:
            self._step_ok(asset, state, sw, exceed, events)
        if state.quiet:
            del self._states[asset]
        return events

    def _step_ok(
        self,
        asset: str,
        state: AssetAlertState,
        sw: ScoredWindow,
        exceed: bool,
        events: list[AlertEvent],
    ) -> None:
        pending = state.pending
        if not exceed and (sw.regime_change or self._n == self._k):
            pending.clear()  # a regime change, or a gap in a k-consecutive run: start over
            return
        state.age += 1
        oldest = state.age - self._n  # windows with idx <= oldest are out of the last n
        while pending and pending[0].idx <= oldest:
            del pending[0]
        if not exceed:
            return
        pending.append(_Hit.of(state.age, sw))
        if len(pending) >= self._k:
            events.append(self._fire(asset, state))

    def _fire(self, asset: str, state: AssetAlertState) -> AlertEvent:
        run = state.pending
        last = run[-1]
        sums: dict[str, float] = {}
        peak = run[0]
        span = run[0].offsets
        for hit in run:
            _accumulate(sums, hit.contributions)
            if hit.score > peak.score:
                peak = hit
            span = _merge(span, hit.offsets)
        cfg = self.config
        contributions = _mean_contributions(sums, len(run))
        event = AlertEvent(
            status="firing",
            site=cfg.site,
            asset=asset,
            severity=cfg.severity(last.score, last.threshold),
            summary=_summary(f"{asset} anomalous: score", last, contributions),
            starts_at=run[0].end_ts,
            ends_at=None,
            score=last.score,
            threshold=last.threshold,
            contributions=contributions,
            window_start=last.start_ts,
            window_end=last.end_ts,
            model_version=last.model_version,
            input=span,
            reason=None,
            alertname=cfg.alertname,
            source_prefix=cfg.source_prefix,
        )
        state.firing = event
        state.sums = sums
        state.hits = len(run)
        state.peak = peak
        state.normal_run = 0
        state.span = span
        state.pending = []
        state.age = 0
        return event

    def _step_firing(
        self, state: AssetAlertState, sw: ScoredWindow, exceed: bool, events: list[AlertEvent]
    ) -> None:
        state.span = _merge(state.span, sw.window.offsets)
        if sw.warming_up and not sw.regime_change:
            return  # the threshold is re-learning after a recalibration: not judged
        if sw.regime_change:
            events.append(self._resolve(state, sw, "regime_change"))
        elif exceed:
            state.normal_run = 0
            _accumulate(state.sums, sw.contributions)
            state.hits += 1
            assert state.peak is not None
            if _finite(sw.score) > state.peak.score:
                state.peak = _Hit.of(0, sw)
        else:
            state.normal_run += 1
            if state.normal_run >= self.config.m:
                events.append(self._resolve(state, sw, "recovered"))

    def _resolve(self, state: AssetAlertState, sw: ScoredWindow, reason: str) -> AlertEvent:
        firing, peak = state.firing, state.peak
        assert firing is not None
        assert peak is not None
        cfg = self.config
        contributions = _mean_contributions(state.sums, state.hits)
        head = "recovered" if reason == "recovered" else "regime change accepted as normal"
        event = AlertEvent(
            status="resolved",
            site=cfg.site,
            asset=firing.asset,
            severity=cfg.severity(peak.score, peak.threshold),
            summary=_summary(f"{firing.asset} {head}: peak score", peak, contributions),
            starts_at=firing.starts_at,
            ends_at=sw.window.end_ts,
            score=peak.score,
            threshold=peak.threshold,
            contributions=contributions,
            window_start=peak.start_ts,
            window_end=peak.end_ts,
            model_version=peak.model_version,
            input=state.span,
            reason=reason,
            alertname=cfg.alertname,
            source_prefix=cfg.source_prefix,
        )
        state.firing = None
        state.sums = {}
        state.hits = 0
        state.peak = None
        state.normal_run = 0
        state.span = None
        state.cooldown = cfg.cooldown_windows
        return event

    # ------------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state: only assets that are not quiet (pending, firing or cooling down)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "assets": {a: s.to_dict() for a, s in self._states.items()},
        }

    @classmethod
    def restore(cls, config: AlertConfig, state: Mapping[str, Any]) -> Alerter:
        """Rebuild from :meth:`snapshot`; the result continues bit-identically."""
        if not isinstance(state, Mapping) or state.get("format") != SNAPSHOT_FORMAT:
            found = state.get("format") if isinstance(state, Mapping) else type(state).__name__
            raise ConfigError(
                f"alerter snapshot format {found!r} is not supported (expected "
                f"{SNAPSHOT_FORMAT}); take a snapshot with this version of streamvae"
            )
        alerter = cls(config)
        try:
            alerter._states = {
                str(a): AssetAlertState.from_dict(s) for a, s in state["assets"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(
                f"alerter snapshot is malformed ({type(err).__name__}: {err}); restore from a "
                "snapshot() of an Alerter, unmodified"
            ) from None
        return alerter


# ---------------------------------------------------------------------- helpers


def _finite(x: float) -> float:
    """A float that JSON can carry: NaN → 0.0, ±inf → ±1e308 (never produced by the scorer,
    whose variances are bounded, but an alert must stay publishable whatever comes in)."""
    x = float(x)
    if math.isfinite(x):
        return x
    return 0.0 if math.isnan(x) else math.copysign(_HUGE, x)


def _share(x: float) -> float:
    """A contribution clamped to [0, 1] (NaN → 0): shares by definition, and the snapshot
    and the event must stay valid JSON whatever a scorer hands in."""
    return float(x) if 0.0 <= x <= 1.0 else (1.0 if x > 1.0 else 0.0)


def _accumulate(sums: dict[str, float], contributions: Mapping[str, float]) -> None:
    for channel, share in contributions.items():
        if not 0.0 <= share <= 1.0:
            share = _share(share)
        sums[channel] = sums.get(channel, 0.0) + share


def _mean_contributions(sums: Mapping[str, float], count: int) -> dict[str, float]:
    """Mean share per channel, rounded, largest first (ties by channel name)."""
    means = sorted((-s / count, str(c)) for c, s in sums.items())
    return {c: round(-neg, CONTRIBUTION_DECIMALS) + 0.0 for neg, c in means}


def _merge(span: OffsetSpan | None, other: OffsetSpan | None) -> OffsetSpan | None:
    if span is None or other is None:
        return None
    if span.topic != other.topic or span.partition != other.partition:
        return None
    if other.offset_start >= span.offset_start and other.offset_end <= span.offset_end:
        return span
    return OffsetSpan(
        span.topic,
        span.partition,
        min(span.offset_start, other.offset_start),
        max(span.offset_end, other.offset_end),
    )


def _num(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 1e6 else f"{x:.3e}"


def _summary(head: str, hit: _Hit, contributions: Mapping[str, float]) -> str:
    text = f"{head} {_num(hit.score)} nats > threshold {_num(hit.threshold)} nats"
    if hit.label:
        text += f" ({hit.label})"
    top = next(iter(contributions), None)
    if top is not None:
        text += f"; top channel {top}"
    if len(text) > SUMMARY_MAX_CHARS:
        text = text[: SUMMARY_MAX_CHARS - 1] + "…"
    return text


def _span_to_dict(span: OffsetSpan | None) -> dict[str, Any] | None:
    if span is None:
        return None
    return {
        "topic": span.topic,
        "partition": span.partition,
        "offset_start": span.offset_start,
        "offset_end": span.offset_end,
    }


def _span_from_dict(d: Mapping[str, Any] | None) -> OffsetSpan | None:
    if d is None:
        return None
    return OffsetSpan(
        str(d["topic"]), int(d["partition"]), int(d["offset_start"]), int(d["offset_end"])
    )


def _event_to_dict(e: AlertEvent) -> dict[str, Any]:
    """Raw fields (float times, not their ISO text), so a restored event is the same object."""
    out = {f.name: getattr(e, f.name) for f in fields(e)}
    out["contributions"] = dict(e.contributions)
    out["input"] = _span_to_dict(e.input)
    return out


def _event_from_dict(d: Mapping[str, Any]) -> AlertEvent:
    kwargs = dict(d)
    kwargs["contributions"] = {str(c): float(v) for c, v in d["contributions"].items()}
    kwargs["input"] = _span_from_dict(d["input"])
    return AlertEvent(**kwargs)
