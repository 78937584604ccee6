"""Continual learning: what a retrain learns from, when it runs, and whether its model serves.

Plants drift (seasons, load, wear), so the model that learned *normal* in the warm-up slowly
stops knowing it. Retraining on recent normal data follows the drift; the danger is learning
a fault as normal. Four parts, each a small piece of the Detector's side loop (DESIGN §1):

- :class:`TrainingBuffer` — windows judged normal, never those of an asset whose alert
  lifecycle is active, and not the ``guard_windows`` before an anomaly either (a fault's
  onset looks normal to the threshold for a while) nor the ``guard_windows`` after it. A
  bounded, time-biased reservoir: each admitted window replaces a pseudo-random one once it is
  full, so the chance a window survives decays exponentially with the admissions after it
  (recency weighting with a bounded memory), and windows older than ``horizon_s`` of event
  time are not trained on.
- :class:`RetrainTrigger` — every ``every_windows`` scored windows or ``every_s`` of event time
  since the serving model was installed, and early when the score stream drifts (river's
  ADWIN on means of ``drift_block`` scores); never with fewer than ``min_windows`` buffered.
- :func:`train_candidate` — a pure function (it runs in a background process): refit the
  scaler on the buffer, fine-tune a copy of the serving model (warm start, ``epochs``), and
  pass it through the validation gate.
- :func:`validation_gate` — the candidate against the serving model on the latest
  ``holdout`` of the buffer (never trained on) plus synthetic faults injected into it at
  three sizes (¼, ½ and all of ``fault_sd``): the candidate is promoted when its ROC AUC of
  faults against normal windows (the mean over the sizes) is at most ``tolerance`` below the
  serving model's (scores of two models are on different scales; AUC
  is not). A candidate that diverged or scores anything non-finite is rejected.

:class:`~streamvae.continual.Retrainer` puts them together around a Detector.

Example:
    >>> cfg = RetrainConfig(every_windows=50_000, min_windows=1_000)
    >>> cfg.every_windows, cfg.guard_windows
    (50000, 32)
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streamvae.config import (
    ScoringConfig,
    TrainConfig,
    _DictMixin,
    _finite_float,
    _positive_int,
    _require,
)
from streamvae.model.scorer import Scorer
from streamvae.model.vae import RecurrentVAE
from streamvae.scaling import StandardScaler

__all__ = [
    "Candidate",
    "GateDecision",
    "RetrainConfig",
    "RetrainTrigger",
    "TrainingBuffer",
    "TrainingSet",
    "train_candidate",
    "validation_gate",
]

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
_FAULT_SHARES = (0.25, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class RetrainConfig(_DictMixin):
    """When to retrain, on what, and how strict the gate is (``[detector.retrain]``).

    ``every_windows`` / ``every_s``: scored windows / event-time seconds since the serving
    model was installed (0 turns that reason off); ``drift`` retrains early on a drifting
    score stream. ``capacity`` bounds the buffer (windows; ``capacity × window × channels × 4``
    bytes), ``keep_every`` keeps every n-th normal window of an asset, ``horizon_s`` is how far
    back a retrain looks. ``holdout`` is the latest fraction of the buffer the gate judges on,
    ``tolerance`` the AUC the candidate may lose, ``fault_sd`` the size of the injected faults
    (in standard deviations of the channel), ``epochs`` the fine-tuning budget.

    Example:
        >>> RetrainConfig(every_s=86_400.0).to_dict()["every_s"]
        86400.0
    """

    every_windows: int = 200_000
    every_s: float = 7 * 86_400.0
    drift: bool = True
    drift_delta: float = 0.002
    drift_block: int = 512
    min_windows: int = 2_000
    capacity: int = 8_192
    keep_every: int = 4
    horizon_s: float = 30 * 86_400.0
    guard_windows: int = 32
    holdout: float = 0.2
    tolerance: float = 0.02
    fault_sd: float = 4.0
    epochs: int = 40

    def __post_init__(self) -> None:
        owner = "RetrainConfig"
        _positive_int(owner, "every_windows", self.every_windows, 0)
        _finite_float(owner, "every_s", self.every_s, low=0.0)
        _require(
            isinstance(self.drift, bool),
            owner,
            "drift",
            f"must be true or false, got {self.drift!r}",
        )
        _finite_float(owner, "drift_delta", self.drift_delta, low=0.0, high=1.0, low_open=True)
        _positive_int(owner, "drift_block", self.drift_block)
        _positive_int(owner, "min_windows", self.min_windows, 16)
        _positive_int(owner, "capacity", self.capacity, 16)
        _require(
            self.capacity >= self.min_windows,
            owner,
            "capacity",
            f"must be >= min_windows ({self.min_windows}), got {self.capacity}",
        )
        _positive_int(owner, "keep_every", self.keep_every)
        _finite_float(owner, "horizon_s", self.horizon_s, low=0.0, low_open=True)
        _positive_int(owner, "guard_windows", self.guard_windows, 0)
        _finite_float(owner, "holdout", self.holdout, low=0.05, high=0.5)
        _finite_float(owner, "tolerance", self.tolerance, low=0.0, high=1.0)
        _finite_float(owner, "fault_sd", self.fault_sd, low=0.0, low_open=True)
        _positive_int(owner, "epochs", self.epochs)


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """Buffered normal windows in event-time order: raw values (N, W, C), assets, end times.

    Example:
        >>> ts = TrainingSet(np.zeros((2, 4, 1), np.float32), ("a", "b"), np.array([1.0, 2.0]))
        >>> len(ts), ts.split(0.5)[1].assets
        (2, ('b',))
    """

    values: Float32Array
    assets: tuple[str, ...]
    end_ts: FloatArray

    def __len__(self) -> int:
        return len(self.assets)

    def split(self, holdout: float) -> tuple[TrainingSet, TrainingSet]:
        """(older part, latest ``holdout`` fraction): the gate judges on data never trained on."""
        n_hold = max(1, round(holdout * len(self)))
        cut = len(self) - n_hold
        return (
            TrainingSet(self.values[:cut], self.assets[:cut], self.end_ts[:cut]),
            TrainingSet(self.values[cut:], self.assets[cut:], self.end_ts[cut:]),
        )


class TrainingBuffer:
    """The retraining data of one model group (see the module docstring).

    The Detector calls :meth:`offer` with each normal window of an asset whose lifecycle is
    quiet and :meth:`void` when an asset's window is anomalous or its alert is active.

    Example:
        >>> buf = TrainingBuffer(RetrainConfig(min_windows=16, capacity=16, keep_every=1,
        ...                                    guard_windows=2), window=4, channels=1)
        >>> for i in range(5):
        ...     buf.offer("pump-1", float(i), np.full((4, 1), i), i)
        >>> len(buf)    # the two newest are still inside the guard band
        3
        >>> buf.void("pump-1", 5)   # an anomaly: the guard band before it is dropped
        >>> len(buf)
        3
    """

    def __init__(self, config: RetrainConfig, window: int, channels: int) -> None:
        self.config = config
        self._values = np.zeros((config.capacity, window, channels), np.float32)
        self._end = np.zeros(config.capacity, np.float64)
        self._assets: list[str] = []
        self._pending: dict[str, deque[tuple[int, float, Float32Array]]] = {}
        self._blocked: dict[str, int] = {}  # asset → first window count admitted again
        self.admitted = 0
        self.voided = 0

    def __len__(self) -> int:
        return len(self._assets)

    def offer(self, asset: str, end_ts: float, values: npt.ArrayLike, count: int) -> None:
        """A normal window of ``asset``, its ``count``-th; admitted once ``guard_windows``
        later windows of the asset were normal too."""
        if count < self._blocked.get(asset, 0):
            return
        guard = self.config.guard_windows
        pending = self._pending.get(asset)
        if pending is None:
            pending = self._pending[asset] = deque()
        pending.append((count, end_ts, np.asarray(values, np.float32)))
        while pending and pending[0][0] <= count - guard:
            _, ts, v = pending.popleft()
            self._admit(asset, ts, v)

    def void(self, asset: str, count: int) -> None:
        """An anomalous window (or an active alert) of ``asset`` at window count ``count``: drop
        its guard band and admit nothing of it for ``guard_windows`` windows."""
        pending = self._pending.pop(asset, None)
        if pending:
            self.voided += len(pending)
        self._blocked[asset] = count + self.config.guard_windows + 1

    def _admit(self, asset: str, end_ts: float, values: Float32Array) -> None:
        self.admitted += 1
        n = len(self._assets)
        if n < self.config.capacity:
            slot = n
            self._assets.append(asset)
        else:  # deterministic pseudo-random slot: a replay fills the buffer identically
            slot = zlib.crc32(f"{asset}|{end_ts!r}".encode()) % n
            self._assets[slot] = asset
        self._values[slot] = values
        self._end[slot] = end_ts

    def training_set(self, now_ts: float | None = None) -> TrainingSet:
        """The buffered windows within ``horizon_s`` of ``now_ts`` (default: the newest), in
        event-time order (then asset, so the order never depends on arrival)."""
        n = len(self._assets)
        if n == 0:
            return TrainingSet(np.zeros((0, *self._values.shape[1:]), np.float32), (), np.zeros(0))
        end = self._end[:n]
        newest = float(end.max()) if now_ts is None else now_ts
        keep = np.flatnonzero(end >= newest - self.config.horizon_s)
        order = sorted(keep.tolist(), key=lambda i: (end[i], self._assets[i]))
        return TrainingSet(
            self._values[order].copy(), tuple(self._assets[i] for i in order), end[order].copy()
        )


class RetrainTrigger:
    """Says when the serving model is due for a retrain (see the module docstring).

    Example:
        >>> t = RetrainTrigger(RetrainConfig(every_windows=100, every_s=0.0, drift=False))
        >>> t.observe([1.0] * 150, end_ts=10.0)
        >>> t.due(buffered=5_000)
        'windows'
    """

    def __init__(self, config: RetrainConfig) -> None:
        self.config = config
        self.reset(None)

    def reset(self, since_ts: float | None) -> None:
        """A model was installed (or a retrain started) at event time ``since_ts``."""
        self.windows = 0
        self.since_ts = since_ts
        self.last_ts: float | None = since_ts
        self.drifted = False
        self._sum = 0.0
        self._n = 0
        self._adwin: Any = None
        if self.config.drift:
            from river import drift

            self._adwin = drift.ADWIN(delta=self.config.drift_delta)  # type: ignore[no-untyped-call]

    def observe(self, scores: list[float], end_ts: float) -> None:
        """Scores of a batch of windows, the newest window's end time."""
        self.windows += len(scores)
        if self.since_ts is None:
            self.since_ts = end_ts
        if self.last_ts is None or end_ts > self.last_ts:
            self.last_ts = end_ts
        if self._adwin is None or self.drifted:
            return
        self._sum += math.fsum(scores)
        self._n += len(scores)
        block = self.config.drift_block
        if self._n >= block:  # one ADWIN input per block: µs per block, not per window
            self._adwin.update(self._sum / self._n)
            self._sum, self._n = 0.0, 0
            if self._adwin.drift_detected:
                self.drifted = True

    def due(self, buffered: int) -> str | None:
        """The reason a retrain is due (``windows``, ``time``, ``drift``), or None."""
        cfg = self.config
        if buffered < cfg.min_windows:
            return None
        if cfg.every_windows and self.windows >= cfg.every_windows:
            return "windows"
        if (
            cfg.every_s
            and self.since_ts is not None
            and self.last_ts is not None
            and self.last_ts - self.since_ts >= cfg.every_s
        ):
            return "time"
        if self.drifted:
            return "drift"
        return None


# ---------------------------------------------------------------------------- candidates


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The validation gate's verdict on a candidate, with its evidence (for logs, metrics).

    Example:
        >>> GateDecision(True, "auc 0.990 vs 0.985 serving", 0.99, 0.985, 400).promote
        True
    """

    promote: bool
    reason: str
    candidate_auc: float
    serving_auc: float
    n_holdout: int
    candidate_median: float = math.nan  # median holdout score, nats/value
    serving_median: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "candidate_auc": _jsonable(self.candidate_auc),
            "serving_auc": _jsonable(self.serving_auc),
            "n_holdout": self.n_holdout,
            "candidate_median": _jsonable(self.candidate_median),
            "serving_median": _jsonable(self.serving_median),
        }


def _jsonable(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A retrained model, the scaler it was trained with, and the gate's decision.

    ``model`` is None when training itself failed (diverged): the decision says why.

    Example:
        >>> c = Candidate(None, None, GateDecision(False, "rejected: diverged", math.nan,
        ...               0.9, 0), n_train=0)
        >>> c.decision.promote
        False
    """

    model: RecurrentVAE | None
    scaler: StandardScaler | dict[str, StandardScaler] | None
    decision: GateDecision
    n_train: int
    epochs_run: int = 0
    reason: str = ""  # why it was trained (windows / time / drift / manual)


def inject_faults(
    values: Float32Array, sd: FloatArray, magnitude: float, seed: int = 0
) -> Float32Array:
    """Copies of normal windows with one synthetic fault each, cycling over the channels and
    three kinds: a level shift over the window's second half, a spike on its last step
    (twice the size), a noise burst over its second half. ``sd`` is per channel (raw units)."""
    rng = np.random.default_rng(seed)
    out: Float32Array = np.array(values, dtype=np.float32, copy=True)
    n, w, c = out.shape
    half = w // 2
    for i in range(n):
        j = i % c
        kind = (i // c) % 3
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if kind == 0:
            out[i, half:, j] += sign * magnitude * sd[j]
        elif kind == 1:
            out[i, -1, j] += sign * 2 * magnitude * sd[j]
        else:
            out[i, half:, j] += rng.normal(0.0, magnitude * sd[j], w - half)
    return out


def _roc_auc(positive: FloatArray, negative: FloatArray) -> float:
    from streamvae.testing import roc_auc

    return float(roc_auc(positive, negative))


def _scale(
    values: Float32Array,
    assets: tuple[str, ...],
    scaler: StandardScaler | Mapping[str, StandardScaler],
) -> Float32Array:
    if isinstance(scaler, StandardScaler):
        mean, scale = np.asarray(scaler.mean), np.asarray(scaler.scale)
        scaled: Float32Array = ((values - mean) / scale).astype(np.float32)
        return scaled
    out = np.empty_like(values)
    for i, asset in enumerate(assets):
        s = scaler[asset]
        out[i] = (values[i] - np.asarray(s.mean)) / np.asarray(s.scale)
    return out


def validation_gate(
    candidate: RecurrentVAE,
    candidate_scaler: StandardScaler | Mapping[str, StandardScaler],
    serving: RecurrentVAE,
    serving_scaler: StandardScaler | Mapping[str, StandardScaler],
    holdout: TrainingSet,
    config: RetrainConfig,
    scoring: ScoringConfig | None = None,
) -> GateDecision:
    """Compare the candidate with the serving model on ``holdout`` (see the module docstring)."""
    n = len(holdout)
    raw_sd = holdout.values.reshape(-1, holdout.values.shape[-1]).std(axis=0).astype(np.float64)
    raw_sd = np.maximum(raw_sd, 1e-6)
    # graded faults (¼, ½ and all of fault_sd): big ones alone saturate every model's AUC at 1
    faulty = [
        inject_faults(holdout.values, raw_sd, config.fault_sd * share, seed=k)
        for k, share in enumerate(_FAULT_SHARES)
    ]
    results = []
    for model, scaler in ((candidate, candidate_scaler), (serving, serving_scaler)):
        scorer = Scorer(model, scoring)
        with np.errstate(all="ignore"):
            normal = scorer.score_many(_scale(holdout.values, holdout.assets, scaler)).scores
            faults = [scorer.score_many(_scale(f, holdout.assets, scaler)).scores for f in faulty]
        results.append(
            (np.asarray(normal, np.float64), [np.asarray(f, np.float64) for f in faults])
        )
    (c_norm, c_faults), (s_norm, s_faults) = results

    def auc(normal: FloatArray, faults: list[FloatArray]) -> float:
        return float(np.mean([_roc_auc(f, normal) for f in faults]))

    s_auc = auc(s_norm, s_faults) if np.isfinite(s_norm).all() else math.nan
    finite = np.isfinite(c_norm).all() and all(np.isfinite(f).all() for f in c_faults)
    if not finite:
        return GateDecision(
            False, "rejected: the candidate scores non-finite values", math.nan, s_auc, n
        )
    c_auc = auc(c_norm, c_faults)
    c_med, s_med = float(np.median(c_norm)), float(np.median(s_norm))
    if not math.isfinite(s_auc) or c_auc >= s_auc - config.tolerance:
        reason = f"promoted: fault AUC {c_auc:.3f} vs {s_auc:.3f} serving"
        return GateDecision(True, reason, c_auc, s_auc, n, c_med, s_med)
    reason = (
        f"rejected: fault AUC {c_auc:.3f} is more than {config.tolerance:.3f} below the "
        f"serving model's {s_auc:.3f}"
    )
    return GateDecision(False, reason, c_auc, s_auc, n, c_med, s_med)


def train_candidate(
    data: TrainingSet,
    serving: RecurrentVAE,
    serving_scaler: StandardScaler | Mapping[str, StandardScaler],
    config: RetrainConfig,
    train: TrainConfig,
    scoring: ScoringConfig | None = None,
    *,
    group_scaling: bool = True,
    min_scale_fraction: float = 1e-3,
    reason: str = "manual",
) -> Candidate:
    """Fine-tune a copy of the serving model on the older part of ``data`` and gate it on the
    latest part (pure: safe to run in another process or thread)."""
    from streamvae.errors import NonFiniteLossError
    from streamvae.training.trainer import fit

    if len(data) < 16:
        decision = GateDecision(
            False, f"rejected: only {len(data)} buffered windows to train on", math.nan, math.nan, 0
        )
        return Candidate(None, None, decision, len(data), reason=reason)
    older, holdout = data.split(config.holdout)
    scaler: StandardScaler | dict[str, StandardScaler]
    flat = older.values.reshape(-1, older.values.shape[-1]).astype(np.float64)
    if group_scaling:
        scaler = _fit_scaler(flat, min_scale_fraction)
    else:
        base = dict(serving_scaler) if isinstance(serving_scaler, Mapping) else {}
        by_asset: dict[str, list[int]] = {}
        for i, a in enumerate(older.assets):
            by_asset.setdefault(a, []).append(i)
        for a, rows in by_asset.items():
            if len(rows) >= 8:
                v = older.values[rows].reshape(-1, older.values.shape[-1]).astype(np.float64)
                base[a] = _fit_scaler(v, min_scale_fraction)
        missing = [a for a in set(data.assets) if a not in base]
        for a in missing:  # an asset the serving scalers never knew: the buffer's own fit
            rows = [i for i, x in enumerate(data.assets) if x == a]
            v = data.values[rows].reshape(-1, data.values.shape[-1]).astype(np.float64)
            base[a] = _fit_scaler(v, min_scale_fraction)
        scaler = base
    model = RecurrentVAE(serving.config)
    model.load_state_dict(serving.state_dict())
    settings = TrainConfig.from_dict({**train.to_dict(), "epochs": config.epochs})
    try:
        report = fit(model, _scale(older.values, older.assets, scaler), settings)
    except NonFiniteLossError as exc:
        decision = GateDecision(
            False, f"rejected: training diverged ({exc})", math.nan, math.nan, 0
        )
        return Candidate(None, scaler, decision, len(older), reason=reason)
    decision = validation_gate(model, scaler, serving, serving_scaler, holdout, config, scoring)
    return Candidate(model, scaler, decision, len(older), report.epochs_run, reason=reason)


def _fit_scaler(values: FloatArray, min_scale_fraction: float) -> StandardScaler:
    mean = values.mean(axis=0)
    sd = values.std(axis=0)
    floor = np.maximum(min_scale_fraction * np.maximum(np.abs(mean), 1.0), 1e-9)
    scale = np.maximum(sd, floor)
    return StandardScaler(tuple(float(m) for m in mean), tuple(float(x) for x in scale))
