"""The alert lifecycle (OK → FIRING → RESOLVED → cooldown) and the alert event on the wire."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamvae.alerting import AlertConfig, Alerter
from streamvae.errors import ConfigError, InputError
from streamvae.types import AlertEvent, OffsetSpan, ScoredWindow, Window

T0 = 1_700_000_000.0  # window i ends at T0 + 60·i (one-minute stride)
STRIDE = 60.0
VALUES = np.zeros((32, 2))
CHANNELS = ("vibration", "temp")
TOPIC = "plant.sensors"


def window(i: int, asset: str = "pump-0042", offsets: bool = True) -> Window:
    end = T0 + STRIDE * i
    span = OffsetSpan(TOPIC, 3, 1000 + 10 * i, 1000 + 10 * i + 31) if offsets else None
    return Window(asset, end - 31 * STRIDE, end, VALUES, CHANNELS, span)


def scored(
    i: int,
    flag: str,
    asset: str = "pump-0042",
    score: float | None = None,
    threshold: float = 6.1,
    contributions: dict[str, float] | None = None,
    offsets: bool = True,
) -> ScoredWindow:
    """flag: 'X' exceedance, '.' normal, 'W' anomalous during warm-up, 'R' regime change."""
    anomalous = flag in "XW"
    return ScoredWindow(
        window=window(i, asset, offsets),
        score=score if score is not None else (9.7 if anomalous else 1.0),
        threshold=threshold,
        anomalous=anomalous,
        contributions=contributions or {"vibration": 0.71, "temp": 0.29},
        model_version="v0007",
        threshold_label="p99.5",
        regime_change=flag == "R",
        warming_up=flag == "W",
    )


def run(flags: str, config: AlertConfig | None = None, asset: str = "pump-0042"):
    alerter = Alerter(config or AlertConfig(site="plant-1", k=3, m=5))
    return alerter.update_many(scored(i, f, asset) for i, f in enumerate(flags))


def end_of(i: int) -> float:
    return T0 + STRIDE * i


# ------------------------------------------------------------------ lifecycle


def test_k_consecutive_exceedances_fire_exactly_once():
    events = run("..XXXXXXX")
    assert [e.status for e in events] == ["firing"]
    assert events[0].starts_at == end_of(2)


def test_k_minus_one_consecutive_exceedances_do_not_fire():
    assert run("XX.XX.XX.XX.") == []


def test_k_of_the_last_n_windows_fire_even_with_gaps():
    events = run("X.X.X", AlertConfig(k=3, n=5))
    assert [e.status for e in events] == ["firing"]
    assert events[0].starts_at == end_of(0)  # first window of the triggering run


def test_k_exceedances_spread_over_more_than_n_windows_do_not_fire():
    assert run("X..X..X..X", AlertConfig(k=3, n=5)) == []


def test_m_normal_windows_resolve_with_the_same_dedup_key_and_ends_at_set():
    firing, resolved = run("XXX.....")
    assert resolved.status == "resolved"
    assert resolved.dedup_key == firing.dedup_key == "streamvae:plant-1:pump-0042"
    assert resolved.starts_at == firing.starts_at == end_of(0)
    assert firing.ends_at is None
    assert resolved.ends_at == end_of(7)  # the 5th normal window
    assert resolved.reason == "recovered"


def test_normal_runs_shorter_than_m_keep_the_alert_firing():
    events = run("XXX....X....X....X")
    assert [e.status for e in events] == ["firing"]


def test_an_asset_fires_again_after_a_resolved_episode():
    events = run("XXX.....XXX")
    assert [e.status for e in events] == ["firing", "resolved", "firing"]
    assert events[2].starts_at == end_of(8)
    assert events[2].id != events[0].id


def test_cooldown_suppresses_a_new_firing():
    events = run("XXX.....XXX", AlertConfig(k=3, m=5, cooldown_windows=3))
    assert [e.status for e in events] == ["firing", "resolved"]


def test_after_the_cooldown_exceedances_count_again():
    events = run("XXX.....XXXXXX", AlertConfig(k=3, m=5, cooldown_windows=3))
    assert [e.status for e in events] == ["firing", "resolved", "firing"]
    assert events[2].starts_at == end_of(11)  # first window after the 3-window cooldown


def test_windows_in_the_warm_up_never_fire():
    assert run("WWWWWWWWWW") == []


def test_a_warm_up_window_breaks_a_consecutive_run():
    assert run("XXWXXWXX") == []


def test_warm_up_windows_neither_resolve_nor_extend_an_open_alert():
    # a model swap restarts the threshold's grace period; the open alert must survive it
    events = run("XXX" + "W" * 20 + ".....")
    assert [e.status for e in events] == ["firing", "resolved"]
    assert events[1].ends_at == end_of(3 + 20 + 4)


def test_normal_windows_around_a_grace_period_do_not_add_up_to_m():
    events = run("XXX..WWWW..")
    assert [e.status for e in events] == ["firing"]


def test_a_regime_change_resolves_the_open_alert_with_its_reason():
    firing, resolved = run("XXXXR")
    assert resolved.status == "resolved"
    assert resolved.reason == "regime_change"
    assert resolved.ends_at == end_of(4)
    assert resolved.dedup_key == firing.dedup_key


def test_a_regime_change_while_ok_clears_the_exceedances_counted_so_far():
    assert run("XXRX", AlertConfig(k=3, n=10)) == []


def test_assets_have_independent_lifecycles():
    alerter = Alerter(AlertConfig(k=3, m=2))
    events = []
    for i in range(6):
        events += alerter.update(scored(i, "X", asset="pump-a"))
        events += alerter.update(scored(i, ".", asset="pump-b"))
    assert [(e.asset, e.status) for e in events] == [("pump-a", "firing")]
    assert set(alerter.active()) == {"pump-a"}
    events = alerter.update_many(scored(6 + i, ".", asset="pump-a") for i in range(2))
    assert [(e.asset, e.status) for e in events] == [("pump-a", "resolved")]
    assert alerter.active() == {}


def test_quiet_assets_keep_no_state():
    alerter = Alerter(AlertConfig(k=3, m=2))
    alerter.update_many(scored(i, f, asset=f"pump-{i % 7}") for i, f in enumerate("." * 50))
    alerter.update_many(scored(i, f) for i, f in enumerate("XXX.."))
    assert alerter.snapshot()["assets"] == {}


# ------------------------------------------------------------------ what the events say


def test_the_firing_event_reports_the_triggering_window():
    alerter = Alerter(AlertConfig(k=3))
    scores = [7.0, 15.0, 8.0]
    events = alerter.update_many(scored(i, "X", score=s) for i, s in enumerate(scores))
    (firing,) = events
    assert (firing.score, firing.threshold) == (8.0, 6.1)
    assert (firing.window_start, firing.window_end) == (end_of(2) - 31 * STRIDE, end_of(2))
    assert firing.model_version == "v0007"


def test_the_resolved_event_reports_the_episode_peak_score():
    alerter = Alerter(AlertConfig(k=2, m=2))
    scores = [7.0, 8.0, 15.0, 9.0, 1.0, 1.0]
    flags = "XXXX.."
    events = alerter.update_many(
        scored(i, f, score=s) for i, (f, s) in enumerate(zip(flags, scores, strict=True))
    )
    resolved = events[-1]
    assert resolved.score == 15.0
    assert resolved.window_end == end_of(2)


@pytest.mark.parametrize(
    ("score", "threshold", "critical_ratio", "severity"),
    [
        (9.0, 6.0, 2.0, "warning"),  # 1.5x
        (12.0, 6.0, 2.0, "critical"),  # exactly 2x
        (9.0, 6.0, 1.5, "critical"),  # bands are configurable
        (0.5, -1.0, 2.0, "critical"),  # negative threshold: 1 + 1.5/1 = 2.5x
        (-0.8, -1.0, 2.0, "warning"),  # 1 + 0.2/1 = 1.2x
    ],
)
def test_severity_follows_the_score_to_threshold_ratio(score, threshold, critical_ratio, severity):
    config = AlertConfig(k=1, critical_ratio=critical_ratio)
    (event,) = Alerter(config).update(scored(0, "X", score=score, threshold=threshold))
    assert event.severity == severity


def test_the_summary_names_asset_score_threshold_and_top_channel():
    firing, resolved = run("XXX.....")
    assert firing.summary == (
        "pump-0042 anomalous: score 9.70 nats > threshold 6.10 nats (p99.5); top channel vibration"
    )
    assert resolved.summary == (
        "pump-0042 recovered: peak score 9.70 nats > threshold 6.10 nats (p99.5); "
        "top channel vibration"
    )


def test_the_summary_is_cut_to_1024_characters():
    asset = "pump-" + "x" * 2000
    (firing,) = run("XXX", asset=asset)
    assert len(firing.summary) == 1024
    assert firing.summary.endswith("…")


def test_contributions_are_the_mean_over_the_triggering_windows_largest_first():
    alerter = Alerter(AlertConfig(k=3))
    shares = [
        {"vibration": 0.9, "temp": 0.1},  # the peak window points at vibration ...
        {"vibration": 0.1, "temp": 0.9},
        {"vibration": 0.2, "temp": 0.8},
    ]
    scores = [20.0, 8.0, 8.0]
    (firing,) = alerter.update_many(
        scored(i, "X", score=s, contributions=c)
        for i, (s, c) in enumerate(zip(scores, shares, strict=True))
    )
    assert list(firing.contributions.items()) == [("temp", 0.6), ("vibration", 0.4)]
    assert firing.summary.endswith("; top channel temp")  # ... the mean names temp


def test_the_resolved_event_carries_the_mean_over_all_exceeding_windows_of_the_episode():
    alerter = Alerter(AlertConfig(k=1, m=2))
    shares = [{"vibration": 0.8, "temp": 0.2}, {}, {"vibration": 0.2, "temp": 0.8}]
    flags = "X.X.."
    events = []
    for i, f in enumerate(flags):
        c = shares[i] if f == "X" else {"vibration": 0.0, "temp": 1.0}
        events += alerter.update(scored(i, f, contributions=c))
    firing, resolved = events
    assert firing.contributions == {"vibration": 0.8, "temp": 0.2}
    assert resolved.contributions == {"temp": 0.5, "vibration": 0.5}  # normal windows excluded


def test_offsets_span_the_triggering_run_then_the_whole_episode():
    firing, resolved = run("..XXX.....")
    assert firing.input == OffsetSpan(TOPIC, 3, 1020, 1040 + 31)  # windows 2..4
    assert resolved.input == OffsetSpan(TOPIC, 3, 1020, 1090 + 31)  # windows 2..9


def test_the_input_is_null_when_a_window_has_no_offsets():
    alerter = Alerter(AlertConfig(k=2))
    (firing,) = alerter.update_many([scored(0, "X"), scored(1, "X", offsets=False)])
    assert firing.input is None


# ------------------------------------------------------------------ the event on the wire


def test_ids_are_sha256_of_dedup_key_starts_at_and_status():
    firing, resolved = run("XXX.....")
    text = "streamvae:plant-1:pump-0042|2023-11-14T22:13:20.000Z|firing"
    assert firing.id == hashlib.sha256(text.encode()).hexdigest()
    assert resolved.id != firing.id


def test_the_same_input_gives_the_same_ids_and_identical_bytes():
    first = run("..XXX..X......XXXXR....")
    second = run("..XXX..X......XXXXR....")
    assert [e.id for e in first] == [e.id for e in second]
    assert [e.to_json() for e in first] == [e.to_json() for e in second]


def test_the_cloudevent_matches_the_documented_layout():
    firing, resolved = run("XXX.....")
    doc = json.loads(resolved.to_json())
    assert list(doc) == [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
    ]
    assert doc["source"] == "/streamvae/plant-1"
    assert doc["type"] == "io.streamvae.alert.v1"
    assert doc["subject"] == "pump-0042"
    assert doc["time"] == doc["data"]["ends_at"] == "2023-11-14T22:20:20.000Z"
    assert doc["data"]["labels"] == {
        "alertname": "SensorAnomaly",
        "asset": "pump-0042",
        "site": "plant-1",
    }
    assert doc["data"]["details"]["window"] == {
        "start": "2023-11-14T21:42:20.000Z",
        "end": "2023-11-14T22:13:20.000Z",
    }
    assert json.loads(firing.to_json())["time"] == "2023-11-14T22:13:20.000Z"


def test_json_is_compact_utf8_in_a_fixed_key_order():
    (firing,) = run("XXX", asset="pumpe-größe")
    raw = firing.to_json()
    compact = json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
    assert raw == compact.encode("utf-8")


def test_an_event_with_a_non_finite_number_cannot_be_built():
    with pytest.raises(InputError, match="finite"):
        AlertEvent("firing", "s", "a", "warning", "x", 0.0, None, float("nan"), 1.0, {}, 0, 0, "v")


def test_non_finite_scores_and_shares_are_reported_as_finite_numbers():
    shares = {"vibration": float("nan"), "temp": 2.0}
    alerter = Alerter(AlertConfig(k=1))
    (firing,) = alerter.update(scored(0, "X", score=float("inf"), contributions=shares))
    assert firing.score == 1e308
    assert firing.contributions == {"temp": 1.0, "vibration": 0.0}
    json.dumps(alerter.snapshot(), allow_nan=False)


def test_every_event_validates_against_the_published_schema(validator):
    alerter = Alerter(AlertConfig(site="plant-1", k=2, n=3, m=3, cooldown_windows=1))
    events = []
    for asset, flags in {"p1": "XX....X.XX...", "p2": "..XXXR..XXX", "p3": "X.X.X..."}.items():
        offsets = asset != "p3"
        events += alerter.update_many(
            scored(i, f, asset=asset, offsets=offsets) for i, f in enumerate(flags)
        )
    assert {(e.status, e.reason) for e in events} == {
        ("firing", None),
        ("resolved", "recovered"),
        ("resolved", "regime_change"),
    }
    for event in events:
        validator.validate(json.loads(event.to_json()))


def test_the_schema_rejects_a_firing_event_with_an_end(validator):
    (firing,) = run("XXX")
    doc = json.loads(firing.to_json())
    doc["data"]["ends_at"] = doc["time"]
    assert not validator.is_valid(doc)


def test_a_cloudevent_round_trips_to_an_equal_event():
    for event in run("..XXX.....XXR"):
        again = AlertEvent.from_cloudevent(json.loads(event.to_json()))
        assert again == event
        assert again.to_json() == event.to_json()


def set_path(doc, path, value):
    *parents, last = path.split(".")
    for key in parents:
        doc = doc[key]
    if value is KeyError:
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("id", "0" * 64, "id .* does not match"),
        ("data.starts_at", "2023-11-14T22:13:21.000Z", "disagree"),
        ("data.dedup_key", "streamvae:plant-1:pump-9", "disagree"),
        ("data.labels.asset", "pump-9", "disagree"),
        ("time", "2023-11-14T22:13:21.000Z", "disagree"),
        ("source", "/streamvae/plant-2", "does not end in"),
        ("data.labels", KeyError, "missing field 'labels'"),
        ("data.details.score", "high", "wrong type"),
        ("data.status", "pending", "status must be one of"),
    ],
)
def test_an_edited_or_broken_cloudevent_is_refused(path, value, message):
    (firing,) = run("XXX", AlertConfig(site="plant-1", k=3, m=5))
    doc = json.loads(firing.to_json())
    set_path(doc, path, value)
    with pytest.raises(InputError, match=message):
        AlertEvent.from_cloudevent(doc)


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k": 0}, "AlertConfig.k"),
        ({"k": 3, "n": 2}, "AlertConfig.n"),
        ({"m": 0}, "AlertConfig.m"),
        ({"cooldown_windows": -1}, "AlertConfig.cooldown_windows"),
        ({"critical_ratio": 0.5}, "AlertConfig.critical_ratio"),
        ({"site": "a:b"}, "AlertConfig.site"),
        ({"source_prefix": "/streamvae/"}, "AlertConfig.source_prefix"),
    ],
)
def test_invalid_configs_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        AlertConfig(**kwargs)


def test_a_snapshot_of_another_format_is_refused():
    with pytest.raises(ConfigError, match="format"):
        Alerter.restore(AlertConfig(), {"format": 99, "assets": {}})


def test_a_malformed_snapshot_is_refused_with_a_config_error():
    alerter = Alerter(AlertConfig(k=3))
    alerter.update(scored(0, "X"))
    state = alerter.snapshot()
    del state["assets"]["pump-0042"]["pending"]
    with pytest.raises(ConfigError, match="malformed"):
        Alerter.restore(AlertConfig(k=3), state)


# ------------------------------------------------------------------ properties

ASSETS = ("p1", "p2")
# Bursts, so that episodes fire, resolve and cool down within a short stream.
bursts = st.lists(
    st.tuples(st.sampled_from(ASSETS), st.sampled_from("XX..WR"), st.integers(1, 8)),
    min_size=5,
    max_size=40,
)
flag_streams = bursts.map(lambda bs: [(a, f) for a, f, n in bs for _ in range(n)])
configs = st.builds(
    lambda k, extra, m, cooldown: AlertConfig(
        k=k, n=None if extra is None else k + extra, m=m, cooldown_windows=cooldown
    ),
    st.integers(1, 4),
    st.sampled_from([None, 0, 1, 2, 3, 4]),
    st.integers(1, 4),
    st.integers(0, 3),
)


def stream_windows(stream):
    count: dict[str, int] = {}
    out = []
    for asset, flag in stream:
        i = count[asset] = count.get(asset, -1) + 1
        score = 7.0 + (i * 7919 % 13) / 2.0
        shares = {"vibration": (i % 5) / 4.0, "temp": 1.0 - (i % 5) / 4.0}
        out.append(scored(i, flag, asset=asset, score=score, contributions=shares))
    return out


@settings(max_examples=150, deadline=None)
@given(stream=flag_streams, config=configs, where=st.floats(0.0, 1.0))
def test_snapshot_restore_at_any_cut_yields_exactly_the_uncut_events(stream, config, where):
    windows = stream_windows(stream)
    cut = round(where * len(windows))
    expected = [e.to_json() for e in Alerter(config).update_many(windows)]
    first = Alerter(config)
    events = first.update_many(windows[:cut])
    state = json.loads(json.dumps(first.snapshot(), allow_nan=False))
    second = Alerter.restore(config, state)
    events += second.update_many(windows[cut:])
    assert [e.to_json() for e in events] == expected


@settings(max_examples=100, deadline=None)
@given(stream=flag_streams, config=configs)
def test_snapshot_restore_after_every_window_yields_exactly_the_uncut_events(stream, config):
    windows = stream_windows(stream)
    expected = [e.to_json() for e in Alerter(config).update_many(windows)]
    alerter, events = Alerter(config), []
    for sw in windows:  # every cut point of the stream, in one pass
        state = json.loads(json.dumps(alerter.snapshot(), allow_nan=False))
        alerter = Alerter.restore(config, state)
        events += alerter.update(sw)
    assert [e.to_json() for e in events] == expected


def test_snapshot_restore_after_every_window_of_many_seeded_streams_changes_nothing():
    # A deterministic sweep beside the property tests: long bursty streams, every cut point.
    rng = random.Random(20261123)
    for _ in range(150):
        k, m = rng.randint(1, 4), rng.randint(1, 4)
        extra = rng.choice([None, 0, 1, 2, 3, 4])
        config = AlertConfig(
            k=k, n=None if extra is None else k + extra, m=m, cooldown_windows=rng.randint(0, 3)
        )
        stream = [
            (rng.choice(ASSETS), flag)
            for _ in range(30)
            for flag in rng.choice("XX..WR") * rng.randint(1, 8)
        ]
        windows = stream_windows(stream)
        expected = [e.to_json() for e in Alerter(config).update_many(windows)]
        alerter, events = Alerter(config), []
        for sw in windows:
            alerter = Alerter.restore(config, json.loads(json.dumps(alerter.snapshot())))
            events += alerter.update(sw)
        assert [e.to_json() for e in events] == expected, (config, stream)


@settings(max_examples=150, deadline=None)
@given(stream=flag_streams, config=configs)
def test_events_of_an_asset_alternate_firing_resolved_starting_with_firing(stream, config):
    events = Alerter(config).update_many(stream_windows(stream))
    for asset in ASSETS:
        statuses = [e.status for e in events if e.asset == asset]
        assert statuses == ["firing", "resolved"] * (len(statuses) // 2) + (
            ["firing"] if len(statuses) % 2 else []
        )
        mine = [e for e in events if e.asset == asset]
        for firing, resolved in zip(mine[::2], mine[1::2], strict=False):
            assert resolved.dedup_key == firing.dedup_key
            assert resolved.starts_at == firing.starts_at <= resolved.ends_at
