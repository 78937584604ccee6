"""Synthetic plants with labelled anomalies, and small evaluation helpers — shipped for users.

A pump-like asset whose eight channels are physically coupled through a shared load: flow,
pressure, speed, current and power follow the load; temperatures follow it with thermal lag on
top of a daily ambient cycle; vibration and motor current carry a pulsation at a fixed
frequency. Because the channels are coupled, a fault on one channel breaks its relation to the
others even when its values stay in their usual range — the case a per-channel threshold
misses and a multivariate model catches.

Everything is seeded: the same plant, seed and faults give the same series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from streamvae.errors import ConfigError, InputError
from streamvae.model.scorer import ScoreBatch
from streamvae.types import Reading
from streamvae.windowing import window_starts

__all__ = [
    "DEFAULT_CHANNELS",
    "FAULT_KINDS",
    "DetectionResult",
    "Fault",
    "PlantSeries",
    "SyntheticPlant",
    "evaluate_detection",
    "fault_suite",
    "interleave",
    "roc_auc",
    "series_readings",
]

FaultKind = Literal["spike", "level_shift", "stuck", "noise_burst", "frequency_change"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "spike",
    "level_shift",
    "stuck",
    "noise_burst",
    "frequency_change",
)
DEFAULT_CHANNELS: tuple[str, ...] = (
    "flow",
    "pressure",
    "speed",
    "current",
    "power",
    "temperature",
    "bearing_temp",
    "vibration",
)
# Channels that carry the pulsation, so a frequency change is meaningful on them.
OSCILLATING_CHANNELS: tuple[str, ...] = ("vibration", "current")
# Default magnitude per kind: spikes and shifts in channel std, bursts in noise std,
# frequency changes as a frequency ratio.
DEFAULT_MAGNITUDE: dict[str, float] = {
    "spike": 4.0,
    "level_shift": 1.5,
    "stuck": 0.0,
    "noise_burst": 6.0,
    "frequency_change": 2.0,
}

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Fault:
    """An anomaly injected into one channel over ``[start, start + length)`` steps.

    ``magnitude`` of None takes the kind's default: a spike adds 4 channel standard deviations,
    a level shift 1.5, a noise burst adds noise 6 times the channel's normal noise, a frequency
    change multiplies the pulsation frequency by 2; a stuck sensor repeats its value at
    ``start``.

    Example:
        >>> Fault("stuck", "temperature", start=500, length=60).end
        560
    """

    kind: FaultKind
    channel: str
    start: int
    length: int = 1
    magnitude: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"Fault.kind must be one of {list(FAULT_KINDS)}, got {self.kind!r}")
        if self.start < 0 or self.length < 1:
            raise ConfigError(
                f"Fault needs start >= 0 and length >= 1, got start={self.start}, "
                f"length={self.length}"
            )

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def effective_magnitude(self) -> float:
        return DEFAULT_MAGNITUDE[self.kind] if self.magnitude is None else self.magnitude


@dataclass(frozen=True, slots=True)
class PlantSeries:
    """A generated series: ``values`` (steps, channels) in engineering units, plus labels.

    ``labels[t]`` is True while any fault is active; ``fault_index[t]`` is the index into
    ``faults`` of the active fault, or -1.
    """

    values: FloatArray
    channels: tuple[str, ...]
    labels: npt.NDArray[np.bool_]
    fault_index: npt.NDArray[np.int64]
    faults: tuple[Fault, ...]


@dataclass(frozen=True, slots=True)
class SyntheticPlant:
    """A simulated pump with coupled channels, a daily cycle, load changes and noise.

    ``steps_per_day`` sets the daily cycle (288 = one reading every 5 minutes);
    ``pulsation_period`` is the period of the vibration/current pulsation in steps; ``noise`` is
    the noise level as a fraction of each channel's operating range. ``load_drift_per_day``
    (load units, the load spans 0.15–1) and ``ambient_drift_per_day`` (°C) make the normal
    regime drift slowly from step 0 on (a season, a process change): normal all along, but
    outside what an early warm-up saw.

    Example:
        >>> plant = SyntheticPlant(seed=1)
        >>> series = plant.generate(1000, faults=[Fault("spike", "vibration", start=400)])
        >>> series.values.shape, int(series.labels.sum())
        ((1000, 8), 1)
    """

    steps_per_day: int = 288
    pulsation_period: float = 8.0
    noise: float = 0.02
    seed: int = 0
    channels: tuple[str, ...] = field(default=DEFAULT_CHANNELS)
    load_drift_per_day: float = 0.0
    ambient_drift_per_day: float = 0.0

    def __post_init__(self) -> None:
        if self.steps_per_day < 4 or self.pulsation_period < 2 or self.noise < 0:
            raise ConfigError(
                "SyntheticPlant needs steps_per_day >= 4, pulsation_period >= 2, noise >= 0"
            )
        unknown = set(self.channels) - set(DEFAULT_CHANNELS)
        if unknown or not self.channels:
            raise ConfigError(
                f"SyntheticPlant.channels must be a non-empty subset of {list(DEFAULT_CHANNELS)}"
            )

    def generate(
        self, n_steps: int, faults: Sequence[Fault] = (), start_step: int = 0
    ) -> PlantSeries:
        """Generate ``n_steps`` readings starting at absolute step ``start_step``.

        The same plant and seed continue the same underlying process, so train and test
        series taken from different ``start_step`` values belong to one plant.
        """
        if n_steps < 1:
            raise InputError(f"n_steps must be >= 1, got {n_steps}")
        rng = np.random.default_rng([self.seed, start_step])
        t = np.arange(start_step, start_step + n_steps, dtype=np.float64)
        day = 2.0 * np.pi * t / self.steps_per_day

        # Load: daily demand, a slow random wander and smooth set-point changes.
        wander = _ar1(rng, n_steps, phi=0.995, sigma=0.006)
        setpoints = _smooth_steps(rng, n_steps, every=180, size=0.08, ramp=24)
        days = t / self.steps_per_day
        base = 0.6 + self.load_drift_per_day * days
        load = np.clip(base + 0.22 * np.sin(day - 1.0) + wander + setpoints, 0.15, 1.0)
        thermal = _low_pass(load, 0.05)
        ambient = 20.0 + 6.0 * np.sin(day - np.pi / 2) + self.ambient_drift_per_day * days
        phase = rng.uniform(0, 2 * np.pi)

        def pulsation(freq_scale: FloatArray) -> FloatArray:
            # Phase-continuous, so a frequency change is not also a jump.
            omega = 2.0 * np.pi / self.pulsation_period * freq_scale
            return np.sin(np.cumsum(omega) + phase)

        ones = np.ones(n_steps)
        clean = {
            "flow": lambda f: 120.0 * load,
            "pressure": lambda f: 2.0 + 4.0 * load**2,
            "speed": lambda f: 1450.0 * (0.5 + 0.5 * load),
            "current": lambda f: 10.0 + 40.0 * load + 2.5 * pulsation(f),
            "power": lambda f: 4.0 + 45.0 * load**1.5,
            "temperature": lambda f: ambient + 30.0 * thermal,
            "bearing_temp": lambda f: ambient + 38.0 * _low_pass(load, 0.03),
            "vibration": lambda f: (1.0 + 2.0 * load) * (1.0 + 0.35 * pulsation(f)),
        }
        ranges = {
            "flow": 120.0,
            "pressure": 4.0,
            "speed": 725.0,
            "current": 40.0,
            "power": 45.0,
            "temperature": 30.0,
            "bearing_temp": 38.0,
            "vibration": 2.0,
        }
        values = np.empty((n_steps, len(self.channels)))
        noise_sd = np.empty(len(self.channels))
        for j, name in enumerate(self.channels):
            noise_sd[j] = self.noise * ranges[name]
            values[:, j] = clean[name](ones) + rng.normal(0.0, noise_sd[j], n_steps)

        labels = np.zeros(n_steps, dtype=bool)
        fault_index = np.full(n_steps, -1, dtype=np.int64)
        channel_sd = values.std(axis=0)
        for k, fault in enumerate(faults):
            if fault.channel not in self.channels:
                raise ConfigError(f"fault channel {fault.channel!r} is not one of {self.channels}")
            j = self.channels.index(fault.channel)
            lo, hi = fault.start - start_step, fault.end - start_step
            if lo < 0 or hi > n_steps:
                raise ConfigError(
                    f"fault {fault} does not fit in steps [{start_step}, {start_step + n_steps})"
                )
            m = fault.effective_magnitude
            span = slice(lo, hi)
            if fault.kind in ("spike", "level_shift"):
                values[span, j] += rng.choice([-1.0, 1.0]) * m * channel_sd[j]
            elif fault.kind == "stuck":
                values[span, j] = values[lo, j]
            elif fault.kind == "noise_burst":
                values[span, j] += rng.normal(0.0, m * noise_sd[j], hi - lo)
            else:  # frequency_change
                if fault.channel not in OSCILLATING_CHANNELS:
                    raise ConfigError(
                        f"frequency_change needs a pulsating channel {OSCILLATING_CHANNELS}, "
                        f"got {fault.channel!r}"
                    )
                scale = np.ones(n_steps)
                scale[span] = m
                changed = clean[fault.channel](scale) - clean[fault.channel](ones)
                values[span, j] += changed[span]
            labels[span] = True
            fault_index[span] = k
        return PlantSeries(values, self.channels, labels, fault_index, tuple(faults))


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> FloatArray:
    shocks = rng.normal(0.0, sigma, n)
    out = np.empty(n)
    level = 0.0
    for i in range(n):
        level = phi * level + shocks[i]
        out[i] = level
    return out


def _smooth_steps(
    rng: np.random.Generator, n: int, every: int, size: float, ramp: int
) -> FloatArray:
    """Set-point changes at random times, each ramped linearly over ``ramp`` steps."""
    out = np.zeros(n)
    level = 0.0
    i = int(rng.integers(every // 2, every + 1))
    while i < n:
        target = float(np.clip(level + rng.normal(0.0, size), -0.15, 0.15))
        stop = min(n, i + ramp)
        out[i:stop] = np.linspace(level, target, ramp)[: stop - i]
        out[stop:] = target
        level = target
        i += int(rng.integers(every // 2, 2 * every))
    return out


def _low_pass(x: FloatArray, alpha: float) -> FloatArray:
    out = np.empty_like(x)
    acc = x[0]
    for i, v in enumerate(x):
        acc += alpha * (v - acc)
        out[i] = acc
    return out


def roc_auc(positive_scores: npt.ArrayLike, negative_scores: npt.ArrayLike) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2.

    Example:
        >>> roc_auc([3.0, 4.0], [1.0, 2.0, 3.0])
        0.9166666666666666
    """
    pos = np.asarray(positive_scores, dtype=np.float64).ravel()
    neg = np.asarray(negative_scores, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise InputError("roc_auc needs at least one positive and one negative score")
    ranks = _average_ranks(np.concatenate([pos, neg]))
    rank_sum = ranks[: pos.size].sum()
    return float((rank_sum - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def _average_ranks(values: FloatArray) -> FloatArray:
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(values.size)
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def fault_suite(
    plant: SyntheticPlant,
    kind: FaultKind,
    start_step: int,
    n_faults: int = 10,
    length: int = 192,
    gap: int = 300,
) -> PlantSeries:
    """A test series with ``n_faults`` faults of one kind, ``gap`` clean steps around each
    (long enough that most windows are clean, so the normal side of an AUC is well sampled).

    Faults rotate over the channels (over the pulsating ones for a frequency change). A spike
    lasts one step; other faults last ``length`` steps — 192 steps is 16 h at 5-minute
    readings: a stuck sensor stays stuck until someone fixes it, and a stuck value only
    becomes wrong once the process moves away from it.

    Example:
        >>> series = fault_suite(SyntheticPlant(), "stuck", start_step=0, n_faults=2)
        >>> len(series.faults), series.faults[1].channel
        (2, 'pressure')
    """
    channels = [
        c for c in plant.channels if kind != "frequency_change" or c in OSCILLATING_CHANNELS
    ]
    if not channels:
        raise ConfigError(f"plant has no channel that supports {kind!r}")
    faults: list[Fault] = []
    position = start_step + gap
    for i in range(n_faults):
        span = 1 if kind == "spike" else length
        faults.append(Fault(kind, channels[i % len(channels)], position, span))
        position += span + gap
    return plant.generate(position - start_step, faults, start_step=start_step)


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """How well window scores separate one fault kind from normal operation.

    ``auc`` compares windows that contain the fault (a spike anywhere in the window; other
    kinds over the whole window) with windows at least one window length away from any fault.
    ``top_channel_accuracy`` is the fraction of faults whose channel has the largest mean
    contribution over the fault's windows — what an alert reports as its top channel.
    """

    kind: str
    auc: float
    top_channel_accuracy: float
    n_faults: int
    n_positive_windows: int
    n_negative_windows: int


def evaluate_detection(
    batch: ScoreBatch, series: PlantSeries, window: int, stride: int = 1
) -> DetectionResult:
    """Score-level evaluation of windows cut from ``series`` with ``window`` and ``stride``.

    ``batch`` must hold the scores of ``sliding_windows(series.values, window, stride)`` (after
    scaling), in order.
    """
    starts = window_starts(series.values.shape[0], window, stride)
    if len(batch) != starts.size:
        raise InputError(
            f"batch has {len(batch)} scores but the series gives {starts.size} windows"
        )
    labels = series.labels
    covered = np.array([labels[s : s + window].sum() for s in starts])
    near = np.array([labels[max(0, s - window) : s + 2 * window].any() for s in starts], dtype=bool)
    kinds = {f.kind for f in series.faults}
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    positive = covered >= 1 if kind == "spike" else covered == window
    negative = ~near
    auc = roc_auc(batch.scores[positive], batch.scores[negative])
    correct = 0
    counted = 0
    for k, fault in enumerate(series.faults):
        rows = [
            i
            for i in np.flatnonzero(positive)
            if k in series.fault_index[starts[i] : starts[i] + window]
        ]
        if not rows:
            continue
        counted += 1
        mean_share = batch.contributions[rows].mean(axis=0)
        correct += batch.channels[int(np.argmax(mean_share))] == fault.channel
    return DetectionResult(
        kind=kind,
        auc=auc,
        top_channel_accuracy=correct / counted if counted else float("nan"),
        n_faults=counted,
        n_positive_windows=int(positive.sum()),
        n_negative_windows=int(negative.sum()),
    )


def series_readings(
    series: PlantSeries, asset: str, start_ts: float = 1_700_000_000.0, period_s: float = 300.0
) -> list[Reading]:
    """A plant series as multichannel Readings of one asset, one every ``period_s`` seconds.

    Example:
        >>> series = SyntheticPlant().generate(3)
        >>> [r.ts for r in series_readings(series, "pump-1", start_ts=0.0, period_s=60.0)]
        [0.0, 60.0, 120.0]
    """
    names = series.channels
    return [
        Reading(asset, start_ts + i * period_s, dict(zip(names, row.tolist(), strict=True)))
        for i, row in enumerate(series.values)
    ]


def interleave(*streams: Sequence[Reading]) -> list[Reading]:
    """Merge per-asset streams into one, ordered by event time (ties: argument order), as a
    Kafka partition carrying several assets would deliver them.

    Example:
        >>> a = [Reading("a", 0.0, {"x": 1.0}), Reading("a", 2.0, {"x": 1.0})]
        >>> b = [Reading("b", 1.0, {"x": 1.0})]
        >>> [r.asset for r in interleave(a, b)]
        ['a', 'b', 'a']
    """
    keyed = [(r.ts, k, i, r) for k, stream in enumerate(streams) for i, r in enumerate(stream)]
    keyed.sort(key=lambda item: (item[0], item[1], item[2]))
    return [item[3] for item in keyed]
