"""SKAB benchmark scoring: the outlier task (pooled F1 / FAR / MAR) and the changepoint task
(NAB-style score), written from the protocol text in ``/work/shared/data/skab/PROTOCOL.md``.

SKAB (Skoltech Anomaly Benchmark) has 34 fault files. In each, the first 400 rows train the
model and the rest are the test rows; *only test rows are scored*. This module has no I/O:
the caller reads the files, cuts off the training rows (and the true changepoints that fall in
them — ``other/2.csv`` has some) and hands the test rows' arrays in. Timestamps may be
``numpy.datetime64`` values (as the ``datetime`` column parses) or plain numbers of seconds.

**Outlier task.** One binary prediction per test row. :func:`outlier_counts` builds one file's
confusion matrix; :func:`pool` sums the matrices of all files, and the published metrics are
computed once on that sum (not averaged over files, which would weight a short file like a
long one): ``F1 = TP / (TP + (FN + FP)/2)``, ``FAR = FP / (FP + TN) · 100``,
``MAR = FN / (FN + TP) · 100``.

**Changepoint task**, the exact rules (``W`` = ``window_s``, 60 s by default):

- Predicted changepoints (:func:`predicted_changepoints`) are the times of the rows where the
  binary prediction changes value, both ways: the first 1 after a 0 (rising edge) and the first 0
  after a 1 (falling edge) — the row at which the new value starts, the same convention as the
  ``changepoint`` column, which marks the first row *after* a fault too. The first row counts as
  a rising edge when its prediction is 1. True changepoints (:func:`true_changepoints`) are the
  times of the rows whose ``changepoint`` column is 1.
- Each true changepoint ``cp`` opens a detection window ``[cp, cp + W]``. *Cutting*: a
  predicted changepoint at time ``t`` belongs to the latest true changepoint ``cp <= t``, and is
  in that window when ``t - cp <= W``. So a window that would overlap the next changepoint's
  ends where the next one starts, half-open: ``[cp_i, cp_{i+1})`` when ``cp_{i+1} <= cp_i + W``
  (the shared instant, also when two windows only touch, belongs to the later window, where it
  is that window's earliest possible detection). Windows never merge: every true changepoint
  keeps its own window, hit or missed on its own.
- In each window the earliest predicted changepoint is the *hit*; it scores the reward
  ``r(x)`` at its relative position ``x = (t - cp) / W`` in ``[0, 1]`` (see
  :meth:`NabProfile.reward`). ``x`` is measured on the *nominal* window length even in a cut
  window: a detection 10 s after its changepoint earns the same whether or not another
  changepoint follows soon, so cutting only removes positions, it never re-scales them.
  Later predictions in the same window are ignored (no reward, no penalty).
- A predicted changepoint inside no window is a false positive: ``A_fp`` each. A window
  without a hit is a miss: ``A_fn`` each. The file's score is the sum.
- Normalised over all files (:func:`nab_normalised`):
  ``100 · (S − S_null) / (S_perfect − S_null)``, S summed over files, ``S_null = #windows ·
  A_fn`` (no predictions at all) and ``S_perfect = #windows · A_tp`` (every window hit at its
  left edge, no false positive). 100 is perfect, 0 is no better than silence, and it is
  negative when false positives cost more than the hits earn.

The reward: with ``z = 2x − 1`` in ``[−1, 1]`` and ``k`` = :data:`REWARD_STEEPNESS` (2.5),
``r(x) = A_fp + (A_tp − A_fp) · (1 − tanh(k·z) / tanh(k)) / 2``. It is exactly ``A_tp`` at the
left edge and ``A_fp`` at the right edge, strictly decreasing, tanh-shaped and symmetric about
the window's middle (where it is the mean of the two). ``k = 2.5`` is the steepness of NAB's
scaled sigmoid ``2/(1 + e^{5y}) − 1 = −tanh(2.5·y)``: NAB's curve spans ``y`` in ``[−1, 1]``
(window start to one window past its end) and crosses 0 at the window's end; SKAB's text asks
for ``A_fp`` already at the window's end, so the same curve is fitted inside the window and
scaled to hit both values exactly.

Example:
    >>> import numpy as np
    >>> ts = np.arange(0.0, 10.0)                      # seconds
    >>> label = np.array([0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    >>> alarm = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    >>> s = outlier_counts(label, alarm)
    >>> (s.tp, s.fp, s.fn, s.tn), s.f1, round(s.far, 1), s.mar
    ((3, 1, 1, 5), 0.75, 16.7, 25.0)
    >>> cut = np.array([0, 0, 1, 0, 0, 0, 1, 0, 0, 0])   # the changepoint column
    >>> f = nab_file(true_changepoints(cut, ts), predicted_changepoints(alarm, ts),
    ...              STANDARD, window_s=4.0)
    >>> f.hits, f.misses, f.false_positives, f.windows
    (2, 0, 0, 2)
    >>> round(nab_normalised([f], STANDARD), 2)
    96.11
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from streamvae.errors import InputError

__all__ = [
    "LOW_FN",
    "LOW_FP",
    "PROFILES",
    "REWARD_STEEPNESS",
    "STANDARD",
    "NabFile",
    "NabProfile",
    "OutlierScores",
    "nab_file",
    "nab_normalised",
    "outlier_counts",
    "pool",
    "predicted_changepoints",
    "true_changepoints",
]

#: Steepness ``k`` of the reward's tanh over the window (see the module docstring).
REWARD_STEEPNESS = 2.5


# ----------------------------------------------------------------------------- validation


def _binary(values: npt.ArrayLike, name: str) -> npt.NDArray[np.bool_]:
    """A 1-D array of 0/1 (or booleans) as booleans; anything else is refused, not rounded."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"{name} must be a 1-D array (one value per row), got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise InputError(
            f"{name} must hold 0/1 values, got dtype {arr.dtype}; convert it to integers first"
        )
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{name} must be binary (0/1): row {first} is {arr[first]!r}; "
            "threshold scores into a 0/1 prediction before scoring"
        )
    return np.asarray(arr == 1, dtype=np.bool_)


def _times(values: npt.ArrayLike, name: str) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """The timestamps as given, and as float seconds (datetime64 → seconds since the epoch)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"{name} must be a 1-D array of timestamps, got shape {arr.shape}")
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            raise InputError(f"{name} contains NaT; drop or fill rows without a timestamp")
        return arr, arr.astype("datetime64[ns]").astype(np.int64) / 1e9
    if arr.size == 0:
        return arr, np.zeros(0)
    if arr.dtype.kind not in "iuf":
        raise InputError(
            f"{name} must be numpy datetime64 values or numbers of seconds, got dtype "
            f"{arr.dtype}; parse text with np.asarray(values, dtype='datetime64[s]')"
        )
    seconds = arr.astype(np.float64)
    if not np.isfinite(seconds).all():
        raise InputError(f"{name} contains NaN or infinite timestamps")
    return arr, seconds


def _row_times(
    values: npt.ArrayLike, ts: npt.ArrayLike, values_name: str
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[Any]]:
    flags = _binary(values, values_name)
    raw, seconds = _times(ts, "ts")
    if len(flags) != len(raw):
        raise InputError(
            f"{values_name} has {len(flags)} rows but ts has {len(raw)}; pass the same rows "
            "(the file's test rows) to both"
        )
    if len(seconds) > 1 and not (np.diff(seconds) > 0).all():
        first = int(np.flatnonzero(np.diff(seconds) <= 0)[0]) + 1
        raise InputError(
            f"ts must be strictly increasing: row {first} is not after row {first - 1}; "
            "sort the rows by time and drop duplicates"
        )
    return flags, raw


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InputError(f"{name} must be a non-negative integer count, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- outlier task


@dataclass(frozen=True, slots=True)
class OutlierScores:
    """A confusion matrix of row labels against row predictions, and the SKAB metrics on it.

    The metrics are properties so that pooled matrices (:func:`pool`) give pooled metrics:
    ``f1 = TP / (TP + (FN + FP)/2)``; ``far`` (false-alarm rate, %) ``= FP / (FP + TN) · 100``;
    ``mar`` (missed-alarm rate, %) ``= FN / (FN + TP) · 100``. Each is None when its
    denominator is 0 (F1 with neither anomalies nor alarms, FAR without normal rows, MAR without
    anomalous rows): there is nothing to rate, and a made-up 0 or 1 would skew a table.

    Example:
        >>> s = OutlierScores(tp=3, fp=2, fn=0, tn=0)   # alarm on all 5 rows, 3 anomalous
        >>> s.f1, s.far, s.mar
        (0.75, 100.0, 0.0)
    """

    tp: int
    fp: int
    fn: int
    tn: int

    def __post_init__(self) -> None:
        for f in fields(self):
            value = _count(getattr(self, f.name), f"OutlierScores.{f.name}")
            object.__setattr__(self, f.name, value)

    @property
    def rows(self) -> int:
        """Number of rows scored."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def f1(self) -> float | None:
        denominator = self.tp + (self.fn + self.fp) / 2
        return None if denominator == 0 else self.tp / denominator

    @property
    def far(self) -> float | None:
        negatives = self.fp + self.tn
        return None if negatives == 0 else self.fp / negatives * 100

    @property
    def mar(self) -> float | None:
        positives = self.fn + self.tp
        return None if positives == 0 else self.fn / positives * 100


def outlier_counts(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> OutlierScores:
    """The confusion matrix of one file's test rows: ``y_true`` is the ``anomaly`` column,
    ``y_pred`` the detector's binary prediction, both 0/1 (or booleans), one per row.

    Example:
        >>> outlier_counts([0, 1, 1, 0], [0, 1, 0, 1])
        OutlierScores(tp=1, fp=1, fn=1, tn=1)
    """
    truth = _binary(y_true, "y_true")
    pred = _binary(y_pred, "y_pred")
    if len(truth) != len(pred):
        raise InputError(
            f"y_true has {len(truth)} rows but y_pred has {len(pred)}; pass one prediction "
            "per test row"
        )
    return OutlierScores(
        tp=int(np.sum(truth & pred)),
        fp=int(np.sum(~truth & pred)),
        fn=int(np.sum(truth & ~pred)),
        tn=int(np.sum(~truth & ~pred)),
    )


def pool(scores: Iterable[OutlierScores]) -> OutlierScores:
    """The pooled matrix: the element-wise sum over files (SKAB's published metrics are computed
    on it, so long files weigh more than short ones). No files give an all-zero matrix.

    Example:
        >>> p = pool([OutlierScores(1, 0, 0, 9), OutlierScores(0, 1, 1, 0)])
        >>> p, p.f1
        (OutlierScores(tp=1, fp=1, fn=1, tn=9), 0.5)
    """
    tp = fp = fn = tn = 0
    for s in scores:
        if not isinstance(s, OutlierScores):
            raise InputError(f"pool() takes OutlierScores, got {type(s).__name__}")
        tp, fp, fn, tn = tp + s.tp, fp + s.fp, fn + s.fn, tn + s.tn
    return OutlierScores(tp, fp, fn, tn)


# ------------------------------------------------------------------------- changepoint task


def predicted_changepoints(pred: npt.ArrayLike, ts: npt.ArrayLike) -> npt.NDArray[Any]:
    """The times (elements of ``ts``, same dtype) at which the binary prediction changes
    value — rising and falling edges, each at the first row of the new value — plus the first
    row when its prediction is 1. ``ts`` must be strictly increasing.

    Example:
        >>> predicted_changepoints([1, 1, 0, 0, 1, 1], [10, 11, 12, 13, 14, 15])
        array([10, 12, 14])
    """
    flags, raw = _row_times(pred, ts, "pred")
    if len(flags) == 0:
        return raw[:0]
    edges = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
    if flags[0]:
        edges = np.concatenate(([0], edges))
    return raw[edges]


def true_changepoints(changepoint_column: npt.ArrayLike, ts: npt.ArrayLike) -> npt.NDArray[Any]:
    """The times (elements of ``ts``) of the rows whose ``changepoint`` column is 1.

    Example:
        >>> true_changepoints([0, 1, 0, 1], [0.0, 1.0, 2.0, 3.0])
        array([1., 3.])
    """
    flags, raw = _row_times(changepoint_column, ts, "changepoint_column")
    return raw[flags]


@dataclass(frozen=True, slots=True)
class NabProfile:
    """The weights of a NAB scoring profile: ``a_tp`` (reward of a hit at its window's left
    edge, > 0), ``a_fp`` (cost of a false positive, and the reward of a hit at the right edge,
    <= 0) and ``a_fn`` (cost of a missed window, <= 0). SKAB publishes three: :data:`STANDARD`,
    :data:`LOW_FP` (false positives cost double) and :data:`LOW_FN` (misses cost double).

    Example:
        >>> STANDARD.reward(0.0), STANDARD.reward(1.0), round(STANDARD.reward(0.5), 3)
        (1.0, -0.11, 0.445)
    """

    name: str
    a_tp: float
    a_fp: float
    a_fn: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"NabProfile.name must be a non-empty string, got {self.name!r}")
        for f in ("a_tp", "a_fp", "a_fn"):
            value = getattr(self, f)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"NabProfile({self.name!r}).{f} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InputError(f"NabProfile({self.name!r}).{f} must be finite, got {value}")
            object.__setattr__(self, f, float(value))
        if not (self.a_tp > 0 and self.a_fp <= 0 and self.a_fn <= 0):
            raise InputError(
                f"NabProfile({self.name!r}) needs a_tp > 0, a_fp <= 0 and a_fn <= 0 (a hit "
                f"rewards, errors cost); got ({self.a_tp}, {self.a_fp}, {self.a_fn})"
            )

    def reward(self, position: float) -> float:
        """The reward of a hit at relative position ``position`` = (t − cp) / window in
        ``[0, 1]``: ``a_fp + (a_tp − a_fp) · (1 − tanh(k·(2·position − 1)) / tanh(k)) / 2`` with
        ``k`` = :data:`REWARD_STEEPNESS`; ``a_tp`` at 0, ``a_fp`` at 1, strictly decreasing."""
        if not (math.isfinite(position) and 0.0 <= position <= 1.0):
            raise InputError(f"a hit's relative position must be in [0, 1], got {position}")
        if position == 0.0:  # exact at the edges, free of rounding in tanh
            return self.a_tp
        if position == 1.0:
            return self.a_fp
        k = REWARD_STEEPNESS
        share = (1.0 - math.tanh(k * (2.0 * position - 1.0)) / math.tanh(k)) / 2.0
        return self.a_fp + (self.a_tp - self.a_fp) * share


STANDARD = NabProfile("standard", 1.0, -0.11, -1.0)
LOW_FP = NabProfile("low_fp", 1.0, -0.22, -1.0)
LOW_FN = NabProfile("low_fn", 1.0, -0.11, -2.0)
#: The three published profiles, in the leaderboard's column order.
PROFILES = (STANDARD, LOW_FP, LOW_FN)


@dataclass(frozen=True, slots=True)
class NabFile:
    """One file's changepoint score under ``profile``: ``score`` (Σ hit rewards + ``a_fp`` ·
    ``false_positives`` + ``a_fn`` · ``misses``), and the counts behind it. ``windows`` (one
    per true changepoint) = ``hits + misses``. The profile is kept so that
    :func:`nab_normalised` can refuse to pool files scored under different weights.

    Example:
        >>> f = nab_file([0.0], [30.0, 200.0], STANDARD)
        >>> f.hits, f.misses, f.false_positives, round(f.score, 3)
        (1, 0, 1, 0.335)
    """

    score: float
    hits: int
    misses: int
    false_positives: int
    windows: int
    profile: NabProfile

    def __post_init__(self) -> None:
        for name in ("hits", "misses", "false_positives", "windows"):
            object.__setattr__(self, name, _count(getattr(self, name), f"NabFile.{name}"))
        if not isinstance(self.profile, NabProfile):
            raise InputError(f"NabFile.profile must be a NabProfile, got {self.profile!r}")
        if not math.isfinite(self.score):
            raise InputError(f"NabFile.score must be finite, got {self.score}")
        if self.hits + self.misses != self.windows:
            raise InputError(
                f"NabFile: hits ({self.hits}) + misses ({self.misses}) must equal windows "
                f"({self.windows}); every window is either hit or missed"
            )


def nab_file(
    true_cps: npt.ArrayLike,
    pred_cps: npt.ArrayLike,
    profile: NabProfile,
    window_s: float = 60.0,
) -> NabFile:
    """Score one file's predicted changepoints against its true ones by the rules in the module
    docstring. Both are timestamps of the same kind (datetime64, or seconds), in any order;
    true changepoints must be distinct (two at one instant would leave one an empty window).

    Example:
        >>> f = nab_file([0.0, 100.0], [0.0, 5.0, 170.0], LOW_FP, window_s=60.0)
        >>> f.hits, f.misses, f.false_positives, round(f.score, 2)  # 5.0 ignored, 170.0 an FP
        (1, 1, 1, -0.22)
    """
    if not isinstance(profile, NabProfile):
        raise InputError(f"profile must be a NabProfile (e.g. STANDARD), got {profile!r}")
    if isinstance(window_s, bool) or not (
        isinstance(window_s, int | float) and math.isfinite(window_s) and window_s > 0
    ):
        raise InputError(f"window_s must be a finite number of seconds > 0, got {window_s!r}")
    true_raw, true_s = _times(true_cps, "true_cps")
    pred_raw, pred_s = _times(pred_cps, "pred_cps")
    if (
        true_raw.size
        and pred_raw.size
        and (true_raw.dtype.kind == "M") != (pred_raw.dtype.kind == "M")
    ):
        raise InputError(
            "true_cps and pred_cps mix datetime64 and numeric timestamps; pass both the same way"
        )
    true_s = np.sort(true_s)
    pred_s = np.sort(pred_s)
    if len(true_s) > 1 and not (np.diff(true_s) > 0).all():
        raise InputError("true_cps has the same changepoint twice; pass each true changepoint once")

    score = 0.0
    false_positives = 0
    hit = np.zeros(len(true_s), dtype=bool)
    owners = np.searchsorted(true_s, pred_s, side="right") - 1  # latest cp <= t, or -1
    for t, k in zip(pred_s, owners, strict=True):
        offset = t - true_s[k] if k >= 0 else math.inf
        if offset > window_s:  # before the first window, or after its (cut) window
            false_positives += 1
            score += profile.a_fp
        elif not hit[k]:  # the first prediction of the window; later ones are ignored
            hit[k] = True
            score += profile.reward(min(offset / window_s, 1.0))
    hits = int(hit.sum())
    misses = len(true_s) - hits
    score += misses * profile.a_fn
    return NabFile(score, hits, misses, false_positives, len(true_s), profile)


def nab_normalised(files: Iterable[NabFile], profile: NabProfile) -> float:
    """SKAB's normalised changepoint score over files scored with ``profile``:
    ``100 · (S − S_null) / (S_perfect − S_null)``, ``S`` the summed file scores, ``S_null =
    #windows · a_fn``, ``S_perfect = #windows · a_tp``. It is at most 100 and may be negative.

    With no windows at all (no true changepoint in any file) ``S_perfect = S_null = 0`` and the
    score is undefined — nothing could be detected — so it raises
    :class:`~streamvae.errors.InputError` instead of returning a number a table would show.

    Example:
        >>> files = [nab_file([0.0], [0.0], STANDARD), nab_file([0.0], [], STANDARD)]
        >>> nab_normalised(files, STANDARD)
        50.0
    """
    if not isinstance(profile, NabProfile):
        raise InputError(f"profile must be a NabProfile (e.g. STANDARD), got {profile!r}")
    total = 0.0
    windows = 0
    for f in files:
        if not isinstance(f, NabFile):
            raise InputError(f"nab_normalised() takes NabFile results, got {type(f).__name__}")
        if f.profile != profile:
            raise InputError(
                f"a file was scored with profile {f.profile.name!r}, not {profile.name!r}; "
                "score every file with the profile you normalise by"
            )
        total += f.score
        windows += f.windows
    if windows == 0:
        raise InputError(
            "no detection windows in any file (no true changepoints): the normalised score is "
            "undefined; check that the test rows' changepoint column was passed"
        )
    null = windows * profile.a_fn
    perfect = windows * profile.a_tp
    return 100.0 * (total - null) / (perfect - null)
