"""A simulated industrial fleet: pumps, compressors and fan motors with labelled faults.

Why it exists: a detector is only as credible as the data it is shown. This module makes a
fleet whose normal behaviour has the structure real telemetry has — channels tied together by
physics through the asset's load and speed, a daily demand cycle with shift changes, operator
load changes, slow thermal lag, an unobserved ambient temperature, sensor noise — and faults
that break those ties the way real faults do, each with a label saying when, where and which
channel an operator should look at. Pure numpy, seeded, vectorised (a fleet of nine assets
over ten days of 5-minute readings takes a few tens of milliseconds).

Every asset kind reports the same six channels, :data:`FLEET_CHANNELS`, so one model group
(one channel list) can serve the whole fleet. What each channel measures, per kind:

- pump (centrifugal, VFD-driven): flow = discharge flow (m³/h), pressure = discharge pressure
  (bar g), temperature = drive-end bearing (°C), vibration = bearing-housing velocity RMS
  (mm/s), current = motor phase current (A), speed = shaft speed (rpm);
- compressor (rotary screw, load/unload control): flow = the plant's consumption at the header
  flow meter (m³/min free air), pressure = header pressure after the dryer (bar g), the rest
  as for a pump;
- motor (a VFD motor driving a centrifugal fan): flow = airflow (m³/s), pressure = the fan's
  static pressure (kPa), the rest as for a pump.

:data:`CHANNEL_UNITS` has the units by kind. A reading is what a plant historian keeps: each
value is the mean over its reading period (5 minutes by default).

The physics, per kind (``u`` is the demand in [0, 1]: a daily two-shift profile with smooth
shift changes and a lunch dip, operator set-point changes every 3–9 hours, a slow wander):

- **pump**: a VFD sets the speed fraction ``s`` from demand; the operating point is where the
  pump curve ``p = p0·s² − a·q²`` meets the fixed system curve ``p = p_static + k·q²`` (the
  affinity laws hold along it: flow ≈ ∝ speed, pressure ∝ speed², power ≈ ∝ speed³);
  hydraulic power ``Q·p`` over an efficiency that falls off the best-efficiency point gives
  shaft power, the motor current follows it (magnetising plus load current) and the motor's
  slip lowers the speed a little under load; vibration rises with speed² (unbalance) and off
  the best-efficiency point (recirculation).
- **compressor**: fixed speed; it loads and unloads every minute or two to keep its receiver
  between two pressure set-points (simulated at 5-second resolution). The loaded share of each
  cycle equals demand over capacity, so the current, the shaft speed (the motor slips more
  when loaded) and the bearing temperature follow the loaded share; the header pressure sits
  in the band, less the dryer's drop, which grows with flow²; when demand exceeds capacity
  the compressor stays loaded and the pressure sags below the band.
- **motor**: a motor driving a centrifugal fan through fixed ductwork: the fan laws (airflow ∝
  speed, static pressure ∝ density·speed², power ∝ density·speed³), the air density following
  the ambient temperature.

Temperatures follow heat input through a first-order thermal lag (30–50 minutes) on top of an
ambient temperature with a daily cycle that no channel measures. Sensor noise is about 1 % of
each instrument's span; vibration has multiplicative noise. Faults (:data:`FAULT_KINDS`, with
:data:`DEFAULT_MAGNITUDE`):

- ``bearing_wear``: a defect appears (vibration + 20 % of the final rise at once) and grows
  (∝ elapsed share^1.5) to ``1 + magnitude`` times the normal vibration, with impulsive bursts;
  friction heat raises the bearing temperature by up to ~13 °C and the current a little.
  Primary channel: vibration.
- ``cavitation`` (pumps only): within half an hour the pump curve breaks down (12 % less head
  at full severity, so less flow and pressure), flow and pressure turn erratic and vibration
  rises broadband. Primary channel: vibration.
- ``leak`` (pumps and compressors), reaching ``magnitude`` of rated flow within half an hour:
  pump — a leak downstream of the flow meter opens a parallel path, so the pump runs further
  out on its curve: flow and current rise while the pressure drops below what the speed
  implies (primary channel: flow, the largest change); compressor — a leak between compressor
  and header meter (a drain, a receiver gasket): the compressor delivers the leak on top of
  the same metered flow, so its loaded share, current, slip and bearing temperature rise for
  the flow it delivers, and at peak demand it saturates and the pressure sags (primary
  channel: current).
- ``stuck``, ``drift``, ``spike``: sensor faults on the channel the fault names, nothing else
  changes: a stuck sensor repeats its reading from the fault's first step, a drifting one
  moves linearly away to ``magnitude`` noise standard deviations at the end (30: a failing
  transmitter, about 30 % of span), a spike is one reading off by ``magnitude`` (10) standard
  deviations of the channel's normal spread.

The same asset (kind, seed, period) gives the same series with or without faults: a fault
changes the readings inside its span (and the thermal-lag tail of a physical fault, which
decays over two to three hours after it, within one 32-step window), nothing else.

Example:
    >>> series = Asset("pump", seed=3).generate(576, [AssetFault("leak", start=300, length=144)])
    >>> series.values.shape, series.faults[0].channel_for("pump"), int(series.labels.sum())
    ((576, 6), 'flow', 144)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from streamvae.errors import ConfigError, InputError
from streamvae.types import Reading

__all__ = [
    "ASSET_KINDS",
    "CHANNEL_UNITS",
    "DEFAULT_MAGNITUDE",
    "FAULT_ASSETS",
    "FAULT_KINDS",
    "FLEET_CHANNELS",
    "SENSOR_FAULTS",
    "Asset",
    "AssetFault",
    "AssetSeries",
    "fault_applies",
]

FloatArray = npt.NDArray[np.float64]
AssetKind = Literal["pump", "compressor", "motor"]
FaultKind = Literal["bearing_wear", "cavitation", "stuck", "drift", "spike", "leak"]

FLEET_CHANNELS: tuple[str, ...] = (
    "flow",
    "pressure",
    "temperature",
    "vibration",
    "current",
    "speed",
)
ASSET_KINDS: tuple[AssetKind, ...] = get_args(AssetKind)
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
SENSOR_FAULTS: tuple[FaultKind, ...] = ("stuck", "drift", "spike")
# Which asset kinds each fault can happen to (a compressor does not cavitate, a fan has no
# pressurised line to leak from).
FAULT_ASSETS: Mapping[str, tuple[AssetKind, ...]] = {
    "bearing_wear": ASSET_KINDS,
    "cavitation": ("pump",),
    "stuck": ASSET_KINDS,
    "drift": ASSET_KINDS,
    "spike": ASSET_KINDS,
    "leak": ("pump", "compressor"),
}
# The channel an alert should name first for a physical fault, per asset kind.
_PRIMARY: Mapping[str, Mapping[str, str]] = {
    "bearing_wear": dict.fromkeys(ASSET_KINDS, "vibration"),
    "cavitation": {"pump": "vibration"},
    "leak": {"pump": "flow", "compressor": "current"},
}
# bearing_wear: extra vibration at the end, as a multiple of normal; cavitation: severity
# (1 = fully developed); leak: leak flow as a share of rated flow (pump) or capacity
# (compressor); drift: noise standard deviations at the end; spike: channel standard
# deviations; stuck: unused.
DEFAULT_MAGNITUDE: Mapping[str, float] = {
    "bearing_wear": 1.5,
    "cavitation": 1.0,
    "leak": 0.25,
    "drift": 30.0,
    "spike": 10.0,
    "stuck": 0.0,
}
CHANNEL_UNITS: Mapping[str, Mapping[str, str]] = {
    "pump": {
        "flow": "m³/h",
        "pressure": "bar(g)",
        "temperature": "°C",
        "vibration": "mm/s",
        "current": "A",
        "speed": "rpm",
    },
    "compressor": {
        "flow": "m³/min",
        "pressure": "bar(g)",
        "temperature": "°C",
        "vibration": "mm/s",
        "current": "A",
        "speed": "rpm",
    },
    "motor": {
        "flow": "m³/s",
        "pressure": "kPa",
        "temperature": "°C",
        "vibration": "mm/s",
        "current": "A",
        "speed": "rpm",
    },
}
_KIND_CODE = {k: i for i, k in enumerate(ASSET_KINDS)}
_SQRT3_V = math.sqrt(3.0) * 400.0  # 400 V three-phase supply
_SUBSTEPS = 60  # compressor cycle resolution within one reading period (5 s at 5 min)


def fault_applies(fault: str, asset_kind: str) -> bool:
    """Whether a fault kind can happen to an asset kind.

    Example:
        >>> fault_applies("cavitation", "pump"), fault_applies("cavitation", "compressor")
        (True, False)
    """
    return asset_kind in FAULT_ASSETS.get(fault, ())


@dataclass(frozen=True, slots=True)
class AssetFault:
    """A fault over steps ``[start, start + length)`` of one asset.

    ``channel`` is required for a sensor fault (``stuck``, ``drift``, ``spike``: the sensor
    that fails) and must be left out for a physical fault, whose channel follows from the
    physics and the asset kind (:meth:`channel_for`). ``magnitude`` of None takes the kind's
    default (:data:`DEFAULT_MAGNITUDE`, whose comments give each kind's unit). A spike is one
    reading, so its length is 1.

    Example:
        >>> AssetFault("drift", start=100, length=288, channel="pressure").end
        388
        >>> AssetFault("bearing_wear", start=100, length=288).channel_for("motor")
        'vibration'
    """

    kind: FaultKind
    start: int
    length: int = 1
    channel: str | None = None
    magnitude: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(
                f"AssetFault.kind must be one of {list(FAULT_KINDS)}, got {self.kind!r}"
            )
        for name in ("start", "length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"AssetFault.{name} must be an integer step, got {value!r}")
        if self.start < 0 or self.length < 1:
            raise ConfigError(
                f"AssetFault needs start >= 0 and length >= 1 (steps), got start={self.start}, "
                f"length={self.length}"
            )
        if self.kind == "spike" and self.length != 1:
            raise ConfigError(
                f"a spike is a single reading: AssetFault('spike') needs length=1, got "
                f"{self.length}; use 'drift' or 'stuck' for a sensor that stays wrong"
            )
        if self.kind in SENSOR_FAULTS:
            if self.channel not in FLEET_CHANNELS:
                raise ConfigError(
                    f"AssetFault({self.kind!r}) is a sensor fault: name the failing sensor with "
                    f"channel=one of {list(FLEET_CHANNELS)}, got {self.channel!r}"
                )
        elif self.channel is not None:
            raise ConfigError(
                f"AssetFault({self.kind!r}) is a physical fault whose channels follow from the "
                f"physics; leave channel unset (got {self.channel!r})"
            )
        if self.magnitude is not None:
            m = self.magnitude
            ok = isinstance(m, int | float) and not isinstance(m, bool) and math.isfinite(m)
            if not ok or m <= 0:
                raise ConfigError(
                    f"AssetFault.magnitude must be a finite number > 0 or None (the kind's "
                    f"default {DEFAULT_MAGNITUDE[self.kind]}), got {m!r}"
                )
            if self.kind == "stuck":
                raise ConfigError("AssetFault('stuck') has no magnitude: leave it None")
            if self.kind == "cavitation" and m > 1.0:
                raise ConfigError(
                    f"AssetFault('cavitation').magnitude is a severity in (0, 1], got {m}"
                )
            if self.kind == "leak" and m > 0.8:
                raise ConfigError(
                    f"AssetFault('leak').magnitude is the leak's share of rated flow, at most "
                    f"0.8, got {m}"
                )

    @property
    def end(self) -> int:
        """The first step after the fault."""
        return self.start + self.length

    @property
    def effective_magnitude(self) -> float:
        return DEFAULT_MAGNITUDE[self.kind] if self.magnitude is None else float(self.magnitude)

    def channel_for(self, asset_kind: str) -> str:
        """The channel the label names (and a good alert names first) on an asset kind."""
        if self.channel is not None:
            return self.channel
        primary = _PRIMARY[self.kind].get(asset_kind)
        if primary is None:
            raise ConfigError(
                f"a {asset_kind} cannot have {self.kind!r}: it happens to "
                f"{list(FAULT_ASSETS[self.kind])} only"
            )
        return primary


@dataclass(frozen=True, slots=True)
class AssetSeries:
    """A generated series of one asset: ``values`` (steps, 6) in engineering units.

    ``labels[t]`` is True while a fault is active, ``fault_index[t]`` the index into
    ``faults`` of that fault (-1 when none); ``noise_sd`` is each channel's sensor noise
    standard deviation (at ``noise=1`` what a drift's magnitude is measured in).

    Example:
        >>> s = Asset("motor", seed=1).generate(3)
        >>> [r.ts for r in s.readings("motor-01", start_ts=0.0)], s.channels == FLEET_CHANNELS
        ([0.0, 300.0, 600.0], True)
    """

    kind: str
    values: FloatArray
    channels: tuple[str, ...]
    labels: npt.NDArray[np.bool_]
    fault_index: npt.NDArray[np.int64]
    faults: tuple[AssetFault, ...]
    noise_sd: tuple[float, ...]
    period_s: float

    def readings(self, asset: str, start_ts: float = 1_700_000_000.0) -> list[Reading]:
        """The series as multichannel Readings of ``asset``, one every ``period_s``."""
        names = self.channels
        p = self.period_s
        return [
            Reading(asset, start_ts + i * p, dict(zip(names, row, strict=True)))
            for i, row in enumerate(self.values.tolist())
        ]

    def channel(self, name: str) -> FloatArray:
        """One channel's values."""
        return self.values[:, self.channels.index(name)]


@dataclass(frozen=True, slots=True)
class Asset:
    """One simulated asset: its kind, its seed (size, daily pattern, noise), its period.

    ``noise`` scales every sensor's noise (1 = the documented levels, about 1 % of span; a
    drift's size is measured in the noise at ``noise=1``, so it keeps its size at any noise).
    The seed draws the asset's own sizes (±10 %), the timing of its shifts (±1 h), its demand
    levels and its ambient, so assets of one kind are alike but not identical.

    Example:
        >>> a = Asset("compressor", seed=2)
        >>> s = a.generate(288)  # one day of 5-minute readings
        >>> bool(6.0 < s.channel("pressure").mean() < 8.0), s.kind
        (True, 'compressor')
    """

    kind: AssetKind
    seed: int = 0
    period_s: float = 300.0
    noise: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ASSET_KINDS:
            raise ConfigError(f"Asset.kind must be one of {list(ASSET_KINDS)}, got {self.kind!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"Asset.seed must be an integer >= 0, got {self.seed!r}")
        p = self.period_s
        if not isinstance(p, int | float) or not math.isfinite(p) or not 1.0 <= p <= 3600.0:
            raise ConfigError(
                f"Asset.period_s must be between 1 and 3600 seconds (the physics has time "
                f"constants of minutes to hours), got {p!r}"
            )
        n = self.noise
        if not isinstance(n, int | float) or not math.isfinite(n) or n < 0:
            raise ConfigError(f"Asset.noise must be a finite number >= 0, got {n!r}")

    def generate(
        self, n_steps: int, faults: Sequence[AssetFault] = (), time_of_day_s: float = 0.0
    ) -> AssetSeries:
        """``n_steps`` readings with ``faults`` injected; step 0 is at ``time_of_day_s``
        seconds after midnight (the shifts follow the clock; pass ``start_ts % 86400`` to
        align them with UTC event times).

        Faults must apply to this kind (:func:`fault_applies`), fit in the series and not
        overlap one another.
        """
        if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 1:
            raise InputError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        if not math.isfinite(time_of_day_s):
            raise InputError(f"time_of_day_s must be a finite number, got {time_of_day_s!r}")
        faults = tuple(faults)
        self._check_faults(n_steps, faults)
        n = n_steps
        rng = np.random.default_rng([self.seed, _KIND_CODE[self.kind]])
        t = np.arange(n, dtype=np.float64) * self.period_s + time_of_day_s % 86_400.0
        hours = t / 3600.0
        ambient = (
            rng.uniform(16.0, 26.0)
            + 5.0 * np.sin(2 * np.pi * (hours - 9.0) / 24.0)
            + _ar1(rng, n, self._phi(6 * 3600.0), 1.0)
        )
        demand = _demand(rng, hours, self.period_s, self.kind)
        # physical fault profiles, 0 outside their spans
        wear, cavitation, leak = np.zeros(n), np.zeros(n), np.zeros(n)
        for f in faults:
            span = slice(f.start, f.end)
            elapsed = (np.arange(f.length) + 1.0) / f.length
            onset = np.minimum(1.0, (np.arange(f.length) + 1.0) * self.period_s / 1800.0)
            m = f.effective_magnitude
            if f.kind == "bearing_wear":
                wear[span] = m * (0.2 + 0.8 * elapsed**1.5)
            elif f.kind == "cavitation":
                cavitation[span] = m * onset
            elif f.kind == "leak":
                leak[span] = m * onset
        physics = {"pump": self._pump, "compressor": self._compressor, "motor": self._motor}
        clean, noise_sd = physics[self.kind](rng, demand, ambient, wear, cavitation, leak)
        mult = 0.04 + 0.1 * np.minimum(wear, 1.0)  # vibration noise bursts grow with the defect
        nominal = np.array([noise_sd[c] for c in FLEET_CHANNELS])
        sd = nominal * self.noise
        values = clean + rng.normal(0.0, 1.0, clean.shape) * sd
        vib = FLEET_CHANNELS.index("vibration")
        values[:, vib] *= np.exp(self.noise * mult * rng.normal(0.0, 1.0, n))
        labels = np.zeros(n, dtype=bool)
        fault_index = np.full(n, -1, dtype=np.int64)
        healthy = ~_spans(n, faults)
        channel_sd = (values[healthy] if healthy.sum() > 1 else values).std(axis=0)
        for k, f in enumerate(faults):
            labels[f.start : f.end] = True
            fault_index[f.start : f.end] = k
            if f.kind not in SENSOR_FAULTS:
                continue
            assert f.channel is not None
            j = FLEET_CHANNELS.index(f.channel)
            sign = 1.0 if np.random.default_rng([self.seed, f.start, k]).random() < 0.5 else -1.0
            if f.kind == "stuck":
                values[f.start : f.end, j] = values[f.start, j]
            elif f.kind == "drift":
                ramp = (np.arange(f.length) + 1.0) / f.length
                values[f.start : f.end, j] += sign * f.effective_magnitude * nominal[j] * ramp
            else:  # spike; vibration cannot go below zero, so its spikes go up
                up = 1.0 if f.channel == "vibration" else sign
                values[f.start, j] += up * f.effective_magnitude * channel_sd[j]
        return AssetSeries(
            self.kind,
            values,
            FLEET_CHANNELS,
            labels,
            fault_index,
            faults,
            tuple(float(x) for x in sd),
            float(self.period_s),
        )

    # ------------------------------------------------------------------ internals

    def _check_faults(self, n_steps: int, faults: tuple[AssetFault, ...]) -> None:
        for f in faults:
            if not isinstance(f, AssetFault):
                raise ConfigError(f"faults must be AssetFault records, got {type(f).__name__}")
            if not fault_applies(f.kind, self.kind):
                raise ConfigError(
                    f"a {self.kind} cannot have {f.kind!r}: it happens to "
                    f"{list(FAULT_ASSETS[f.kind])} only; put it on one of those"
                )
            if f.end > n_steps:
                raise ConfigError(
                    f"{f} does not fit in {n_steps} steps: it ends at step {f.end}; generate "
                    "more steps or start it earlier"
                )
        spans = sorted((f.start, f.end) for f in faults)
        for (_, a_end), (b_start, _) in itertools.pairwise(spans):
            if b_start < a_end:
                raise ConfigError(
                    f"faults on one asset must not overlap (one ends at step {a_end}, the next "
                    f"starts at {b_start}): each label needs one cause; move one of them"
                )

    def _phi(self, tau_s: float) -> float:
        return math.exp(-self.period_s / tau_s)

    def _alpha(self, tau_s: float) -> float:
        return 1.0 - math.exp(-self.period_s / tau_s)

    def _pump(
        self,
        rng: np.random.Generator,
        u: FloatArray,
        ambient: FloatArray,
        wear: FloatArray,
        cav: FloatArray,
        leak: FloatArray,
    ) -> tuple[FloatArray, dict[str, float]]:
        n = u.size
        q_rated = 120.0 * rng.uniform(0.9, 1.1)  # m³/h at rated speed and design pressure
        p0 = rng.uniform(7.6, 8.4)  # shut-off pressure at rated speed, bar
        p_static = rng.uniform(1.7, 2.3)  # static head of the system, bar
        p_design = 6.0
        a, k = p0 - p_design, p_design - p_static  # so q = 1 at s = 1
        eta_bep = rng.uniform(0.74, 0.80)
        vib_size = rng.uniform(0.85, 1.15)
        erratic = rng.normal(0.0, 1.0, (3, n))  # cavitation's turbulence, drawn always
        s = 0.68 + 0.32 * u  # VFD speed fraction
        g = 1.0 - 0.12 * cav  # head breakdown under cavitation
        # operating point: pump curve meets system curve plus the leak's parallel path
        lo, hi = np.zeros(n), p0 * s * s * g
        for _ in range(40):
            p = 0.5 * (lo + hi)
            q_pump = np.sqrt(np.maximum(p0 * s * s - p / g, 0.0) / a)
            q_out = np.sqrt(np.maximum(p - p_static, 0.0) / k) + leak * np.sqrt(p / p_design)
            above = q_pump > q_out
            lo = np.where(above, p, lo)
            hi = np.where(above, hi, p)
        p = 0.5 * (lo + hi)
        q = np.sqrt(np.maximum(p0 * s * s - p / g, 0.0) / a)
        ratio = q / s  # 1 at the best-efficiency point
        eta = eta_bep * (1.0 - 0.5 * (ratio - 1.0) ** 2) * (1.0 - 0.06 * cav)
        flow = q_rated * q * (1.0 + 0.05 * cav * erratic[0])
        pressure = p * (1.0 + 0.04 * cav * erratic[1])
        p_motor = 1.15 * q_rated * p_design / 36.0 / eta_bep  # kW, a motor with 15 % margin
        power = q_rated * q * p / 36.0 / eta + 0.04 * p_motor * wear  # shaft kW
        i_full = p_motor * 1000.0 / (_SQRT3_V * 0.86 * 0.93)
        current = np.hypot(0.35 * i_full, 0.94 * i_full * power / p_motor)
        speed = 1500.0 * s * (1.0 - 0.015 * power / p_motor)
        heat = 10.0 * s * s + 14.0 * power / p_motor + 9.0 * wear
        temperature = ambient + _low_pass(heat, self._alpha(40 * 60.0))
        vibration = vib_size * (0.5 + 1.5 * s * s + 1.2 * (ratio - 1.0) ** 2)
        vibration = vibration * (1.0 + wear) + cav * 2.2 * (1.0 + 0.4 * np.abs(erratic[2]))
        noise = {
            "flow": 0.01 * q_rated,
            "pressure": 0.05,
            "temperature": 0.25,
            "vibration": 0.03,
            "current": 0.01 * i_full,
            "speed": 2.0,
        }
        return (
            np.stack([flow, pressure, temperature, vibration, current, speed], axis=1),
            noise,
        )

    def _compressor(
        self,
        rng: np.random.Generator,
        u: FloatArray,
        ambient: FloatArray,
        wear: FloatArray,
        cav: FloatArray,
        leak: FloatArray,
    ) -> tuple[FloatArray, dict[str, float]]:
        n = u.size
        capacity = 25.0 * rng.uniform(0.9, 1.1)  # m³/min free air delivered when loaded
        p_load = rng.uniform(6.4, 6.8)  # loads below this, bar
        band = rng.uniform(0.7, 0.9)  # unloads above p_load + band
        cycle_min_s = rng.uniform(60.0, 100.0)  # shortest load/unload cycle (at 50 % duty)
        i_full = 160.0 * 1000.0 / (_SQRT3_V * 0.9 * 0.95) * rng.uniform(0.9, 1.1)
        vib_size = rng.uniform(0.85, 1.15)
        phase0 = rng.uniform()
        consumption = capacity * (0.28 + 0.52 * u)  # the plant's demand, m³/min
        demand = consumption + leak * capacity
        duty = demand / capacity
        # the load/unload cycle, at _SUBSTEPS points per reading: the loaded share of a
        # cycle equals the duty, its length is shortest at 50 % duty
        dt = self.period_s / _SUBSTEPS
        f = np.repeat(np.clip(duty, 0.02, 1.0), _SUBSTEPS)
        fc = np.clip(f, 0.02, 0.98)
        cycle_s = cycle_min_s / 4.0 * (1.0 / (1.0 - fc) + 1.0 / fc)
        phase = np.mod(phase0 + np.cumsum(dt / cycle_s), 1.0)
        saturated = f >= 1.0
        loaded = saturated | (phase < f)
        rising = p_load + band * phase / np.maximum(f, 1e-9)
        falling = p_load + band - band * (phase - f) / np.maximum(1.0 - f, 1e-9)
        saw = np.where(saturated, p_load, np.where(phase < f, rising, falling))
        sag = _low_pass(4.0 * np.maximum(duty - 1.0, 0.0), self._alpha(600.0))
        # the header sensor sits after the dryer and filters: their drop grows with flow²
        drop = rng.uniform(0.25, 0.4) * (consumption / capacity) ** 2
        pressure = saw.reshape(n, _SUBSTEPS).mean(axis=1) - sag - drop
        share = loaded.reshape(n, _SUBSTEPS).mean(axis=1)
        i_loaded = i_full * (0.9 + 0.08 * (pressure - p_load) / band)
        current = 0.38 * i_full + (i_loaded - 0.38 * i_full) * share + 0.03 * i_full * wear
        flow = consumption
        speed = 2994.0 - 18.0 * share - 4.0 * wear  # the motor's slip when loaded
        heat = 6.0 + 16.0 * share + 9.0 * wear
        temperature = ambient + _low_pass(heat, self._alpha(30 * 60.0))
        vibration = vib_size * (1.1 + 0.9 * share) * (1.0 + wear)
        noise = {
            "flow": 0.015 * capacity,
            "pressure": 0.03,
            "temperature": 0.3,
            "vibration": 0.03,
            "current": 0.01 * i_full,
            "speed": 1.0,
        }
        return (
            np.stack([flow, pressure, temperature, vibration, current, speed], axis=1),
            noise,
        )

    def _motor(
        self,
        rng: np.random.Generator,
        u: FloatArray,
        ambient: FloatArray,
        wear: FloatArray,
        cav: FloatArray,
        leak: FloatArray,
    ) -> tuple[FloatArray, dict[str, float]]:
        q_rated = 12.0 * rng.uniform(0.9, 1.1)  # m³/s at rated speed
        p_rated = 1.2 * rng.uniform(0.9, 1.1)  # kPa static pressure at rated speed, 20 °C
        eta = rng.uniform(0.68, 0.76)
        vib_size = rng.uniform(0.85, 1.15)
        s = 0.55 + 0.45 * u
        density = 293.15 / (273.15 + ambient)  # relative to 20 °C
        flow = q_rated * s
        pressure = p_rated * density * s * s
        p_motor = 1.2 * q_rated * p_rated / 0.72  # kW
        power = flow * pressure / eta + 0.04 * p_motor * wear
        i_full = p_motor * 1000.0 / (_SQRT3_V * 0.85 * 0.92)
        current = np.hypot(0.35 * i_full, 0.94 * i_full * power / p_motor)
        speed = 1500.0 * s * (1.0 - 0.02 * power / p_motor)
        heat = 8.0 * s * s + 12.0 * power / p_motor + 9.0 * wear
        temperature = ambient + _low_pass(heat, self._alpha(50 * 60.0))
        vibration = vib_size * (0.6 + 1.8 * s * s) * (1.0 + wear)
        noise = {
            "flow": 0.015 * q_rated,
            "pressure": 0.015 * p_rated,
            "temperature": 0.25,
            "vibration": 0.03,
            "current": 0.01 * i_full,
            "speed": 2.0,
        }
        return (
            np.stack([flow, pressure, temperature, vibration, current, speed], axis=1),
            noise,
        )


# Demand levels (night, day) per kind: a pump station and a ventilation fan follow the shifts,
# a compressor's share of capacity stays below saturation in normal operation.
_LEVELS: Mapping[str, tuple[float, float]] = {
    "pump": (0.25, 0.85),
    "compressor": (0.2, 0.8),
    "motor": (0.3, 0.9),
}


def _demand(rng: np.random.Generator, hours: FloatArray, period_s: float, kind: str) -> FloatArray:
    """Demand in [0, 1]: two shifts (about 06:00–22:00) with smooth changes, set-point changes
    every 3–9 hours ramped over half an hour, and a slow wander."""
    night, day = _LEVELS[kind]
    night += rng.uniform(-0.05, 0.05)
    day += rng.uniform(-0.05, 0.05)
    centre = 14.0 + rng.uniform(-1.0, 1.0)
    x = 2.0 * np.pi * (hours - centre) / 24.0
    shifts = 0.5 * (1.0 + np.tanh(3.0 * (np.cos(x) + 0.5)))
    lunch = 0.06 * np.exp(-0.5 * ((np.mod(hours, 24.0) - 12.5 - centre + 14.0) / 0.5) ** 2)
    steps_per_hour = 3600.0 / period_s
    changes = _set_points(rng, hours.size, steps_per_hour, size=0.04)
    wander = _ar1(rng, hours.size, math.exp(-period_s / 3600.0), 0.015)
    u = night + (day - night) * shifts - lunch + changes + wander
    return np.clip(u, 0.0, 1.0)


def _set_points(rng: np.random.Generator, n: int, steps_per_hour: float, size: float) -> FloatArray:
    """Operator set-point changes at random times, each ramped linearly over half an hour:
    offsets from the schedule, drawn afresh each time (the plant returns to its schedule
    rather than wandering off: a few days of normal operation show the whole range)."""
    out = np.zeros(n)
    level = 0.0
    ramp = max(1, round(0.5 * steps_per_hour))
    i = int(rng.uniform(1.0, 6.0) * steps_per_hour)
    while i < n:
        target = float(np.clip(rng.normal(0.0, size), -2 * size, 2 * size))
        stop = min(n, i + ramp)
        out[i:stop] = np.linspace(level, target, ramp)[: stop - i]
        out[stop:] = target
        level = target
        i += max(1, int(rng.uniform(3.0, 9.0) * steps_per_hour))
    return out


def _spans(n: int, faults: Sequence[AssetFault]) -> npt.NDArray[np.bool_]:
    """True on the steps of any fault."""
    out = np.zeros(n, dtype=bool)
    for f in faults:
        out[f.start : f.end] = True
    return out


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> FloatArray:
    """A stationary AR(1) series with standard deviation ``sd``."""
    shocks = rng.normal(0.0, sd * math.sqrt(1.0 - phi * phi), n).tolist()
    out = [0.0] * n
    level = rng.normal(0.0, sd)
    for i, shock in enumerate(shocks):
        level = phi * level + shock
        out[i] = level
    return np.asarray(out)


def _low_pass(x: FloatArray, alpha: float) -> FloatArray:
    """First-order lag, starting in steady state at the first value."""
    values = x.tolist()
    out = [0.0] * len(values)
    acc = values[0]
    for i, v in enumerate(values):
        acc += alpha * (v - acc)
        out[i] = acc
    return np.asarray(out)
