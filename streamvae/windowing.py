"""Turning series into windows: a batch helper for training, a streaming windower for Kafka.

:func:`sliding_windows` cuts a regular, already aligned series (training, offline scoring).
:class:`Windower` builds the same kind of windows from a live stream of :class:`Reading` s, in
event time, per asset (DESIGN §1). Its rules, which the tests pin down:

Buckets. Time is cut into buckets of ``period_s``: a reading at ``ts`` falls into bucket
``b = floor(ts / period_s)``. A step's event time is its bucket's *start*, ``b * period_s``;
``Window.start_ts`` / ``end_ts`` are the start times of its first and last step. Within a
bucket each channel keeps its value with the latest event time (on equal times the later
arrival wins), so a resampled step is "the last reading in the bucket", and single-channel
messages for the same asset and bucket merge into one step.

Finality and lateness, per asset. Each asset has its own watermark, its newest event time
seen. Bucket ``b`` is final once ``floor((newest - allowed_lateness_s) / period_s) > b``, that
is once ``newest - allowed_lateness_s`` has reached the bucket's end. With no lateness a bucket
is final as soon as a reading for a later bucket arrives. A reading for a final bucket is late:
it is dropped and counted (``late_dropped``). One asset's clock never finalises another's
buckets: a silent asset keeps its last bucket pending until it speaks again or
:meth:`Windower.flush` is called.

Gaps. When a bucket becomes final, each channel without a value in it is forward-filled from
its last value if that value is at most ``max_gap_s`` old, age measured between bucket times
(a value seen in bucket ``j`` fills bucket ``b`` when ``(b - j) * period_s <= max_gap_s``).
Buckets that received nothing at all are filled the same way. A step is *valid* when every
channel has a value this way; windows are cut from runs of consecutive valid steps only, so no
window holds a channel that was never seen, nor spans a gap longer than ``max_gap_s``. A step
that cannot be filled ends the current run (``gaps`` counts runs ended this way); the next run
starts at the next valid step and yields its first window after W steps.

Windows. After each valid step, if the run holds ``r >= W`` steps and ``(r - W) % stride ==
0``, the window of the last W steps is emitted: ``(W, C)`` float64 in raw units, channels in
the order of ``WindowConfig.channels``. ``Window.values`` is a *read-only view* into the
asset's ring, not a copy: ring rows are written once and never again (a full ring is
replaced, not overwritten), so a window's values never change, and a consumer that tries to
write into them gets an error instead of corrupting a neighbour. Skipping the copy saves
~2.5 µs per window at 1,000 assets (measured: allocating and faulting in fresh memory per
window dominated). A window keeps its ring (2W rows) alive while it is referenced; code that
stores windows for long should ``np.array(window.values)`` if that matters.
Its ``offsets`` span the smallest and largest Kafka offset among the readings that landed in
its buckets (forward-filled steps add none), when all of them came from one topic and
partition; otherwise ``None``.

Memory per asset is bounded by the configuration only: a ring of ``2W`` (at least ``W + 16``)
rows × C float64 with two int64 offset columns, the last value and bucket of each channel, and
at most ``ceil(allowed_lateness_s / period_s) + 1`` pending buckets of C values and times.
Measured: ~8 KiB per asset for W = 32, C = 8 (~25 KiB for W = 128), so the default
``max_assets`` of 100,000 bounds the windower at ~0.8 GiB. Readings of assets beyond
``max_assets`` are dropped and counted (``assets_dropped``); :meth:`Windower.forget` frees an
asset. Unknown channel names and non-finite values are dropped and counted too; bad input
never stops the stream.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from streamvae.config import _channel_names, _DictMixin, _finite_float, _positive_int, _require
from streamvae.errors import ConfigError, InputError
from streamvae.types import OffsetSpan, Reading, Window

__all__ = ["WindowConfig", "Windower", "WindowerStats", "sliding_windows", "window_starts"]


def window_starts(n_steps: int, window: int, stride: int = 1) -> npt.NDArray[np.int64]:
    """Start index of every full window of length ``window`` taken every ``stride`` steps."""
    if window < 1 or stride < 1:
        raise InputError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    if n_steps < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_steps - window + 1, stride, dtype=np.int64)


def sliding_windows(values: npt.ArrayLike, window: int, stride: int = 1) -> npt.NDArray[np.float32]:
    """Series (N, C) → windows (K, window, C), every ``stride`` steps, as a float32 copy.

    Example:
        >>> import numpy as np
        >>> sliding_windows(np.arange(10.0).reshape(5, 2), window=3, stride=2).shape
        (2, 3, 2)
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2:
        raise InputError(f"series must be 2-D (steps, channels), got shape {arr.shape}")
    starts = window_starts(arr.shape[0], window, stride)
    if starts.size == 0:
        return np.zeros((0, window, arr.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(arr, window, axis=0)  # (N-W+1, C, W)
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))


# ---------------------------------------------------------------------------------------------
# Streaming windower
# ---------------------------------------------------------------------------------------------

_MAX_PENDING_BUCKETS = 10_000  # allowed_lateness_s / period_s above this would cost MBs per asset
_MIN_SLACK_ROWS = 16  # ring rows beyond W: a fresh ring is started once per slack steps
_NEVER = -(2**62)  # "bucket of the last value" for a channel never seen
_NEG_INF = -math.inf
_BIG = 2**63 - 1  # row offsets of a step no reading landed in: neutral for min/max
_EMPTY = "empty"  # row key: no reading landed in this step (forward-filled)
_MIXED = "mixed"  # row key: readings without a source, or from several topic/partitions
_STATE_VERSION = 1
_FIXED_ON_RESTORE = ("channels", "period_s", "window", "allowed_lateness_s")

_RowKey = tuple[str, int] | str


@dataclass(frozen=True, slots=True)
class WindowConfig(_DictMixin):
    """How the stream is resampled and cut into windows; the module docstring has the rules.

    ``max_gap_s`` is how stale a value may be and still stand in for a missing one, and
    ``allowed_lateness_s`` how long a bucket waits for stragglers, which is also how long
    every window is delayed: both trade completeness for latency, per plant.

    Example:
        >>> cfg = WindowConfig(channels=("flow", "temp"), period_s=60.0, window=32, stride=4)
        >>> cfg.n_channels, cfg.max_pending
        (2, 1)
    """

    channels: tuple[str, ...]
    period_s: float = 1.0
    window: int = 32
    stride: int = 1
    max_gap_s: float = 5.0
    allowed_lateness_s: float = 0.0
    max_assets: int = 100_000

    def __post_init__(self) -> None:
        owner = "WindowConfig"
        _channel_names(owner, self.channels)
        _finite_float(owner, "period_s", self.period_s, low=0.0, low_open=True)
        _positive_int(owner, "window", self.window)
        _positive_int(owner, "stride", self.stride)
        _finite_float(owner, "max_gap_s", self.max_gap_s, low=0.0)
        _finite_float(owner, "allowed_lateness_s", self.allowed_lateness_s, low=0.0)
        _require(
            self.allowed_lateness_s / self.period_s <= _MAX_PENDING_BUCKETS,
            owner,
            "allowed_lateness_s",
            f"must be at most {_MAX_PENDING_BUCKETS} periods ({_MAX_PENDING_BUCKETS} × "
            f"period_s = {_MAX_PENDING_BUCKETS * self.period_s} s), got "
            f"{self.allowed_lateness_s} s; every pending bucket costs memory per asset, "
            "so raise period_s or lower the lateness",
        )
        _positive_int(owner, "max_assets", self.max_assets)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def max_pending(self) -> int:
        """Most buckets one asset can hold before they are final."""
        return math.ceil(self.allowed_lateness_s / self.period_s) + 1

    @property
    def max_gap_steps(self) -> int:
        """How many buckets a value may be carried forward (``max_gap_s`` in periods)."""
        return math.floor(self.max_gap_s / self.period_s + 1e-9)


@dataclass(frozen=True, slots=True)
class WindowerStats:
    """What the windower dropped or broke, for metrics; every field is a count since start.

    ``late_dropped``, ``assets_dropped`` and ``invalid_ts_dropped`` count readings;
    ``unknown_channel_values_dropped`` and ``non_finite_values_dropped`` count single values;
    ``gaps`` counts runs ended by a gap longer than ``max_gap_s``; ``assets`` is the number of
    assets tracked now.

    Example:
        >>> WindowerStats().windows_emitted
        0
    """

    windows_emitted: int = 0
    late_dropped: int = 0
    gaps: int = 0
    unknown_channel_values_dropped: int = 0
    non_finite_values_dropped: int = 0
    invalid_ts_dropped: int = 0
    assets_dropped: int = 0
    assets: int = 0


# Window and OffsetSpan are frozen dataclasses: their ``__init__`` sets each field through
# ``object.__setattr__``, ~0.7 µs per window at one window per step, of a ~4 µs budget. Setting
# the slots directly builds the same object (same class, equal, same repr) in half the time.
# Should either record gain fields or start validating itself, the real constructor is used.
_new = object.__new__
_WINDOW_FIELDS = ("asset", "start_ts", "end_ts", "values", "channels", "offsets")
_SPAN_FIELDS = ("topic", "partition", "offset_start", "offset_end")


def _plain_record(cls: type[Any], names: tuple[str, ...]) -> bool:
    return tuple(f.name for f in fields(cls)) == names and not hasattr(cls, "__post_init__")


def _fast_window(
    asset: str,
    start_ts: float,
    end_ts: float,
    values: npt.NDArray[np.float64],
    channels: tuple[str, ...],
    offsets: OffsetSpan | None,
) -> Window:
    w: Window = _new(Window)
    _w_asset(w, asset)
    _w_start(w, start_ts)
    _w_end(w, end_ts)
    _w_values(w, values)
    _w_channels(w, channels)
    _w_offsets(w, offsets)
    return w


def _fast_span(topic: str, partition: int, offset_start: int, offset_end: int) -> OffsetSpan:
    o: OffsetSpan = _new(OffsetSpan)
    _o_topic(o, topic)
    _o_partition(o, partition)
    _o_start(o, offset_start)
    _o_end(o, offset_end)
    return o


_window: Any = Window
_offset_span: Any = OffsetSpan
if _plain_record(Window, _WINDOW_FIELDS):
    _w_asset, _w_start, _w_end, _w_values, _w_channels, _w_offsets = (
        getattr(Window, name).__set__ for name in _WINDOW_FIELDS
    )
    _window = _fast_window
if _plain_record(OffsetSpan, _SPAN_FIELDS):
    _o_topic, _o_partition, _o_start, _o_end = (
        getattr(OffsetSpan, name).__set__ for name in _SPAN_FIELDS
    )
    _offset_span = _fast_span


class _Asset:
    """Mutable per-asset state. Plain lists and ``array('d')`` buffers copied through
    memoryviews (a row copy is one memcpy, not C float conversions), and one numpy ring.

    A pending bucket lives in slot ``bucket % n_pending``: its values and event times in
    ``pv``/``pts`` at ``slot * C + channel``, and a record
    ``[bucket | None, channels present, topic | None, partition, lowest offset, highest offset,
    mixed sources, uniform time | None]`` in ``slots``. The uniform time is set while the bucket
    holds exactly one complete reading: its event time then stands for every channel's, and
    ``pts`` is left untouched (two list writes saved on the usual path).
    """

    __slots__ = (
        "full",
        "irr",
        "lj",
        "lv",
        "lvm",
        "maxhi",
        "n",
        "name",
        "newest",
        "next_final",
        "pts",
        "pv",
        "pvm",
        "rhi",
        "ring",
        "ringm",
        "rk",
        "rlo",
        "run",
        "slots",
        "top",
        "tpkey",
        "view",
    )

    def __init__(self, name: str, n_channels: int, cap: int, n_pending: int) -> None:
        self.name = name
        self.newest = _NEG_INF  # watermark: newest event time seen, s
        self.next_final = 0  # first bucket that is not final yet
        self.top = 0  # highest bucket that received a reading
        self.run = 0  # valid steps in the current run
        self.n = 0  # rows written to the ring; a row is never rewritten
        self.irr = 0  # run position of the last step that breaks the fast offset path
        self.maxhi = -_BIG  # largest offset in the current run
        self.ring = np.zeros((cap, n_channels), dtype=np.float64)
        self.ringm = _flat(self.ring)
        self.view = _read_only(self.ring)  # windows are slices of this
        self.rk: list[_RowKey] = [_EMPTY] * cap  # row key: (topic, partition) | _EMPTY | _MIXED
        self.rlo = array("q", [_BIG]) * cap  # Kafka offsets are int64: 8 bytes, no int objects
        self.rhi = array("q", [-_BIG]) * cap
        self.lv = array("d", bytes(8 * n_channels))  # last final value per channel
        self.lvm = memoryview(self.lv)
        self.lj: list[int] = [_NEVER] * n_channels  # bucket of that value (see ``full``)
        self.full = _NEVER  # last bucket with every channel; a channel's is max(lj[c], full)
        self.pv = array("d", bytes(8 * n_pending * n_channels))
        self.pvm = memoryview(self.pv)
        self.pts: list[float] = [_NEG_INF] * (n_pending * n_channels)
        self.slots: list[list[Any]] = [
            [None, 0, None, 0, 0, 0, False, None] for _ in range(n_pending)
        ]
        self.tpkey: tuple[str, int] = ("", -1)


def _flat(ring: npt.NDArray[np.float64]) -> memoryview[float]:
    """The ring as a flat float64 memoryview: a row write is then one memcpy."""
    return memoryview(ring).cast("B").cast("d")  # type: ignore[arg-type]


def _read_only(ring: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    view = ring.view()
    view.flags.writeable = False
    return view


def _span(keys: list[_RowKey], los: array[int], his: array[int]) -> OffsetSpan | None:
    """A window's offsets the slow way: is there one source among its non-empty steps?"""
    found = set(keys)
    found.discard(_EMPTY)
    if len(found) != 1 or _MIXED in found:
        return None
    key = found.pop()
    assert isinstance(key, tuple)
    span: OffsetSpan = _offset_span(key[0], key[1], min(los), max(his))
    return span


class Windower:
    """Readings in, windows out, per asset, in event time (rules in the module docstring).

    Example:
        >>> from streamvae.types import Reading
        >>> w = Windower(WindowConfig(channels=("temp", "vib"), window=3))
        >>> out = w.push_many(
        ...     Reading("pump-1", float(t), {"temp": 20.0 + t, "vib": 0.1}) for t in range(4)
        ... )
        >>> [(x.start_ts, x.end_ts) for x in out]
        [(0.0, 2.0)]
        >>> out[0].values[:, 0].tolist()
        [20.0, 21.0, 22.0]
        >>> [(x.start_ts, x.end_ts) for x in w.flush()]
        [(1.0, 3.0)]
    """

    def __init__(self, config: WindowConfig) -> None:
        if not isinstance(config, WindowConfig):
            raise ConfigError(
                f"Windower: expected a WindowConfig, got {type(config).__name__}; "
                "build one with WindowConfig(channels=(...))"
            )
        self.config = config
        self._channels = config.channels
        self._cidx = {c: i for i, c in enumerate(config.channels)}
        self._C = config.n_channels
        self._W = config.window
        self._S = config.stride
        self._p = float(config.period_s)
        self._L = float(config.allowed_lateness_s)
        self._P = config.max_pending
        self._G = config.max_gap_steps
        self._cap = config.window + max(_MIN_SLACK_ROWS, config.window)
        self._max_assets = config.max_assets
        self._neg_row = [_NEG_INF] * self._C
        # a complete reading's values in channel order, in C, as a tuple; then one pack_into
        if self._C > 1:
            self._row_of: Any = itemgetter(*config.channels)
        else:
            only = config.channels[0]
            self._row_of = lambda values: (values[only],)
        self._pack_row = struct.Struct(f"{self._C}d").pack_into
        self._assets: dict[str, _Asset] = {}
        self._windows_emitted = 0
        self._late = 0
        self._gaps = 0
        self._unknown = 0
        self._non_finite = 0
        self._bad_ts = 0
        self._assets_dropped = 0

    # -- public API ----------------------------------------------------------------------

    @property
    def stats(self) -> WindowerStats:
        return WindowerStats(
            windows_emitted=self._windows_emitted,
            late_dropped=self._late,
            gaps=self._gaps,
            unknown_channel_values_dropped=self._unknown,
            non_finite_values_dropped=self._non_finite,
            invalid_ts_dropped=self._bad_ts,
            assets_dropped=self._assets_dropped,
            assets=len(self._assets),
        )

    @property
    def assets(self) -> tuple[str, ...]:
        """Assets tracked now, in the order they first appeared."""
        return tuple(self._assets)

    def push(self, reading: Reading) -> list[Window]:
        """Take one reading; return the windows it made final (often none)."""
        out: list[Window] = []
        self._push(reading, out)
        return out

    def push_many(self, readings: Iterable[Reading]) -> list[Window]:
        """Take readings in arrival order; return windows in the order they became final."""
        out: list[Window] = []
        push = self._push
        for reading in readings:
            push(reading, out)
        return out

    def flush(self, asset: str | None = None) -> list[Window]:
        """Make every pending bucket of ``asset`` (or of every asset) final now.

        For the end of a stream, a replay, or an asset known to have stopped: windows that
        would otherwise wait for the asset's next reading come out now. Readings for flushed
        buckets that arrive afterwards are late.
        """
        out: list[Window] = []
        if asset is None:
            states = list(self._assets.values())
        else:
            st = self._assets.get(asset)
            states = [] if st is None else [st]
        for st in states:
            if st.top >= st.next_final:
                self._finalize(st, st.top + 1, out)
        return out

    def forget(self, asset: str) -> None:
        """Stop tracking ``asset`` (decommissioned, moved to another partition), freeing its
        memory and its place under ``max_assets``; its pending buckets are discarded."""
        self._assets.pop(asset, None)

    # -- hot path ------------------------------------------------------------------------

    def _push(self, reading: Reading, out: list[Window]) -> None:
        ts = reading.ts
        p = self._p
        try:
            b = math.floor(ts / p)
        except (ValueError, OverflowError, TypeError):  # NaN, ±inf, not a number
            self._bad_ts += 1
            return
        P = self._P
        st = self._assets.get(reading.asset)
        if st is None:
            if len(self._assets) >= self._max_assets:
                self._assets_dropped += 1
                return
            st = _Asset(reading.asset, self._C, self._cap, P)
            if self._L:
                st.next_final = max(math.floor((ts - self._L) / p), b - P + 1)
            else:
                st.next_final = b
            st.top = st.next_final - 1
            self._assets[reading.asset] = st
        elif b < st.next_final:
            self._late += 1
            return
        slots = st.slots
        if ts > st.newest:
            st.newest = ts
            # the watermark; the clamp only guards float rounding (span <= P buckets)
            wm = max(math.floor((ts - self._L) / p), b - P + 1) if self._L else b
            nf = st.next_final
            if wm > nf:
                if wm == nf + 1 and slots[nf % P][0] == nf:  # the usual step: one bucket closes
                    self._close(st, nf, nf % P, out)
                else:
                    self._finalize(st, wm, out)

        slot = b % P
        rec = slots[slot]
        if rec[0] != b:
            rec[0] = b
            if b > st.top:
                st.top = b
        C = self._C
        base = slot * C
        values = reading.values
        complete = False
        if rec[1] == 0 and len(values) == C:  # the usual multichannel reading: one row at once
            try:
                row = self._row_of(values)
                total = sum(row)
                if total - total == 0.0:  # False when any value is NaN or ±inf
                    self._pack_row(st.pv, 8 * base, *row)
                    complete = True
            except (KeyError, TypeError, OverflowError, struct.error):  # go value by value
                pass  # a half-packed row is harmless: the slot's times still say "empty"
        if complete:
            rec[1] = C
            rec[7] = ts
            landed = True
        else:
            if rec[7] is not None:  # a second reading for the bucket: per-channel times now
                st.pts[base : base + C] = [rec[7]] * C
                rec[7] = None
            landed = self._put_values(st, rec, base, ts, values)
        if landed:
            src = reading.source
            if src is None:
                rec[6] = True
            elif rec[2] is None:
                rec[2] = src.topic
                rec[3] = src.partition
                rec[4] = rec[5] = src.offset
            elif src.topic == rec[2] and src.partition == rec[3]:
                off = src.offset
                if off < rec[4]:
                    rec[4] = off
                elif off > rec[5]:
                    rec[5] = off
            else:
                rec[6] = True

    def _put_values(
        self, st: _Asset, rec: list[Any], base: int, ts: float, values: Mapping[str, float]
    ) -> bool:
        """Place values one by one; True when at least one landed in the bucket."""
        pv = st.pv
        pts = st.pts
        cidx = self._cidx
        landed = False
        fresh = 0
        for name, v in values.items():
            c = cidx.get(name)
            if c is None:
                self._unknown += 1
                continue
            try:
                finite = v * 0.0 == 0.0  # False for NaN and ±inf
            except (TypeError, OverflowError):  # not a number, or an int beyond float64
                finite = False
            if not finite:
                self._non_finite += 1
                continue
            k = base + c
            t = pts[k]
            if ts >= t:  # the latest event time wins; on a tie, the later arrival
                if t == _NEG_INF:
                    fresh += 1
                pv[k] = v
                pts[k] = ts
            landed = True
        rec[1] += fresh
        return landed

    def _finalize(self, st: _Asset, upto: int, out: list[Window]) -> None:
        """Make every bucket below ``upto`` final, in bucket order."""
        P = self._P
        slots = st.slots
        j = st.next_final
        stop = min(upto, st.top + 1)  # no bucket above top holds data: at most P iterations
        while j < stop:
            slot = j % P
            if slots[slot][0] == j:
                if j > st.next_final:
                    self._empties(st, j, out)
                self._close(st, j, slot, out)
            j += 1
        if upto > st.next_final:
            self._empties(st, upto, out)

    def _empties(self, st: _Asset, end: int, out: list[Window]) -> None:
        """Buckets ``next_final .. end-1`` received nothing: fill what max_gap allows."""
        first = st.next_final
        fill_to = max(min(st.lj), st.full) + self._G  # last bucket every channel can fill
        st.next_final = end
        for j in range(first, min(end - 1, fill_to) + 1):
            self._append(st, j, _EMPTY, _BIG, -_BIG, out)
        if end - 1 > fill_to:
            self._break(st)

    def _close(self, st: _Asset, j: int, slot: int, out: list[Window]) -> None:
        """Bucket ``j`` (= next_final, with readings in ``slot``) becomes final."""
        C = self._C
        base = slot * C
        lj = st.lj
        rec = st.slots[slot]
        if rec[1] == C:  # every channel present: the row is the bucket
            st.lvm[:] = st.pvm[base : base + C]
            st.full = j
            valid = True
        else:
            pts = st.pts
            pv = st.pv
            lv = st.lv
            for c in range(C):
                if pts[base + c] != _NEG_INF:
                    lv[c] = pv[base + c]
                    lj[c] = j
            valid = max(min(lj), st.full) >= j - self._G
        key: _RowKey
        if rec[6]:
            key, lo, hi = _MIXED, _BIG, -_BIG
        elif rec[2] is None:
            key, lo, hi = _EMPTY, _BIG, -_BIG
        else:
            key = st.tpkey
            if key[1] != rec[3] or key[0] != rec[2]:
                key = st.tpkey = (rec[2], rec[3])
            lo = rec[4]
            hi = rec[5]
        # free the slot
        rec[0] = rec[2] = None
        rec[1] = 0
        rec[6] = False
        if rec[7] is None:
            st.pts[base : base + C] = self._neg_row
        else:
            rec[7] = None
        st.next_final = j + 1
        if valid:
            self._append(st, j, key, lo, hi, out)
        else:
            self._break(st)

    def _break(self, st: _Asset) -> None:
        if st.run:
            self._gaps += 1
        st.run = 0
        st.irr = 0
        st.maxhi = -_BIG

    def _append(
        self, st: _Asset, j: int, key: _RowKey, lo: int, hi: int, out: list[Window]
    ) -> None:
        """Add valid step ``j`` (its values: the asset's last values) to the run; emit a window
        when the run and the stride say so."""
        n = st.n
        if n == self._cap:
            n = self._new_ring(st)
        C = self._C
        st.ringm[n * C : n * C + C] = st.lvm
        rk = st.rk
        rk[n] = key
        st.rlo[n] = lo
        st.rhi[n] = hi
        run = st.run + 1
        maxhi = st.maxhi
        # the fast offset path holds while steps continue one source strictly upwards
        if not (lo > maxhi and n and key.__class__ is tuple and rk[n - 1] == key):
            st.irr = run
        if hi > maxhi:
            st.maxhi = hi
        n += 1
        st.n = n
        st.run = run
        W = self._W
        if run >= W and (run - W) % self._S == 0:
            s = n - W
            k0 = rk[s]
            span: OffsetSpan | None
            if st.irr <= run - W + 1 and k0.__class__ is tuple:
                # each later step is from k0's source and above every earlier offset
                span = _offset_span(k0[0], k0[1], st.rlo[s], st.rhi[n - 1])
            elif k0 == _MIXED:
                span = None
            else:
                span = _span(rk[s:n], st.rlo[s:n], st.rhi[s:n])
            p = self._p
            out.append(_window(st.name, (j - W + 1) * p, j * p, st.view[s:n], self._channels, span))
            self._windows_emitted += 1

    def _new_ring(self, st: _Asset) -> int:
        """The ring is full: carry the last W-1 rows of the run over to a fresh one."""
        n = st.n
        keep = min(st.run, n, self._W - 1)
        src = n - keep
        ring = np.empty_like(st.ring)
        ring[:keep] = st.ring[src:n]
        st.ring = ring
        st.ringm = _flat(ring)
        st.view = _read_only(ring)
        st.rk[:keep] = st.rk[src:n]
        st.rlo[:keep] = st.rlo[src:n]
        st.rhi[:keep] = st.rhi[src:n]
        st.n = keep
        return keep

    # -- state ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state; :meth:`restore` continues from it exactly as this object would."""
        C = self._C
        assets = []
        for st in self._assets.values():
            keep = min(st.run, st.n, self._W - 1)
            rows = slice(st.n - keep, st.n)
            pending: list[dict[str, Any]] = []
            for slot, rec in enumerate(st.slots):
                if rec[0] is None:
                    continue
                base = slot * C
                times = [rec[7]] * C if rec[7] is not None else st.pts[base : base + C]
                values = {
                    self._channels[c]: [st.pv[base + c], times[c]]
                    for c in range(C)
                    if times[c] != _NEG_INF
                }
                source: list[Any] | str | None
                if rec[6]:
                    source = _MIXED
                elif rec[2] is None:
                    source = None
                else:
                    source = [rec[2], rec[3], rec[4], rec[5]]
                pending.append({"bucket": rec[0], "values": values, "source": source})
            pending.sort(key=lambda item: int(item["bucket"]))
            assets.append(
                {
                    "asset": st.name,
                    "newest": st.newest,
                    "next_final": st.next_final,
                    "top": st.top,
                    "run": st.run,
                    "irr": st.irr,
                    "maxhi": st.maxhi,
                    "last_values": st.lv.tolist(),
                    "last_buckets": [
                        None if j == _NEVER else j for j in (max(c, st.full) for c in st.lj)
                    ],
                    "rows": st.ring[rows].tolist(),
                    "row_keys": [list(k) if isinstance(k, tuple) else k for k in st.rk[rows]],
                    "row_lo": st.rlo[rows].tolist(),
                    "row_hi": st.rhi[rows].tolist(),
                    "pending": pending,
                }
            )
        counters = self.stats
        return {
            "version": _STATE_VERSION,
            "config": self.config.to_dict(),
            "stats": {f.name: getattr(counters, f.name) for f in fields(counters)},
            "assets": assets,
        }

    @classmethod
    def restore(cls, config: WindowConfig, state: Mapping[str, Any]) -> Windower:
        """Rebuild a windower from :meth:`snapshot`. ``stride``, ``max_gap_s`` and
        ``max_assets`` may differ from the snapshot's config; the fields that shape the
        buffered state may not."""
        if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
            got = state.get("version") if isinstance(state, Mapping) else type(state).__name__
            raise InputError(
                f"Windower.restore: expected a windower snapshot of version {_STATE_VERSION}, "
                f"got version {got!r}; take it with Windower.snapshot()"
            )
        saved = WindowConfig.from_dict(state["config"])
        changed = [f for f in _FIXED_ON_RESTORE if getattr(saved, f) != getattr(config, f)]
        if changed:
            raise ConfigError(
                f"Windower.restore: WindowConfig field(s) {changed} differ from the snapshot's "
                f"({', '.join(f'{f}={getattr(saved, f)!r}' for f in changed)}); the buffered "
                "state only fits the config it was taken with: restore with that config, or "
                "start a fresh Windower"
            )
        self = cls(config)
        stats = state["stats"]
        self._windows_emitted = int(stats["windows_emitted"])
        self._late = int(stats["late_dropped"])
        self._gaps = int(stats["gaps"])
        self._unknown = int(stats["unknown_channel_values_dropped"])
        self._non_finite = int(stats["non_finite_values_dropped"])
        self._bad_ts = int(stats["invalid_ts_dropped"])
        self._assets_dropped = int(stats["assets_dropped"])
        C = self._C
        for a in state["assets"]:
            st = _Asset(str(a["asset"]), C, self._cap, self._P)
            st.newest = float(a["newest"])
            st.next_final = int(a["next_final"])
            st.top = int(a["top"])
            st.run = int(a["run"])
            st.irr = int(a["irr"])
            st.maxhi = int(a["maxhi"])
            st.lv[:] = array("d", [float(v) for v in a["last_values"]])
            st.lj = [_NEVER if j is None else int(j) for j in a["last_buckets"]]
            rows = a["rows"]
            n = st.n = len(rows)
            if n:
                st.ring[:n] = np.asarray(rows, dtype=np.float64).reshape(n, C)
            st.rk[:n] = [
                (str(k[0]), int(k[1])) if isinstance(k, list) else str(k) for k in a["row_keys"]
            ]
            st.rlo[:n] = array("q", [int(x) for x in a["row_lo"]])
            st.rhi[:n] = array("q", [int(x) for x in a["row_hi"]])
            for item in a["pending"]:
                b = int(item["bucket"])
                slot = b % self._P
                rec = st.slots[slot]
                rec[0] = b
                base = slot * C
                for name, (v, t) in item["values"].items():
                    k = base + self._cidx[name]
                    st.pv[k] = float(v)
                    st.pts[k] = float(t)
                    rec[1] += 1
                source = item["source"]
                if source == _MIXED:
                    rec[6] = True
                elif source is not None:
                    rec[2] = str(source[0])
                    rec[3] = int(source[1])
                    rec[4] = int(source[2])
                    rec[5] = int(source[3])
            self._assets[st.name] = st
        return self
