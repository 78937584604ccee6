"""The streaming windower: readings in event time → per-asset windows (list in, list out)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamvae.errors import ConfigError, InputError
from streamvae.types import OffsetSpan, Reading, SourceRef, Window
from streamvae.windowing import WindowConfig, Windower

XY = ("x", "y")


def r(ts, asset="a", source=None, **values):
    return Reading(asset, float(ts), values, source)


def spans(windows):
    return [(w.start_ts, w.end_ts) for w in windows]


def as_tuple(w: Window):
    """Everything a window carries, with the values as exact bits."""
    return (
        w.asset,
        w.start_ts,
        w.end_ts,
        w.values.shape,
        w.values.tobytes(),
        w.channels,
        w.offsets,
    )


# -- windows from a regular stream -----------------------------------------------------------


def test_a_regular_stream_gives_windows_of_w_steps_every_stride_steps():
    w = Windower(WindowConfig(channels=XY, window=4, stride=2))
    out = w.push_many(r(t, x=float(t), y=10.0 * t) for t in range(10))
    # buckets 0..8 are final (9 waits for a later reading); runs of 4, 6, 8 steps emit
    assert spans(out) == [(0.0, 3.0), (2.0, 5.0), (4.0, 7.0)]
    assert out[1].values.tolist() == [[2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [5.0, 50.0]]
    assert out[1].values.dtype == np.float64
    assert out[1].channels == XY
    assert out[1].asset == "a"


def test_step_times_are_bucket_start_times_in_seconds():
    w = Windower(WindowConfig(channels=("x",), period_s=60.0, window=2))
    out = w.push_many([r(130.0, x=1.0), r(185.0, x=2.0), r(241.0, x=3.0)])
    assert spans(out) == [(120.0, 180.0)]


def test_channels_come_out_in_config_order_whatever_the_reading_order():
    w = Windower(WindowConfig(channels=("b", "a"), window=1))
    out = w.push_many([Reading("p", 0.0, {"a": 1.0, "b": 2.0}), r(1, asset="p", a=0.0, b=0.0)])
    assert out[0].values.tolist() == [[2.0, 1.0]]


def test_a_univariate_stream_gives_one_channel_windows():
    w = Windower(WindowConfig(channels=("temp",), window=3))
    out = w.push_many(r(t, temp=20.0 + t) for t in range(5))
    assert spans(out) == [(0.0, 2.0), (1.0, 3.0)]
    assert out[1].values.shape == (3, 1)
    assert out[1].values[:, 0].tolist() == [21.0, 22.0, 23.0]


def test_window_values_are_read_only_so_no_consumer_can_corrupt_a_neighbour():
    w = Windower(WindowConfig(channels=("x",), window=2))
    out = w.push_many(r(t, x=float(t)) for t in range(4))
    with pytest.raises(ValueError, match="read-only"):
        out[0].values[0, 0] = 99.0
    assert out[1].values.tolist() == [[1.0], [2.0]]


def test_emitted_windows_are_plain_window_records():
    w = Windower(WindowConfig(channels=("x",), window=1))
    win = w.push_many([r(0, source=SourceRef("s", 0, 1), x=1.0), r(1, x=2.0)])[0]
    rebuilt = Window(win.asset, win.start_ts, win.end_ts, win.values, win.channels, win.offsets)
    assert type(win) is Window
    assert type(win.offsets) is OffsetSpan
    assert repr(win) == repr(rebuilt)
    with pytest.raises(dataclasses.FrozenInstanceError):
        win.asset = "b"  # type: ignore[misc]


def test_windows_keep_their_values_while_the_ring_buffer_wraps_many_times():
    w = Windower(WindowConfig(channels=XY, window=3))
    out = w.push_many(r(t, x=float(t), y=-float(t)) for t in range(500))
    assert len(out) == 497
    for k, win in enumerate(out):
        assert win.values[:, 0].tolist() == [k, k + 1, k + 2]


def test_flush_finalises_the_pending_buckets():
    w = Windower(WindowConfig(channels=("x",), window=2))
    assert w.push_many([r(0, x=1.0), r(1, x=2.0)]) == []
    assert spans(w.flush()) == [(0.0, 1.0)]
    assert w.flush() == []


# -- resampling --------------------------------------------------------------------------------


def test_resampling_keeps_the_value_with_the_latest_event_time_in_each_bucket():
    w = Windower(WindowConfig(channels=("x",), window=1))
    out = w.push_many([r(0.1, x=1.0), r(0.7, x=2.0), r(0.4, x=3.0), r(1.0, x=0.0)])
    assert out[0].values.tolist() == [[2.0]]


def test_on_equal_event_times_the_later_arrival_wins():
    w = Windower(WindowConfig(channels=("x",), window=1))
    out = w.push_many([r(0.5, x=1.0), r(0.5, x=2.0), r(1.0, x=0.0)])
    assert out[0].values.tolist() == [[2.0]]


def test_single_channel_readings_of_one_bucket_are_aligned_into_one_step():
    w = Windower(WindowConfig(channels=XY, window=2, max_gap_s=0.0))
    readings = []
    for t in range(3):
        readings += [r(t + 0.2, x=float(t)), r(t + 0.6, y=10.0 + t)]
    out = w.push_many(readings)
    assert spans(out) == [(0.0, 1.0)]
    assert out[0].values.tolist() == [[0.0, 10.0], [1.0, 11.0]]


# -- gaps --------------------------------------------------------------------------------------


def test_empty_buckets_are_forward_filled_up_to_max_gap():
    w = Windower(WindowConfig(channels=("x",), window=5, max_gap_s=2.0))
    out = w.push_many([r(0, x=0.0), r(1, x=1.0), r(4, x=4.0), r(5, x=5.0)])
    assert spans(out) == [(0.0, 4.0)]
    assert out[0].values[:, 0].tolist() == [0.0, 1.0, 1.0, 1.0, 4.0]


def test_a_channel_missing_from_a_bucket_is_filled_from_its_last_value():
    w = Windower(WindowConfig(channels=XY, window=3, max_gap_s=1.0))
    out = w.push_many([r(0, x=0.0, y=0.0), r(1, x=1.0), r(2, x=2.0, y=2.0), r(3, x=0, y=0)])
    assert out[0].values.tolist() == [[0.0, 0.0], [1.0, 0.0], [2.0, 2.0]]


def test_a_channel_silent_longer_than_max_gap_ends_the_run():
    w = Windower(WindowConfig(channels=XY, window=2, max_gap_s=1.0))
    readings = [r(0, x=0.0, y=0.0)] + [r(t, x=float(t)) for t in range(1, 5)]
    out = w.push_many(readings)
    assert spans(out) == [(0.0, 1.0)]  # bucket 2 has y from bucket 0: 2 s old > 1 s
    assert w.stats.gaps == 1


def test_a_gap_longer_than_max_gap_is_never_spanned_and_windows_resume_after_w_new_steps():
    w = Windower(WindowConfig(channels=("x",), window=3, max_gap_s=2.0))
    times = [0, 1, 2, 3, 7, 8, 9, 10, 11]  # 4 and 5 can be filled from 3; 6 cannot
    out = w.push_many(r(t, x=float(t)) for t in times)
    assert spans(out) == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0), (7.0, 9.0), (8.0, 10.0)]
    assert out[3].values[:, 0].tolist() == [3.0, 3.0, 3.0]
    assert w.stats.gaps == 1


def test_the_steps_a_gap_allows_are_filled_before_the_run_breaks():
    w = Windower(WindowConfig(channels=("x",), window=3, max_gap_s=1.0))
    out = w.push_many([r(0, x=0.0), r(1, x=1.0), r(9, x=9.0)])
    # bucket 2 is still within 1 s of bucket 1; 3..8 are not
    assert spans(out) == [(0.0, 2.0)]
    assert out[0].values[:, 0].tolist() == [0.0, 1.0, 1.0]


def test_a_channel_never_seen_gives_no_window():
    w = Windower(WindowConfig(channels=XY, window=2))
    assert w.push_many(r(t, x=float(t)) for t in range(10)) == []
    assert w.stats.gaps == 0  # nothing was ever running


# -- lateness ----------------------------------------------------------------------------------


def test_a_reading_out_of_order_within_allowed_lateness_is_placed_in_its_bucket():
    w = Windower(WindowConfig(channels=("x",), window=4, allowed_lateness_s=2.0))
    out = w.push_many([r(0, x=0.0), r(1, x=1.0), r(3, x=3.0), r(2, x=2.0), r(4, x=4.0)])
    out += w.push_many([r(5, x=5.0), r(6, x=6.0), r(7, x=7.0)])
    assert spans(out) == [(0.0, 3.0), (1.0, 4.0)]
    assert out[0].values[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert w.stats.late_dropped == 0


def test_a_bucket_waits_for_allowed_lateness_after_its_end():
    w = Windower(WindowConfig(channels=("x",), window=1, allowed_lateness_s=2.0))
    assert w.push_many([r(0.5, x=0.0), r(2.9, x=1.0)]) == []  # 2.9 - 2 < 1: bucket 0 open
    assert spans(w.push(r(3.0, x=2.0))) == [(0.0, 0.0)]


def test_a_reading_later_than_allowed_lateness_is_dropped_and_counted():
    w = Windower(WindowConfig(channels=("x",), window=1, allowed_lateness_s=1.0))
    readings = [r(0, x=0.0), r(1, x=1.0), r(2, x=2.0), r(3, x=3.0), r(1.5, x=99.0), r(4, x=4.0)]
    out = w.push_many(readings)
    assert [win.values[0, 0] for win in out] == [0.0, 1.0, 2.0]
    assert w.stats.late_dropped == 1


def test_with_no_lateness_a_bucket_is_final_once_a_later_bucket_is_seen():
    w = Windower(WindowConfig(channels=("x",), window=1))
    out = w.push_many([r(0.2, x=1.0), r(1.1, x=2.0), r(0.9, x=3.0)])
    assert [win.values[0, 0] for win in out] == [1.0]
    assert w.stats.late_dropped == 1


# -- assets --------------------------------------------------------------------------------------


def test_one_assets_event_time_does_not_finalise_another_assets_buckets():
    w = Windower(WindowConfig(channels=("x",), window=1))
    w.push(r(0, asset="slow", x=1.0))
    out = w.push_many(r(t, asset="fast", x=float(t)) for t in range(1, 50))
    assert {win.asset for win in out} == {"fast"}
    # and "slow" may still fill its own open bucket
    w.push(r(0.5, asset="slow", x=2.0))
    assert [(win.asset, win.values[0, 0]) for win in w.push(r(1, asset="slow", x=0.0))] == [
        ("slow", 2.0)
    ]
    assert w.stats.late_dropped == 0


def test_readings_of_assets_beyond_max_assets_are_dropped_and_counted():
    w = Windower(WindowConfig(channels=("x",), window=1, max_assets=2))
    readings = [r(t, asset=a, x=1.0) for t in range(3) for a in ("a", "b", "c")]
    out = w.push_many(readings)
    assert {win.asset for win in out} == {"a", "b"}
    assert w.stats.assets_dropped == 3
    assert w.stats.assets == 2


def test_forgetting_an_asset_frees_its_place_under_max_assets():
    w = Windower(WindowConfig(channels=("x",), window=1, max_assets=1))
    w.push(r(0, asset="a", x=1.0))
    w.forget("a")
    w.push_many([r(0, asset="b", x=1.0), r(1, asset="b", x=1.0)])
    assert w.assets == ("b",)
    assert w.stats.assets_dropped == 0


# -- bad values ----------------------------------------------------------------------------------


def test_values_of_unknown_channels_are_dropped_and_counted():
    w = Windower(WindowConfig(channels=("x",), window=1))
    out = w.push_many([r(0, x=1.0, bogus=5.0), r(1, x=2.0)])
    assert out[0].values.tolist() == [[1.0]]
    assert w.stats.unknown_channel_values_dropped == 1


def test_non_finite_values_are_dropped_and_counted_and_the_last_good_value_fills_in():
    w = Windower(WindowConfig(channels=XY, window=2))
    out = w.push_many([r(0, x=1.0, y=1.0), r(1, x=math.nan, y=2.0), r(2, x=3.0, y=math.inf)])
    out += w.push(r(3, x=0.0, y=0.0))
    assert out[0].values.tolist() == [[1.0, 1.0], [1.0, 2.0]]
    assert out[1].values.tolist() == [[1.0, 2.0], [3.0, 2.0]]
    assert w.stats.non_finite_values_dropped == 2


@pytest.mark.parametrize("bad", ["12.5", None, 10**400])
def test_values_that_are_not_float64_numbers_are_dropped_and_counted(bad):
    w = Windower(WindowConfig(channels=XY, window=1))
    out = w.push_many([r(0, x=1.0, y=1.0), r(1, x=bad, y=2.0), r(2, x=0.0, y=0.0)])
    assert out[1].values.tolist() == [[1.0, 2.0]]
    assert w.stats.non_finite_values_dropped == 1


def test_readings_with_a_non_finite_timestamp_are_dropped_and_counted():
    w = Windower(WindowConfig(channels=("x",), window=1))
    assert w.push_many([r(math.nan, x=1.0), r(math.inf, x=1.0)]) == []
    assert w.stats.invalid_ts_dropped == 2
    assert w.assets == ()


# -- offsets -------------------------------------------------------------------------------------


def test_a_windows_offsets_span_the_readings_in_its_buckets():
    w = Windower(WindowConfig(channels=XY, window=2))
    readings = [
        r(0.0, source=SourceRef("s", 3, 100), x=0.0),
        r(0.5, source=SourceRef("s", 3, 101), y=0.0),
        r(1.0, source=SourceRef("s", 3, 102), x=1.0, y=1.0),
        r(2.0, source=SourceRef("s", 3, 103), x=2.0, y=2.0),
        r(3.0, source=SourceRef("s", 3, 104), x=3.0, y=3.0),
    ]
    out = w.push_many(readings)
    assert [win.offsets for win in out] == [
        OffsetSpan("s", 3, 100, 102),
        OffsetSpan("s", 3, 102, 103),
    ]


def test_offsets_span_min_and_max_even_when_offsets_arrive_out_of_bucket_order():
    w = Windower(WindowConfig(channels=("x",), window=2, allowed_lateness_s=2.0))
    readings = [
        r(0, source=SourceRef("s", 0, 10), x=0.0),
        r(2, source=SourceRef("s", 0, 11), x=2.0),
        r(1, source=SourceRef("s", 0, 12), x=1.0),
    ]
    w.push_many(readings)
    assert [win.offsets for win in w.flush()] == [
        OffsetSpan("s", 0, 10, 12),
        OffsetSpan("s", 0, 11, 12),
    ]


def test_offsets_are_none_when_the_readings_come_from_several_partitions():
    w = Windower(WindowConfig(channels=("x",), window=2))
    readings = [
        r(0, source=SourceRef("s", 0, 10), x=0.0),
        r(1, source=SourceRef("s", 1, 11), x=1.0),
        r(2, source=SourceRef("s", 1, 12), x=2.0),
        r(3, source=SourceRef("s", 1, 13), x=2.0),
    ]
    out = w.push_many(readings)
    assert [win.offsets for win in out] == [None, OffsetSpan("s", 1, 11, 12)]


def test_offsets_are_none_when_a_reading_has_no_source():
    w = Windower(WindowConfig(channels=("x",), window=1))
    out = w.push_many([r(0, x=0.0), r(1, x=1.0)])
    assert out[0].offsets is None


def test_forward_filled_steps_add_no_offsets():
    w = Windower(WindowConfig(channels=("x",), window=3, max_gap_s=2.0))
    readings = [
        r(0, source=SourceRef("s", 0, 5), x=0.0),
        r(3, source=SourceRef("s", 0, 6), x=3.0),
        r(4, source=SourceRef("s", 0, 7), x=4.0),
    ]
    out = w.push_many(readings)
    # steps 1 and 2 are filled from step 0; no reading landed in them
    assert [win.offsets for win in out] == [OffsetSpan("s", 0, 5, 5), OffsetSpan("s", 0, 6, 6)]


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"channels": ()}, "channels"),
        ({"channels": ("a", "a")}, "channels"),
        ({"period_s": 0.0}, "period_s"),
        ({"window": 0}, "window"),
        ({"stride": 0}, "stride"),
        ({"max_gap_s": -1.0}, "max_gap_s"),
        ({"allowed_lateness_s": math.nan}, "allowed_lateness_s"),
        ({"allowed_lateness_s": 1e9}, "allowed_lateness_s"),
        ({"max_assets": 0}, "max_assets"),
    ],
)
def test_window_config_errors_name_the_bad_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"WindowConfig\.{field}:"):
        WindowConfig(**{"channels": XY, **kwargs})


def test_window_config_round_trips_through_a_dict():
    cfg = WindowConfig(channels=XY, period_s=0.5, window=8, stride=2, allowed_lateness_s=1.5)
    assert WindowConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


# -- state ---------------------------------------------------------------------------------------


def test_restore_refuses_a_config_that_changes_the_buffered_state():
    w = Windower(WindowConfig(channels=XY, window=4))
    w.push(r(0, x=1.0, y=1.0))
    with pytest.raises(ConfigError, match=r"\['window'\]"):
        Windower.restore(WindowConfig(channels=XY, window=8), w.snapshot())


def test_restore_refuses_something_that_is_not_a_windower_snapshot():
    with pytest.raises(InputError, match="windower snapshot"):
        Windower.restore(WindowConfig(channels=XY), {"version": 99})


def test_restore_accepts_a_new_stride_and_the_stride_applies_from_then_on():
    cfg = WindowConfig(channels=("x",), window=2, stride=1)
    w = Windower(cfg)
    w.push_many(r(t, x=float(t)) for t in range(3))
    w2 = Windower.restore(WindowConfig(channels=("x",), window=2, stride=3), w.snapshot())
    assert spans(w2.push_many(r(t, x=float(t)) for t in range(3, 9))) == [(3.0, 4.0), (6.0, 7.0)]


# -- properties: a reference transcription, cut-and-restore, lateness-shuffle ---------------------

CHANNELS = ("x", "y")


def reference_windows(cfg: WindowConfig, readings: list[Reading]) -> dict[str, list[tuple]]:
    """The module docstring's rules, applied the slow, obvious way after the fact (then flush)."""
    p, lateness = cfg.period_s, cfg.allowed_lateness_s
    n_pending = cfg.max_pending
    gap_steps = cfg.max_gap_steps
    next_final: dict[str, int] = {}
    newest: dict[str, float] = {}
    accepted: dict[str, list[tuple[int, Reading]]] = defaultdict(list)
    for i, rd in enumerate(readings):
        b = math.floor(rd.ts / p)
        wm = max(math.floor((rd.ts - lateness) / p), b - n_pending + 1) if lateness else b
        if rd.asset not in next_final:
            if len(next_final) >= cfg.max_assets:
                continue
            next_final[rd.asset], newest[rd.asset] = wm, rd.ts
        elif b < next_final[rd.asset]:
            continue  # late
        if rd.ts > newest[rd.asset]:
            newest[rd.asset] = rd.ts
            next_final[rd.asset] = max(next_final[rd.asset], wm)
        accepted[rd.asset].append((i, rd))

    result: dict[str, list[tuple]] = {}
    for asset, items in accepted.items():
        buckets: dict[int, dict[str, tuple[float, int, float]]] = defaultdict(dict)
        sources: dict[int, list[SourceRef | None]] = defaultdict(list)
        for i, rd in items:
            b = math.floor(rd.ts / p)
            buckets.setdefault(b, {})
            good = {c: v for c, v in rd.values.items() if c in cfg.channels and math.isfinite(v)}
            for c, v in good.items():
                if c not in buckets[b] or (rd.ts, i) >= buckets[b][c][:2]:
                    buckets[b][c] = (rd.ts, i, v)
            if good:
                sources[b].append(rd.source)
        last: dict[str, tuple[int, float]] = {}
        run: list[tuple[int, list[float], list[SourceRef | None]]] = []
        windows = []
        for b in range(min(buckets), max(buckets) + 1):
            for c, (_, _, v) in buckets.get(b, {}).items():
                last[c] = (b, v)
            if all(c in last and b - last[c][0] <= gap_steps for c in cfg.channels):
                run.append((b, [last[c][1] for c in cfg.channels], sources.get(b, [])))
            else:
                run = []
                continue
            if len(run) >= cfg.window and (len(run) - cfg.window) % cfg.stride == 0:
                steps = run[-cfg.window :]
                srcs = [s for _, _, ss in steps for s in ss]
                span = None
                one_source = len({None if s is None else (s.topic, s.partition) for s in srcs})
                if srcs and None not in srcs and one_source == 1:
                    offs = [s.offset for s in srcs]
                    span = OffsetSpan(srcs[0].topic, srcs[0].partition, min(offs), max(offs))
                values = np.array([row for _, row, _ in steps], dtype=np.float64)
                start, end = steps[0][0] * p, steps[-1][0] * p
                shape, data = values.shape, values.tobytes()
                windows.append((asset, start, end, shape, data, cfg.channels, span))
        result[asset] = windows
    return result


def by_asset(windows: list[Window]) -> dict[str, list[tuple]]:
    grouped: dict[str, list[tuple]] = defaultdict(list)
    for w in windows:
        grouped[w.asset].append(as_tuple(w))
    return grouped


configs = st.builds(
    WindowConfig,
    channels=st.sampled_from([("x",), CHANNELS]),
    period_s=st.sampled_from([0.5, 1.0]),
    window=st.integers(1, 5),
    stride=st.integers(1, 3),
    max_gap_s=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),
    allowed_lateness_s=st.sampled_from([0.0, 0.5, 1.0, 2.5]),
    max_assets=st.integers(1, 3),
)


@st.composite
def streams(draw, ordered: bool = False):
    """Readings of up to three assets on a 0.25 s grid: each asset's clock mostly moves on by
    a step or two, sometimes jumps (gaps); unless ``ordered``, a reading may be stamped up to
    2 s before its asset's clock (out of order, maybe late). Multi- and single-channel
    messages, the odd unknown channel and NaN, sources from one partition mostly."""
    n = draw(st.integers(0, 80))
    readings = []
    clock = {"a": 0.0, "b": 0.0, "c": 0.0}
    for i in range(n):
        asset = draw(st.sampled_from(["a", "a", "a", "b", "b", "c"]))
        jump = draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4, 0 if not ordered else 1, 12, 30]))
        clock[asset] += 0.25 * jump
        ts = clock[asset] if ordered else clock[asset] - 0.25 * draw(st.integers(0, 8))
        keys = draw(st.sampled_from([("x", "y"), ("x", "y"), ("x",), ("y",), ("x", "y", "z")]))
        values = {k: float(draw(st.integers(-5, 5))) for k in keys}
        if draw(st.integers(0, 30)) == 0:
            values["x"] = math.nan
        kind = draw(st.integers(0, 20))
        source = None if kind == 0 else SourceRef("t", 1 if kind == 1 else 0, 1000 + i)
        readings.append(Reading(asset, ts, values, source))
    return readings


@settings(max_examples=300, deadline=None)
@given(cfg=configs, readings=streams())
def test_windows_match_a_direct_transcription_of_the_rules(cfg, readings):
    w = Windower(cfg)
    got = by_asset(w.push_many(readings) + w.flush())
    want = reference_windows(cfg, readings)
    assert {a: ws for a, ws in got.items() if ws} == {a: ws for a, ws in want.items() if ws}


@settings(max_examples=200, deadline=None)
@given(cfg=configs, readings=streams(), cut=st.floats(0.0, 1.0))
def test_cut_snapshot_json_restore_continue_gives_exactly_the_uncut_windows(cfg, readings, cut):
    uncut = Windower(cfg)
    expected = [as_tuple(w) for w in uncut.push_many(readings) + uncut.flush()]

    k = round(cut * len(readings))
    first = Windower(cfg)
    got = first.push_many(readings[:k])
    state = json.loads(json.dumps(first.snapshot(), allow_nan=False))
    second = Windower.restore(cfg, state)
    got += second.push_many(readings[k:]) + second.flush()

    assert [as_tuple(w) for w in got] == expected
    assert second.stats == uncut.stats


@settings(max_examples=200, deadline=None)
@given(cfg=configs, readings=streams(ordered=True), data=st.data())
def test_shuffling_within_allowed_lateness_gives_the_windows_of_the_ordered_stream(
    cfg, readings, data
):
    cfg = dataclasses.replace(cfg, max_assets=3)  # which assets get in depends on arrival
    steps = round(cfg.allowed_lateness_s / 0.25)
    delays = data.draw(st.lists(st.integers(0, steps), min_size=len(readings)))
    order = sorted(range(len(readings)), key=lambda i: (readings[i].ts + 0.25 * delays[i], i))
    shuffled = [readings[i] for i in order]
    in_order = sorted(readings, key=lambda rd: rd.ts)

    ordered_w, shuffled_w = Windower(cfg), Windower(cfg)
    want = by_asset(ordered_w.push_many(in_order) + ordered_w.flush())
    got = by_asset(shuffled_w.push_many(shuffled) + shuffled_w.flush())

    assert shuffled_w.stats.late_dropped == 0
    assert got == want
