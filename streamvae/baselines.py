"""Classical baselines for row-wise anomaly detection: Half-Space Trees and Hotelling's T².

They answer "is the VAE worth its cost?" on benchmarks with a fixed protocol (SKAB: fit on the
first rows of a file, then a binary verdict for every later row). Both follow one small
protocol, :class:`Baseline`: ``fit(train)`` on a ``(rows, channels)`` array, then
``score_one(row) -> (score, flag)`` for each later row in order; :func:`run` does a whole
file. Both are deterministic: T² has no randomness, Half-Space Trees take a ``seed``.

* :class:`HalfSpaceTreesBaseline` wraps river's ``anomaly.HalfSpaceTrees`` (an online
  isolation forest) behind a min-max scaler fitted on the training rows that maps each
  channel's training range to ``[margin, 1 − margin]`` and clips to [0, 1] (HST splits the
  unit cube). The flag is ``score > q-quantile`` of a rolling window of the scores of recent
  rows judged normal, seeded with the training rows' scores. By default the trees also keep
  learning from rows *not* flagged: HST is a streaming model whose mass profile is the last
  ``window_size`` rows it learned, and feeding it flagged rows would teach it the fault.
* :class:`HotellingT2Baseline` is the textbook PCA monitor: standardise on the training rows,
  keep the principal components that explain ``variance`` of the variance (numpy SVD), score
  ``T² = Σ_k t_k² / λ_k`` and flag ``T² > factor × threshold``, the threshold being the
  empirical ``q``-quantile of the training rows' T². Empirical rather than the F-distribution
  upper control limit because the F limit assumes independent Gaussian rows, which sensor data
  are not (autocorrelated, skewed, multi-modal): the empirical quantile keeps its meaning —
  "the share of training rows that would have alarmed" — whatever the distribution, and needs
  no scipy. Nothing is learned after ``fit`` (the published SKAB T² is static too).

On SKAB (34 files, fit on the first 400 rows, judge the 23,801 later rows, one configuration
for every file, pooled; F1 / FAR % / MAR %) the defaults measured: T² 0.768 / 40.1 / 16.0
(q = 0.99; ``factor=2`` gives 0.681 / 22.2 / 38.5, close to the published hand-tuned T²'s
0.66 / 19.2 / 42.6), HST 0.754 / 26.0 / 25.7 (mean of seeds 0-2; FAR 19-36 across them).
About 0.1 s (T²) and 3 s (HST, 25 trees) for all files on one CPU core. Both flag a large
share of SKAB's normal test rows: its normal operation drifts away from the first 400 rows.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> train, test = rng.normal(size=(400, 3)), rng.normal(size=(50, 3))
    >>> test[25:] += 6.0
    >>> scores, flags = run(HotellingT2Baseline(), train, test)
    >>> int(flags[:25].sum()) <= 2, bool(flags[25:].all())
    (True, True)
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from streamvae.config import _choice, _DictMixin, _finite_float, _positive_int, _require
from streamvae.errors import ConfigError, InputError

__all__ = [
    "Baseline",
    "HSTConfig",
    "HalfSpaceTreesBaseline",
    "HotellingT2Baseline",
    "T2Config",
    "run",
]

LearnMode = Literal["normal", "all", "none"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@runtime_checkable
class Baseline(Protocol):
    """What the evaluation needs from a baseline detector.

    ``fit`` forgets any earlier fit and learns from ``train`` (``(rows, channels)``);
    ``score_one`` judges the next row in time order, returning ``(score, flag)`` (higher
    score = more anomalous; ``flag`` is the binary verdict). Calling ``score_one`` before
    ``fit`` raises :class:`~streamvae.errors.InputError`.

    Example:
        >>> isinstance(HotellingT2Baseline(), Baseline)
        True
    """

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> Any: ...

    def fit(self, train: np.ndarray) -> None: ...

    def score_one(self, row: np.ndarray) -> tuple[float, bool]: ...


# --------------------------------------------------------------------------- input checks


def _train_array(owner: str, train: object, min_rows: int, why: str) -> FloatArray:
    try:
        data = np.asarray(train, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{owner}.fit: train must be a numeric array ({exc})") from None
    if data.ndim != 2 or data.shape[1] < 1:
        raise InputError(
            f"{owner}.fit: train must be 2-D (rows, channels), got shape {data.shape}; "
            "reshape a single channel with x.reshape(-1, 1)"
        )
    if data.shape[0] < min_rows:
        raise InputError(
            f"{owner}.fit: needs at least {min_rows} training rows ({why}), got {data.shape[0]}"
        )
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=1).sum())
        raise InputError(
            f"{owner}.fit: train holds NaN or infinite values in {bad} row(s); "
            "drop or impute them first"
        )
    return data


def _row_array(owner: str, row: object, channels: int | None) -> FloatArray:
    if channels is None:
        raise InputError(f"{owner}.score_one: call fit(train) before scoring")
    try:
        x = np.asarray(row, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{owner}.score_one: row must be numeric ({exc})") from None
    if x.shape != (channels,):
        raise InputError(
            f"{owner}.score_one: row must have shape ({channels},) like the training rows, "
            f"got {x.shape}"
        )
    if not np.isfinite(x).all():
        raise InputError(f"{owner}.score_one: row holds NaN or infinite values: {x.tolist()}")
    return x


def _quantile_config(owner: str, q: object) -> None:
    _finite_float(owner, "q", q, low=0.0, low_open=True)
    assert isinstance(q, int | float)
    _require(q < 1.0, owner, "q", f"must be < 1 (a quantile), got {q}")


class _RollingQuantile:
    """The q-quantile (numpy's linear interpolation) of the last ``size`` values, kept as a
    ring plus a sorted copy: O(size) per update by memmove, ~1 µs at a few hundred values."""

    __slots__ = ("_ordered", "_q", "_ring", "_size")

    def __init__(self, q: float, size: int) -> None:
        self._q = q
        self._size = size
        self._ring: deque[float] = deque()
        self._ordered: list[float] = []

    def push(self, value: float) -> None:
        if len(self._ring) == self._size:
            old = self._ring.popleft()
            del self._ordered[bisect.bisect_left(self._ordered, old)]
        self._ring.append(value)
        bisect.insort(self._ordered, value)

    def get(self) -> float:
        ordered = self._ordered
        if not ordered:
            return math.inf
        pos = self._q * (len(ordered) - 1)
        i = int(pos)
        if i + 1 >= len(ordered):
            return ordered[i]
        return ordered[i] + (ordered[i + 1] - ordered[i]) * (pos - i)


# --------------------------------------------------------------------------- Half-Space Trees


@dataclass(frozen=True, slots=True)
class HSTConfig(_DictMixin):
    """Half-Space Trees with a rolling-quantile threshold.

    ``n_trees``, ``height`` and ``window_size`` are river's (its defaults are 10, 8 and 250).
    25 trees make the score less grainy than 10 for under twice the time (1.9 s → 3.3 s for
    SKAB's 23,801 test rows); height 8 is river's: a walk stops at the first node holding fewer than
    ``0.1 × window_size`` reference rows, and each extra level doubles the nodes built
    (height 15 would build 1.6 M nodes per fit at 25 trees; height 10 cost 3× the time on
    SKAB for no gain). ``window_size`` rows form the reference mass profile; None (the
    default) makes it the number of training rows, so the whole training set is the first
    reference and ``fit`` can take any number of rows (>= 10). ``margin`` maps the training
    range of each channel to ``[margin, 1 − margin]`` (values beyond it are clipped to
    [0, 1]). Plain min-max scaling (0) clips every excursion beyond the training range onto
    the training extremes, where the trees cannot tell them apart; on SKAB pooled F1 rose
    from 0.40 (margin 0) to 0.59 (0.2), 0.70 (0.3) and 0.75 (0.4) at q = 0.99, and the
    false-alarm rate with it, from 7 % to 15 %, 24 % and 26 %.

    The flag is ``score > threshold``, the ``q``-quantile of the last ``history`` scores that
    entered the threshold window, first filled with the training rows' scores.
    ``learn`` says which test rows reach both the trees and the threshold window: ``"normal"``
    (rows not flagged, the default: the baseline tracks slow drift without learning the
    fault), ``"all"`` (plain prequential streaming: a long fault becomes normal) or
    ``"none"`` (the model and threshold stay as fitted). On SKAB (margin 0.4, q 0.99)
    ``"normal"`` measured 0.754 / 26.0 / 25.7, ``"none"`` 0.743 / 24.6 / 28.1; ``"all"``
    learns each fault as it goes (F1 0.11, MAR 94 %).

    Example:
        >>> HSTConfig(n_trees=10, seed=1).margin
        0.4
    """

    n_trees: int = 25
    height: int = 8
    window_size: int | None = None
    q: float = 0.99
    history: int = 400
    margin: float = 0.4
    learn: LearnMode = "normal"
    seed: int = 0

    def __post_init__(self) -> None:
        owner = "HSTConfig"
        _positive_int(owner, "n_trees", self.n_trees)
        _positive_int(owner, "height", self.height)
        _require(
            self.height <= 16,
            owner,
            "height",
            f"must be <= 16 (a tree has 2**(height+1) nodes), got {self.height}",
        )
        if self.window_size is not None:
            _positive_int(owner, "window_size", self.window_size, 10)
        _quantile_config(owner, self.q)
        _positive_int(owner, "history", self.history)
        _finite_float(owner, "margin", self.margin, low=0.0)
        _require(self.margin < 0.5, owner, "margin", f"must be < 0.5, got {self.margin}")
        _choice(owner, "learn", self.learn, ("normal", "all", "none"))
        _positive_int(owner, "seed", self.seed, 0)


class HalfSpaceTreesBaseline:
    """river's Half-Space Trees, scaled on the training rows, with a rolling-quantile flag.

    ``fit`` builds a fresh forest (seeded by ``config.seed``), learns every training row and
    scores them all to seed the threshold window. The training rows (with ``window_size``
    set, the last complete window of that many of them) are the reference profile those
    scores are measured against, so the seed scores are in-sample (slightly low); the
    rolling window replaces them as test rows arrive.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> hst = HalfSpaceTreesBaseline(HSTConfig(n_trees=10, window_size=100))
        >>> hst.fit(rng.normal(size=(200, 2)))
        >>> hst.score_one(np.array([0.0, 0.0]))[1], hst.score_one(np.array([9.0, 9.0]))[1]
        (False, True)
    """

    __slots__ = (
        "_channels",
        "_config",
        "_keys",
        "_low",
        "_model",
        "_quantile",
        "_scale",
        "_threshold",
    )

    def __init__(self, config: HSTConfig | None = None) -> None:
        cfg = HSTConfig() if config is None else config
        if not isinstance(cfg, HSTConfig):
            raise ConfigError(f"HalfSpaceTreesBaseline: expected an HSTConfig, got {cfg!r}")
        self._config = cfg
        self._channels: int | None = None
        self._keys: list[int] = []
        self._low = np.zeros(0)
        self._scale = np.zeros(0)
        self._model: Any = None
        self._quantile = _RollingQuantile(cfg.q, cfg.history)
        self._threshold = math.inf

    @property
    def name(self) -> str:
        return "hst"

    @property
    def config(self) -> HSTConfig:
        return self._config

    @property
    def threshold(self) -> float:
        """The threshold the next score is compared with (+inf before ``fit``)."""
        return self._threshold

    def _features(self, x: FloatArray) -> dict[int, float]:
        scaled = np.clip((x - self._low) * self._scale + self._config.margin, 0.0, 1.0)
        return dict(zip(self._keys, scaled.tolist(), strict=True))

    def fit(self, train: np.ndarray) -> None:
        """Scale on ``train``, learn the forest from it and seed the threshold window."""
        from river import anomaly

        cfg = self._config
        data = _train_array(
            "HalfSpaceTreesBaseline", train, cfg.window_size or 10, "one full reference window"
        )
        window = cfg.window_size or data.shape[0]
        low, high = data.min(axis=0), data.max(axis=0)
        span = high - low
        span[span <= 0.0] = 1.0  # a constant channel maps to `margin`
        self._low = low
        self._scale = (1.0 - 2.0 * cfg.margin) / span
        self._keys = list(range(data.shape[1]))
        model: Any = anomaly.HalfSpaceTrees(
            n_trees=cfg.n_trees, height=cfg.height, window_size=window, seed=cfg.seed
        )
        rows = [self._features(x) for x in data]
        for features in rows:
            model.learn_one(features)
        self._model = model
        self._quantile = _RollingQuantile(cfg.q, cfg.history)
        for features in rows:
            self._quantile.push(float(model.score_one(features)))
        self._threshold = self._quantile.get()
        self._channels = data.shape[1]

    def score_one(self, row: np.ndarray) -> tuple[float, bool]:
        """Score the next row, flag it against the current threshold, then learn (per
        ``config.learn``)."""
        x = _row_array("HalfSpaceTreesBaseline", row, self._channels)
        features = self._features(x)
        score = float(self._model.score_one(features))
        flag = score > self._threshold
        learn = self._config.learn
        if learn == "all" or (learn == "normal" and not flag):
            self._model.learn_one(features)
            self._quantile.push(score)
            self._threshold = self._quantile.get()
        return score, flag


# --------------------------------------------------------------------------- Hotelling T²


@dataclass(frozen=True, slots=True)
class T2Config(_DictMixin):
    """Hotelling's T² on the principal components of the standardised training rows.

    ``variance`` is the share of the (standardised) variance the kept components explain:
    the fewest components reaching it are kept. ``q`` is the empirical quantile of the
    training rows' T² used as the threshold; the expected false-alarm rate on data like the
    training rows is ``1 − q``. ``factor`` multiplies that threshold, the knob the published
    SKAB T² hand-tunes (on the F limit) to trade false alarms for misses; 1 keeps the
    nominal rate. On SKAB (pooled F1 / FAR % / MAR %): q 0.95 gave 0.765 / 49.8 / 11.5,
    0.99 0.768 / 40.1 / 16.0, 0.999 0.757 / 34.3 / 21.0; at q 0.99 factor 1.5 gave
    0.743 / 29.0 / 26.1, 2 0.681 / 22.2 / 38.5, 3 0.606 / 11.4 / 52.3. Keeping 85 % of the
    variance instead of 95 % gave 0.762 / 33.7 / 20.6. ``smooth`` averages T² over the last
    ``smooth`` rows (training rows included, and the threshold is taken on the same average)
    before the comparison: 1 = no smoothing. Smoothing over 5 rows *raised* SKAB's false alarms
    (40 % → 48 %): it narrows the training T² distribution and so the threshold, while the
    test rows' offset from the training rows does not average away.

    Example:
        >>> T2Config(q=0.95).variance
        0.95
    """

    variance: float = 0.95
    q: float = 0.99
    factor: float = 1.0
    smooth: int = 1

    def __post_init__(self) -> None:
        owner = "T2Config"
        _finite_float(owner, "variance", self.variance, low=0.0, high=1.0, low_open=True)
        _quantile_config(owner, self.q)
        _finite_float(owner, "factor", self.factor, low=0.0, low_open=True)
        _positive_int(owner, "smooth", self.smooth)


class HotellingT2Baseline:
    """Static PCA monitor: T² of the kept components against a training-quantile threshold.

    A channel constant over the training rows is centred but not scaled (its standard
    deviation is taken as 1) and components with (numerically) zero variance are never kept,
    so the fit does not divide by zero. T² measures distance *inside* the kept components
    only: a change along a discarded direction — such a constant channel, or a broken
    correlation the kept components do not span — leaves T² unchanged (the Q / SPE statistic
    of the residual would see it; SKAB's "T²+Q" entry adds it).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> t2 = HotellingT2Baseline(T2Config(variance=0.9))
        >>> t2.fit(rng.normal(size=(500, 4)))
        >>> t2.components, t2.score_one(np.full(4, 5.0))[1]
        (4, True)
    """

    __slots__ = (
        "_basis",
        "_channels",
        "_config",
        "_eigen",
        "_mean",
        "_recent",
        "_std",
        "_sum",
        "_threshold",
    )

    def __init__(self, config: T2Config | None = None) -> None:
        cfg = T2Config() if config is None else config
        if not isinstance(cfg, T2Config):
            raise ConfigError(f"HotellingT2Baseline: expected a T2Config, got {cfg!r}")
        self._config = cfg
        self._channels: int | None = None
        self._mean = np.zeros(0)
        self._std = np.zeros(0)
        self._basis = np.zeros((0, 0))
        self._eigen = np.zeros(0)
        self._recent: deque[float] = deque()
        self._sum = 0.0
        self._threshold = math.inf

    @property
    def name(self) -> str:
        return "t2"

    @property
    def config(self) -> T2Config:
        return self._config

    @property
    def threshold(self) -> float:
        """The T² threshold, ``factor`` included (+inf before ``fit``)."""
        return self._threshold

    @property
    def components(self) -> int:
        """How many principal components were kept (0 before ``fit``)."""
        return int(self._eigen.size)

    def _t2(self, z: FloatArray) -> FloatArray:
        scores = z @ self._basis
        result: FloatArray = (scores * scores / self._eigen).sum(axis=-1)
        return result

    def fit(self, train: np.ndarray) -> None:
        """Standardise on ``train``, fit the PCA and set the threshold from its T²."""
        cfg = self._config
        data = _train_array("HotellingT2Baseline", train, 3, "a covariance needs a few rows")
        mean = data.mean(axis=0)
        std = data.std(axis=0, ddof=1)
        std[std <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
        z = (data - mean) / std
        _, sv, vt = np.linalg.svd(z, full_matrices=False)
        eigen = sv * sv / (data.shape[0] - 1)
        usable = eigen > 1e-12 * max(float(eigen[0]), 1e-300)
        if not usable.any():
            raise InputError(
                "HotellingT2Baseline.fit: the training rows do not vary at all; "
                "T² needs rows that spread in at least one direction"
            )
        share = np.cumsum(eigen[usable]) / eigen[usable].sum()
        k = int(np.searchsorted(share, cfg.variance - 1e-12) + 1)
        self._mean, self._std = mean, std
        self._basis = vt[:k].T
        self._eigen = eigen[:k]
        t2 = self._t2(z)
        if cfg.smooth > 1:
            t2 = np.convolve(t2, np.ones(cfg.smooth) / cfg.smooth, mode="full")[: t2.size]
            t2[: cfg.smooth - 1] /= np.arange(1, cfg.smooth) / cfg.smooth  # short heads
        self._threshold = cfg.factor * float(np.quantile(t2, cfg.q))
        raw = self._t2(z[-(cfg.smooth - 1) :]) if cfg.smooth > 1 else np.zeros(0)
        self._recent = deque(raw.tolist())
        self._sum = float(raw.sum())
        self._channels = data.shape[1]

    def score_one(self, row: np.ndarray) -> tuple[float, bool]:
        """T² of the row (averaged over the last ``smooth`` rows) and whether it exceeds the
        threshold."""
        x = _row_array("HotellingT2Baseline", row, self._channels)
        value = float(self._t2((x - self._mean) / self._std))
        n = self._config.smooth
        if n > 1:
            self._recent.append(value)
            self._sum += value
            if len(self._recent) > n:
                self._sum -= self._recent.popleft()
            value = self._sum / len(self._recent)
        return value, value > self._threshold


# --------------------------------------------------------------------------- a whole file


def run(detector: Baseline, train: np.ndarray, test: np.ndarray) -> tuple[FloatArray, BoolArray]:
    """Fit ``detector`` on ``train``, then judge every row of ``test`` in order.

    Returns ``(scores, flags)``, one per test row (float64 and bool arrays).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> scores, flags = run(HotellingT2Baseline(), rng.normal(size=(300, 2)),
        ...                     rng.normal(size=(10, 2)))
        >>> scores.shape, flags.dtype
        ((10,), dtype('bool'))
    """
    try:
        rows = np.asarray(test, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"run: test must be a numeric array ({exc})") from None
    if rows.ndim != 2:
        raise InputError(f"run: test must be 2-D (rows, channels), got shape {rows.shape}")
    detector.fit(train)
    scores = np.empty(rows.shape[0], dtype=np.float64)
    flags = np.empty(rows.shape[0], dtype=np.bool_)
    for i, row in enumerate(rows):
        scores[i], flags[i] = detector.score_one(row)
    return scores, flags
