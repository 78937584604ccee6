"""``streamvae simulate``: a simulated plant streamed into a sensor topic, with its labels.

A fleet of pumps (``streamvae.testing.SyntheticPlant``: eight physically coupled channels, a
daily cycle, load changes, noise), a number of injected faults at random assets, channels and
times after a healthy first stretch, and the imperfections of real telemetry: a share of
readings is missing, and some arrive late (swapped with the reading before them, within the
service's lateness allowance when it has one). The labels — which fault, on which asset and
channel, from when to when, in event time — are written as JSON where a report or an
evaluation can read them, so detection can be scored against the truth.

Example:
    >>> plan = plan_plant(assets=3, steps=600, faults=2, seed=1, healthy_steps=300)
    >>> len(plan.readings) > 1700, len(plan.labels)
    (True, 2)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import streamvae as sv
from streamvae.testing import Fault, SyntheticPlant, series_readings

__all__ = ["FaultLabel", "PlantPlan", "plan_plant", "write_labels"]

KINDS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    # kind, channels it may hit, length in steps (a spike is one step)
    ("spike", ("vibration", "pressure", "current"), 1),
    ("level_shift", ("pressure", "flow", "temperature"), 192),
    ("stuck", ("temperature", "bearing_temp", "vibration"), 192),
    ("noise_burst", ("current", "vibration"), 96),
    ("frequency_change", ("vibration", "current"), 192),
)


@dataclass(frozen=True, slots=True)
class FaultLabel:
    """One injected fault, in event time (what a report scores detection against).

    Example:
        >>> FaultLabel("pump-1", "spike", "vibration", 1.7e9, 1.7e9 + 300).duration_s
        300.0
    """

    asset: str
    kind: str
    channel: str
    start_ts: float
    end_ts: float  # exclusive: the first step after the fault

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
) -> PlantPlan:
    """A plant of ``assets`` pumps over ``steps`` steps, ``faults`` of them injected after
    ``healthy_steps`` (default: the first half — the warm-up learns normal there)."""
    if assets < 1 or steps < 2:
        raise ValueError(f"need assets >= 1 and steps >= 2, got {assets} and {steps}")
    if not (0.0 <= missing < 0.5 and 0.0 <= late < 0.5):
        raise ValueError("missing and late are shares of readings in [0, 0.5)")
    healthy = steps // 2 if healthy_steps is None else healthy_steps
    rng = np.random.default_rng(seed)
    names = [f"pump-{i:02d}" for i in range(assets)]
    per_asset: dict[str, list[Fault]] = {n: [] for n in names}
    labels: list[FaultLabel] = []
    busy: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
    for k in range(faults):
        kind, channels, length = KINDS[k % len(KINDS)]
        for _ in range(100):  # find a free span on some asset
            asset = names[int(rng.integers(assets))]
            latest = steps - length - 48
            if latest <= healthy:
                raise ValueError(
                    f"no room for a {length}-step fault after {healthy} healthy steps in {steps}"
                )
            start = int(rng.integers(healthy, latest))
            span = (start - 96, start + length + 96)  # keep faults apart: one at a time
            if all(span[1] <= a or b <= span[0] for a, b in busy[asset]):
                break
        else:
            raise ValueError(f"could not place {faults} faults on {assets} assets; use fewer")
        channel = channels[int(rng.integers(len(channels)))]
        busy[asset].append(span)
        per_asset[asset].append(Fault(kind, channel, start, length))  # type: ignore[arg-type]
        labels.append(
            FaultLabel(
                asset,
                kind,
                channel,
                start_ts + start * period_s,
                start_ts + (start + length) * period_s,
            )
        )
    streams = []
    for i, name in enumerate(names):
        series = SyntheticPlant(seed=seed * 1000 + i).generate(steps, per_asset[name])
        streams.append(series_readings(series, name, start_ts, period_s))
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
    """The labels as JSON (``faults``: asset, kind, channel, start_ts, end_ts), with what
    describes the run (``about``: topic, assets, period, …)."""
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
