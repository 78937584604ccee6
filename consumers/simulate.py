"""``streamvae simulate`` and ``streamvae demo``: a simulated fleet with its labels.

A mixed fleet (:mod:`streamvae.plant`: pumps, compressors and fan motors cycling in that order,
named ``pump-01``, ``compressor-02``, ``motor-03``, …; six physically coupled channels each, a
daily two-shift cycle, load changes, thermal lag, noise), a number of injected faults after a
healthy first stretch — cycling through bearing wear, cavitation, a stuck sensor, a drifting
sensor, a spike and a leak, each on an asset kind it can happen to, never two at a time on one
asset — and the imperfections of real telemetry: a share of readings is missing, and some
arrive late (swapped with their asset's next reading: one period late, within the demo
config's lateness allowance, unless a missing reading lies between them). The labels — which
fault, on which asset (and its kind) and channel, from when to when, in event time — are
written as JSON where a report or an evaluation can read them, so detection can be scored
against the truth.

:func:`demo_detector_config` is the detector configuration the demo runs this fleet with,
measured with ``benchmarks/bench_fleet.py``.

Example:
    >>> plan = plan_plant(assets=3, steps=900, faults=2, seed=1, healthy_steps=300)
    >>> len(plan.readings) > 2600, [(x.asset_kind, x.kind) for x in plan.labels]
    (True, [('compressor', 'bearing_wear'), ('pump', 'cavitation')])
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import streamvae as sv
from streamvae.plant import (
    ASSET_KINDS,
    FAULT_ASSETS,
    FAULT_KINDS,
    FLEET_CHANNELS,
    Asset,
    AssetFault,
    fault_applies,
)

__all__ = [
    "ASSET_CYCLE",
    "FAULT_HOURS",
    "SENSOR_CHANNELS",
    "FaultLabel",
    "PlantPlan",
    "asset_names",
    "demo_detector_config",
    "fault_steps",
    "plan_plant",
    "write_labels",
]

ASSET_CYCLE: tuple[str, ...] = ASSET_KINDS  # pump, compressor, motor, pump, …
# How long each fault lasts, in hours of event time (a spike is one reading): slow faults
# for as long as a shift or a day goes by before someone acts on them. A drift is a failing
# transmitter running off by ~5 % of span an hour (30 noise sigmas in 6 h): an adaptive
# threshold learns a slower drift as it goes (12 sigmas over 24 h: 3 of 27 detected).
FAULT_HOURS: Mapping[str, float] = {
    "bearing_wear": 24.0,
    "cavitation": 12.0,
    "stuck": 12.0,
    "drift": 6.0,
    "spike": 0.0,
    "leak": 12.0,
}
# The sensors a sensor fault may hit, per asset kind: channels whose readings move with the
# process, so the fault is a fault. A compressor's speed only shows its motor's slip and its
# receiver pressure saw-tooths inside a fixed band: a stuck or drifting value there is
# indistinguishable from normal for hours, so they are left out.
SENSOR_CHANNELS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "stuck": {
        "pump": ("flow", "pressure", "current", "speed", "temperature"),
        "compressor": ("flow", "current", "temperature"),
        "motor": ("flow", "pressure", "current", "speed", "temperature"),
    },
    "drift": {
        "pump": ("pressure", "flow", "current"),
        "compressor": ("flow", "current"),
        "motor": ("flow", "pressure", "current"),
    },
    "spike": {
        "pump": ("vibration", "pressure", "current", "flow", "temperature"),
        "compressor": ("vibration", "current", "flow", "temperature"),
        "motor": ("vibration", "pressure", "current", "flow", "temperature"),
    },
}
_GUARD_H = 8.0  # hours kept free between two faults of one asset
_TAIL_H = 4.0  # hours after the last fault ends before the stream does


@dataclass(frozen=True, slots=True)
class FaultLabel:
    """One injected fault, in event time (what a report scores detection against).

    ``channel`` is the fault's primary channel: the failing sensor, or for a physical fault
    the channel that shows it most (what a good alert names first). ``asset_kind`` is empty
    in labels written before the fleet was mixed.

    Example:
        >>> FaultLabel("pump-01", "spike", "vibration", 1.7e9, 1.7e9 + 300, "pump").duration_s
        300.0
    """

    asset: str
    kind: str
    channel: str
    start_ts: float
    end_ts: float  # exclusive: the first step after the fault
    asset_kind: str = ""

    @property
    def duration_s(self) -> float:
        return self.end_ts - self.start_ts


@dataclass(frozen=True, slots=True)
class PlantPlan:
    """Every reading to send (in send order) and the faults among them.

    Example:
        >>> PlantPlan([], [], 0, 0).missing
        0
    """

    readings: list[sv.Reading]
    labels: list[FaultLabel]
    missing: int  # readings dropped (telemetry gaps)
    late: int  # readings sent after a newer one of their asset


def asset_names(assets: int) -> list[tuple[str, str]]:
    """``(name, kind)`` of a fleet of ``assets``: kinds cycle pump, compressor, motor, and
    the number counts across the fleet.

    Example:
        >>> asset_names(4)
        [('pump-01', 'pump'), ('compressor-02', 'compressor'), ('motor-03', 'motor'), ('pump-04', 'pump')]
    """  # noqa: E501
    return [
        (f"{ASSET_CYCLE[i % len(ASSET_CYCLE)]}-{i + 1:02d}", ASSET_CYCLE[i % len(ASSET_CYCLE)])
        for i in range(assets)
    ]


def fault_steps(kind: str, period_s: float) -> int:
    """A fault's length in readings (a spike is one)."""
    return max(1, round(FAULT_HOURS[kind] * 3600.0 / period_s))


def plan_plant(
    *,
    assets: int = 6,
    steps: int = 2_016,
    faults: int = 6,
    period_s: float = 300.0,
    start_ts: float = 1_700_000_000.0,
    healthy_steps: int | None = None,
    missing: float = 0.002,
    late: float = 0.002,
    seed: int = 0,
    fault_kinds: Sequence[str] = FAULT_KINDS,
    noise: float = 1.0,
) -> PlantPlan:
    """A fleet of ``assets`` over ``steps`` readings each, ``faults`` of them injected after
    ``healthy_steps`` (default: the first half — the warm-up learns normal there).

    Fault kinds cycle through ``fault_kinds``; each goes to a random asset of a kind it can
    happen to, at a random time after the healthy stretch, at least 8 hours away from any
    other fault of that asset, ending at least 4 hours before the stream does. The plant's
    shifts follow UTC event time (day shift about 06:00–22:00). Raises ValueError when the
    faults do not fit.
    """
    if assets < 1 or steps < 2:
        raise ValueError(f"need assets >= 1 and steps >= 2, got {assets} and {steps}")
    if not (0.0 <= missing < 0.5 and 0.0 <= late < 0.5):
        raise ValueError("missing and late are shares of readings in [0, 0.5)")
    unknown = [k for k in fault_kinds if k not in FAULT_KINDS]
    if unknown or (faults and not fault_kinds):
        raise ValueError(f"fault_kinds must be a non-empty list of {list(FAULT_KINDS)}")
    healthy = steps // 2 if healthy_steps is None else healthy_steps
    rng = np.random.default_rng(seed)
    fleet = asset_names(assets)
    kind_of = dict(fleet)
    per_asset: dict[str, list[AssetFault]] = {n: [] for n, _ in fleet}
    busy: dict[str, list[tuple[int, int]]] = {n: [] for n, _ in fleet}
    labels: list[FaultLabel] = []
    guard = round(_GUARD_H * 3600.0 / period_s)
    tail = round(_TAIL_H * 3600.0 / period_s)
    for k in range(faults):
        kind = fault_kinds[k % len(fault_kinds)]
        candidates = [n for n, c in fleet if fault_applies(kind, c)]
        if not candidates:
            raise ValueError(
                f"no asset for a {kind} fault: it needs a {' or '.join(FAULT_ASSETS[kind])}"
                f", and the fleet of {assets} has none; add assets"
            )
        length = fault_steps(kind, period_s)
        latest = steps - length - tail
        if latest <= healthy:
            raise ValueError(
                f"no room for a {length}-step {kind} fault after {healthy} healthy steps in "
                f"{steps} (it must end {tail} steps before the stream does); add steps or "
                "shorten the healthy stretch"
            )
        for _ in range(200):  # find a free span on some asset
            asset = candidates[int(rng.integers(len(candidates)))]
            start = int(rng.integers(healthy, latest))
            span = (start - guard, start + length + guard)
            if all(span[1] <= a or b <= span[0] for a, b in busy[asset]):
                break
        else:
            raise ValueError(f"could not place {faults} faults on {assets} assets; use fewer")
        busy[asset].append(span)
        channel = None
        if kind in SENSOR_CHANNELS:
            options = SENSOR_CHANNELS[kind][kind_of[asset]]
            channel = options[int(rng.integers(len(options)))]
        fault = AssetFault(kind, start, length, channel)  # type: ignore[arg-type]
        per_asset[asset].append(fault)
        labels.append(
            FaultLabel(
                asset,
                kind,
                fault.channel_for(kind_of[asset]),
                start_ts + start * period_s,
                start_ts + (start + length) * period_s,
                kind_of[asset],
            )
        )
    streams = []
    for i, (name, kind) in enumerate(fleet):
        unit = Asset(kind, seed=seed * 1000 + i, period_s=period_s, noise=noise)  # type: ignore[arg-type]
        series = unit.generate(steps, per_asset[name], time_of_day_s=start_ts % 86_400.0)
        streams.append(series.readings(name, start_ts))
    out: list[sv.Reading] = []
    dropped = 0
    for t in range(steps):  # step by step: every asset's reading of a step, then the next
        for s in streams:
            if rng.random() < missing:
                dropped += 1
                continue
            out.append(s[t])
    swapped = 0
    if late > 0:  # swap a reading with its asset's next one: it arrives after a newer one
        last: dict[str, int] = {}
        for j, r in enumerate(out):
            prev = last.pop(r.asset, None)
            if prev is not None and rng.random() < late:
                out[prev], out[j] = out[j], out[prev]
                swapped += 1  # and the asset's next reading is not swapped: no chains
            else:
                last[r.asset] = j
    labels.sort(key=lambda x: (x.start_ts, x.asset))
    return PlantPlan(out, labels, dropped, swapped)


def write_labels(path: str | Path, plan: PlantPlan, **about: object) -> Path:
    """The labels as JSON (``faults``: asset, kind, channel, start_ts, end_ts, asset_kind),
    with what describes the run (``about``: topic, assets, period, …)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "about": {k: v for k, v in about.items() if not isinstance(v, float) or math.isfinite(v)},
        "missing_readings": plan.missing,
        "late_readings": plan.late,
        "faults": [asdict(x) for x in plan.labels],
    }
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(target)
    return target


def demo_detector_config(period_s: float = 300.0) -> sv.DetectorConfig:
    """The Detector configuration of the demo fleet (``streamvae demo``): one model group for
    pumps, compressors and fan motors alike, over :data:`~streamvae.plant.FLEET_CHANNELS`.

    Why each value differs from the defaults (measured with ``benchmarks/bench_fleet.py``:
    9 assets, 7.5 days, one fault of each kind after 3 healthy days, 6 seeds):

    - ``warmup_span_s`` two days less a period, ``warmup_windows`` 1,000: the demo is short in
      event time, so the first model trains once every asset has shown two daily cycles; six
      assets buffer ~1,090 windows in two days (every 3rd window), nine ~1,640.
    - ``train``: 60 epochs, patience 10: the first training takes 3–5 s on 2 CPU cores
      (150 epochs take ~10 s and detect the same faults).
    - ``scaling="asset"``: the kinds share channel names but not ranges (a pump's discharge
      pressure is bar, a fan's static pressure kPa; a compressor runs at 2,990 rpm, the others
      at 1,000–1,500), so group statistics would shrink each asset's own variation to a sliver
      of the group's spread: group scaling detected 28/36 (spikes 3/6, drift 3/6, stuck
      4/6), per-asset scaling 36/36, with the same false alerts.
    - ``threshold`` q 0.98, margin 1.0 (defaults 0.995, 0.5): a sensor drifting steadily
      raises its scores gradually, and scores just below the threshold are learned as normal,
      so the 99.5th percentile of a few days' baseline (its top 5 scores) follows the drift
      up; the 98th percentile needs 4 times as many to move. Drift detected 6/6 instead of
      4/6 (all faults 36/36 instead of 33/36), false alerts 3 instead of 2 in 297
      asset-days (8 instead of 4 on a fault-free fleet: 0.5 per 20 asset-days).
    - ``window``: late readings (one period late) are waited for; a missing reading is carried
      over for up to three periods.

    Example:
        >>> cfg = demo_detector_config()
        >>> cfg.window.channels == FLEET_CHANNELS, cfg.warmup_span_s / 3600
        (True, 47.916666666666664)
    """
    day_steps = round(86_400.0 / period_s)
    window = sv.WindowConfig(
        channels=FLEET_CHANNELS,
        period_s=period_s,
        window=32,
        max_gap_s=3 * period_s,
        allowed_lateness_s=period_s,
    )
    return sv.DetectorConfig(
        window=window,
        train=sv.TrainConfig(epochs=60, patience=10),
        threshold=sv.ThresholdConfig(q=0.98, margin=1.0),
        alert=sv.AlertConfig(site="demo"),
        warmup_windows=1000,
        warmup_span_s=(2 * day_steps - 1) * period_s,
        scaling="asset",
    )
