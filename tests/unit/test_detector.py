"""The Detector end to end, list in → list out: a multi-asset plant through windowing,
scaling, scoring, the adaptive threshold and the alert lifecycle."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamvae.alerting import AlertConfig
from streamvae.artefact import loads_artefact
from streamvae.config import TrainConfig, VAEConfig
from streamvae.detector import Detector, DetectorConfig
from streamvae.errors import ConfigError, InputError
from streamvae.scaling import StandardScaler
from streamvae.serde import ReadingDecoder
from streamvae.testing import Fault, SyntheticPlant, interleave, series_readings
from streamvae.threshold import ThresholdConfig
from streamvae.types import AlertEvent, Reading, Rejection
from streamvae.windowing import WindowConfig

PERIOD = 300.0  # the synthetic plant reads every 5 minutes
T0 = 1_699_999_800.0  # a multiple of PERIOD: steps are buckets
WARMUP_STEPS = 5760  # 20 days
FAULTS = {
    "pump-a": Fault("spike", "vibration", WARMUP_STEPS + 700, 1, magnitude=8.0),
    "pump-b": Fault("level_shift", "pressure", WARMUP_STEPS + 900, 192),
    "pump-c": Fault("stuck", "flow", WARMUP_STEPS + 1100, 192),
    "pump-d": Fault("noise_burst", "current", WARMUP_STEPS + 800, 192),
    "pump-e": Fault("frequency_change", "vibration", WARMUP_STEPS + 1000, 192),
}
TEST_STEPS = 1800


def plant_config() -> DetectorConfig:
    """The defaults, told the plant's period and to warm up on its first 20 days."""
    channels = SyntheticPlant().channels
    return DetectorConfig(
        window=WindowConfig(channels=channels, period_s=PERIOD, window=32, max_gap_s=3 * PERIOD),
        warmup_span_s=(WARMUP_STEPS - 1) * PERIOD,
    )


def asset_stream(asset: str, seed: int, fault: Fault | None, steps: int) -> list[Reading]:
    """One asset's readings: WARMUP_STEPS clean steps, then ``steps`` more holding the fault
    (one continuous series: the plant's slow processes do not restart at the boundary)."""
    series = SyntheticPlant(seed=seed).generate(WARMUP_STEPS + steps, [fault] if fault else [])
    return series_readings(series, asset, T0, PERIOD)


def run_all(detector: Detector, readings: list[Reading], chunk: int = 5000) -> list[AlertEvent]:
    alerts: list[AlertEvent] = []
    for i in range(0, len(readings), chunk):
        alerts += detector.process(readings[i : i + chunk])
    return alerts


@pytest.fixture(scope="module")
def plant_run():
    streams = [asset_stream(a, 10 + i, f, TEST_STEPS) for i, (a, f) in enumerate(FAULTS.items())]
    detector = Detector(plant_config())
    return detector, run_all(detector, interleave(*streams))  # Kafka-sized batches


@pytest.fixture(scope="module")
def clean_run():
    """10 clean pumps × 10,000 steps = 100,000 readings (35 days each, 20 of them warm-up)."""
    streams = [asset_stream(f"pump-{i}", i, None, 10_000 - WARMUP_STEPS) for i in range(10)]
    detector = Detector(plant_config())
    return detector, run_all(detector, interleave(*streams))


def fault_episode(alerts: list[AlertEvent], asset: str, fault: Fault) -> list[AlertEvent]:
    """The events of the alert episode that started within the fault (up to a window after)."""
    start, end = T0 + fault.start * PERIOD, T0 + (fault.end + 32) * PERIOD
    return [a for a in alerts if a.asset == asset and start <= a.starts_at <= end]


def test_every_injected_fault_fires_on_its_asset_naming_the_faulted_channel(plant_run):
    _, alerts = plant_run
    for asset, fault in FAULTS.items():
        firing = [e for e in fault_episode(alerts, asset, fault) if e.status == "firing"]
        assert firing, f"no alert for the {fault.kind} on {asset}"
        assert firing[0].top_channel == fault.channel, (asset, firing[0].contributions)


def test_every_fault_raises_one_episode_that_resolves_after_the_fault_ends(plant_run):
    _, alerts = plant_run
    for asset, fault in FAULTS.items():
        events = fault_episode(alerts, asset, fault)
        assert [e.status for e in events] == ["firing", "resolved"], events
        assert events[0].dedup_key == events[1].dedup_key
        assert events[1].ends_at > T0 + fault.end * PERIOD


def test_the_faulty_plant_raises_at_most_one_alert_outside_its_faults(plant_run):
    # measured on a 711 asset-day fleet: 0.33 false alerts per 100 asset-days (docs/detector.md);
    # this plant scores 5 × 1,800 steps = 31 asset-days: more than one means a regression
    _, alerts = plant_run
    inside = {id(e) for a, f in FAULTS.items() for e in fault_episode(alerts, a, f)}
    outside = [e for e in alerts if id(e) not in inside and e.status == "firing"]
    assert len(outside) <= 1, outside


def test_every_emitted_event_validates_against_the_published_schema(plant_run, validator):
    _, alerts = plant_run
    for event in alerts:
        validator.validate(json.loads(event.to_json()))


def test_alerts_name_the_model_version_that_scored_them(plant_run):
    detector, alerts = plant_run
    assert detector.model_version == "v0001"
    assert {a.model_version for a in alerts} == {"v0001"}


def test_windows_before_the_first_model_are_not_scored(plant_run):
    detector, _ = plant_run
    stats = detector.stats
    assert stats.models_trained == 1
    assert stats.windows_warmup > 0
    assert stats.windows_scored + stats.windows_warmup + stats.windows_non_finite == stats.windows


def test_the_first_model_trains_once_the_warm_up_span_is_covered(plant_run):
    detector, _ = plant_run
    # every asset's warm-up windows end at step 5759 at the latest: 5 assets × (5760 − 31)
    assert detector.stats.windows_warmup == pytest.approx(5 * (WARMUP_STEPS - 31), abs=5)


def test_a_clean_plant_of_100000_readings_raises_no_alert_after_warm_up(clean_run):
    detector, alerts = clean_run
    assert detector.stats.readings == 100_000
    assert detector.stats.windows_scored > 40_000
    assert alerts == []


# ------------------------------------------------------------------ small, fast detectors


def tiny_config(**overrides) -> DetectorConfig:
    base = {
        "window": WindowConfig(channels=("temp", "vib"), period_s=1.0, window=8, max_gap_s=3.0),
        "model": VAEConfig(channels=("temp", "vib"), window=8, hidden_size=8, latent_dim=4),
        "train": TrainConfig(epochs=3),
        "threshold": ThresholdConfig(grace=10),
        "alert": AlertConfig(k=2, m=3),
        "warmup_windows": 40,
        "max_train_windows": 64,
        "train_stride": 1,
        "asset_warmup_windows": 8,
    }
    base.update(overrides)
    return DetectorConfig(**base)


def tiny_stream(
    n: int, assets: tuple[str, ...] = ("a", "b"), shock_at: int | None = None, t0: float = 1000.0
) -> list[Reading]:
    rng = np.random.default_rng(7)
    out = []
    for t in range(n):
        for k, asset in enumerate(assets):
            temp = 20 + np.sin(t / 6 + k) + 0.05 * rng.normal()
            vib = np.cos(t / 3 + k) + 0.05 * rng.normal()
            if shock_at is not None and asset == "a" and shock_at <= t < shock_at + 30:
                vib += 6.0
            out.append(Reading(asset, t0 + t, {"temp": float(temp), "vib": float(vib)}))
    return out


def tiny_run(detector: Detector, readings: list[Reading], chunk: int = 37) -> list[AlertEvent]:
    return run_all(detector, readings, chunk)


@pytest.fixture(scope="module")
def uncut_alerts():
    readings = tiny_stream(260, shock_at=150)
    return readings, [a.to_json() for a in tiny_run(Detector(tiny_config()), readings)]


def test_the_tiny_stream_raises_an_alert_to_compare_against(uncut_alerts):
    _, alerts = uncut_alerts
    assert any(b'"firing"' in a for a in alerts)
    assert any(b'"resolved"' in a for a in alerts)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=519), with_model=st.booleans())
def test_snapshot_restore_at_any_point_yields_exactly_the_uncut_alerts(
    uncut_alerts, cut, with_model
):
    readings, expected = uncut_alerts
    first = Detector(tiny_config())
    alerts = tiny_run(first, readings[:cut])
    state = json.loads(json.dumps(first.snapshot(include_model=with_model)))
    model = None if with_model else first.model
    second = Detector.restore(tiny_config(), state, model=model)
    alerts += tiny_run(second, readings[cut:])
    assert [a.to_json() for a in alerts] == expected


def test_how_the_input_is_cut_into_batches_does_not_change_the_alerts(uncut_alerts):
    readings, expected = uncut_alerts
    for chunk in (1, 500, len(readings)):
        assert [a.to_json() for a in tiny_run(Detector(tiny_config()), readings, chunk)] == expected


def test_single_channel_messages_give_the_alerts_of_multichannel_ones(uncut_alerts):
    readings, expected = uncut_alerts
    split = [
        Reading(r.asset, r.ts, {name: value})
        for r in readings
        for name, value in reversed(list(r.values.items()))
    ]
    assert [a.to_json() for a in tiny_run(Detector(tiny_config()), split)] == expected


def test_readings_out_of_order_within_the_lateness_give_the_alerts_of_the_ordered_stream():
    config = tiny_config(
        window=WindowConfig(
            channels=("temp", "vib"), period_s=1.0, window=8, max_gap_s=3.0, allowed_lateness_s=5
        )
    )
    readings = tiny_stream(260, shock_at=150)
    expected = [a.to_json() for a in tiny_run(Detector(config), readings)]
    shuffled = list(readings)
    rng = random.Random(1)
    for start in range(0, len(shuffled), 8):  # 8 readings = 4 steps of two assets: < 5 s late
        block = shuffled[start : start + 8]
        rng.shuffle(block)
        shuffled[start : start + 8] = block
    assert shuffled != readings
    detector = Detector(config)
    assert [a.to_json() for a in tiny_run(detector, shuffled)] == expected
    assert detector.windower.stats.late_dropped == 0


def test_readings_later_than_the_lateness_are_dropped_and_counted_not_raised():
    detector = Detector(tiny_config())
    readings = tiny_stream(120)
    stale = [Reading("a", 1000.0 + 5, {"temp": 20.0, "vib": 0.0})] * 3
    tiny_run(detector, readings + stale)
    assert detector.windower.stats.late_dropped == 3


def test_no_window_spans_a_gap_longer_than_max_gap_and_scoring_resumes_after_it():
    detector = Detector(tiny_config())
    readings = tiny_stream(120)
    later = tiny_stream(60, t0=1000.0 + 120 + 10)  # 10 s of silence, max_gap_s = 3
    detector.process(readings)
    result = detector.process_detailed(later)
    assert detector.windower.stats.gaps == 2  # one per asset
    # the last reading before the gap is at 1119 s; max_gap_s fills 3 steps, then the run ends
    last_filled, first_after = 1000.0 + 119 + 3, 1000.0 + 130
    assert any(s.window.start_ts >= first_after for s in result.scored)  # scored again
    assert all(
        s.window.end_ts <= last_filled or s.window.start_ts >= first_after for s in result.scored
    )


def test_a_short_gap_is_forward_filled_and_keeps_the_windows_coming():
    detector = Detector(tiny_config())
    readings = [r for r in tiny_stream(140) if not (1125.0 <= r.ts < 1127.0)]  # 2 s gap
    detector.process(readings)
    assert detector.windower.stats.gaps == 0
    assert detector.stats.windows == 2 * (140 - 8)


def test_a_late_asset_is_scored_after_its_own_short_warm_up():
    config = tiny_config(scaling="asset")
    detector = Detector(config)
    tiny_run(detector, tiny_stream(120, assets=("a",)))
    assert detector.ready
    result = detector.process_detailed(tiny_stream(40, assets=("late",)))
    late_scored = [s for s in result.scored if s.window.asset == "late"]
    # the first asset_warmup_windows windows fit its scaler; the rest are scored (the last
    # bucket is still pending: it is final once a later reading arrives)
    windows = 40 - config.window.window
    assert len(late_scored) == windows - config.asset_warmup_windows
    assert detector.scaler("late") is not None


def test_with_group_scaling_a_late_asset_is_scored_at_once_with_the_groups_scaler():
    detector = Detector(tiny_config())
    tiny_run(detector, tiny_stream(120, assets=("a",)))
    result = detector.process_detailed(tiny_stream(40, assets=("late",)))
    assert len([s for s in result.scored if s.window.asset == "late"]) == 40 - 8
    assert detector.scaler("late") == detector.scaler("a")


def test_a_late_assets_first_windows_are_in_the_grace_period_and_never_alert():
    detector = Detector(tiny_config())
    tiny_run(detector, tiny_stream(120, assets=("a",)))
    result = detector.process_detailed(tiny_stream(40, assets=("late",), shock_at=None))
    late = [s for s in result.scored if s.window.asset == "late"]
    assert all(s.warming_up for s in late[:10])
    assert not result.alerts


def test_swap_model_recalibrates_and_later_alerts_name_the_new_version():
    config = tiny_config()
    detector = Detector(config)
    tiny_run(detector, tiny_stream(140))
    replacement = Detector(config)
    tiny_run(replacement, tiny_stream(140, t0=5000.0))
    assert replacement.model is not None
    detector.swap_model(replacement.model, "v0002", scalers=replacement.scaler("a"))
    assert detector.scaler("a") == replacement.scaler("a")
    result = detector.process_detailed(tiny_stream(200, shock_at=170, t0=1140.0))
    assert {s.model_version for s in result.scored} == {"v0002"}
    assert detector.stats.model_swaps == 1
    assert any(a.status == "firing" and a.model_version == "v0002" for a in result.alerts)


def test_after_a_swap_an_asset_with_enough_calibration_windows_is_judged_at_once():
    config = tiny_config()  # grace 10 windows; the buffer holds more of each asset by now
    detector = Detector(config)
    tiny_run(detector, tiny_stream(140))
    assert detector.training.training_set().assets.count("a") >= config.threshold.grace
    detector.swap_model(detector.model, "v0002", scalers=detector.scaler("a"))
    result = detector.process_detailed(tiny_stream(20, t0=1140.0))
    assert not any(s.warming_up for s in result.scored)


def test_after_a_swap_an_asset_without_enough_calibration_windows_runs_its_grace_again():
    config = tiny_config(threshold=ThresholdConfig(grace=500))
    detector = Detector(config)
    tiny_run(detector, tiny_stream(700))
    detector.swap_model(detector.model, "v0002", scalers=detector.scaler("a"))
    result = detector.process_detailed(tiny_stream(20, t0=1700.0))
    assert all(s.warming_up for s in result.scored)


def test_an_alert_open_when_the_model_is_swapped_stays_open_through_the_grace_period():
    config = tiny_config(threshold=ThresholdConfig(grace=40))
    detector = Detector(config)
    firing = tiny_run(detector, tiny_stream(170, shock_at=150))
    assert [a.status for a in firing] == ["firing"]
    assert detector.model is not None
    detector.swap_model(detector.model, "v0002")
    # the shock goes on for 10 more steps, then the data is normal again
    after = tiny_run(detector, tiny_stream(260, shock_at=150)[340:])
    resolved = [a for a in after if a.status == "resolved"]
    assert len(resolved) == 1
    assert resolved[0].ends_at >= 1000.0 + 170 + 40  # not before the new grace period ended


def test_an_exported_model_restarts_a_detector_that_scores_exactly_alike():
    detector = Detector(tiny_config())
    tiny_run(detector, tiny_stream(140))
    data, digest = detector.export_model(metadata={"note": "test"})
    artefact = loads_artefact(data)
    assert artefact.content_hash == digest
    assert artefact.metadata["model_version"] == "v0001"
    clone = Detector.from_artefact(tiny_config(), artefact)
    assert clone.ready
    assert clone.model_version == "v0001"
    more = tiny_stream(60, t0=1140.0)
    a = [s.score for s in detector.process_detailed(more).scored]
    b = [s.score for s in clone.process_detailed(more).scored]
    # the clone's windows start later (its windower is empty): compare the common tail
    assert b
    assert a[-len(b) :] == b


def test_a_detector_from_an_exported_model_starts_with_its_calibrated_thresholds():
    detector = Detector(tiny_config())
    tiny_run(detector, tiny_stream(140))
    data, _ = detector.export_model()
    clone = Detector.from_artefact(tiny_config(), loads_artefact(data))
    scored = clone.process_detailed(tiny_stream(30, t0=1140.0)).scored
    known = [s for s in scored if s.window.asset == "a"]
    assert known
    assert not any(s.warming_up for s in known)  # no second grace period for a known asset
    assert known[0].threshold == pytest.approx(detector.thresholds.get("a"))
    fresh = clone.process_detailed(tiny_stream(30, assets=("new",), t0=1170.0)).scored
    grace = tiny_config().threshold.grace
    assert all(s.warming_up for s in fresh[:grace])  # an unknown asset still calibrates first


def test_export_before_the_first_model_is_a_clear_error():
    with pytest.raises(InputError, match="no model yet"):
        Detector(tiny_config()).export_model()


def test_a_window_that_overflows_float32_once_scaled_is_dropped_and_counted():
    detector = Detector(tiny_config())
    tiny_run(detector, tiny_stream(140))
    huge = [Reading("a", 1140.0 + t, {"temp": 1e300, "vib": 0.0}) for t in range(10)]
    detector.process(huge)
    assert detector.stats.windows_non_finite > 0


def test_restoring_a_snapshot_without_its_model_needs_that_very_model():
    detector = Detector(tiny_config())
    tiny_run(detector, tiny_stream(140))
    state = detector.snapshot(include_model=False)
    with pytest.raises(InputError, match="without its model"):
        Detector.restore(tiny_config(), state)
    other = Detector(tiny_config(train=TrainConfig(epochs=4)))
    tiny_run(other, tiny_stream(140))
    with pytest.raises(InputError, match="content hash differs"):
        Detector.restore(tiny_config(), state, model=other.model)


def test_restore_refuses_something_that_is_not_a_detector_snapshot():
    with pytest.raises(InputError, match="format"):
        Detector.restore(tiny_config(), {"format": 99})
    state = Detector(tiny_config()).snapshot()
    del state["scalers"]
    with pytest.raises(InputError, match="malformed"):
        Detector.restore(tiny_config(), state)


def test_a_model_for_other_channels_is_refused_naming_both():
    model = Detector(tiny_config()).config.vae()
    wrong = dataclasses.replace(model, channels=("temp", "pressure"))
    from streamvae.model.vae import RecurrentVAE

    with pytest.raises(ConfigError, match="pressure"):
        Detector(tiny_config(), RecurrentVAE(wrong))


def test_scalers_without_a_model_are_refused():
    with pytest.raises(ConfigError, match="without a model"):
        Detector(tiny_config(), scalers=StandardScaler((0.0, 0.0), (1.0, 1.0)))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("warmup_windows", 4),
        ("max_train_windows", 10),
        ("scaling", "per-pump"),
        ("max_batch", 0),
        ("min_scale_fraction", -1.0),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        tiny_config(**{field: value})


def test_config_round_trips_through_a_dict():
    config = tiny_config()
    assert DetectorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_random_bytes_and_malformed_payloads_never_raise_through_decode_and_process():
    decoder = ReadingDecoder()
    detector = Detector(tiny_config())
    rng = np.random.default_rng(3)
    payloads = [rng.bytes(int(rng.integers(0, 200))) for _ in range(500)]
    payloads += [
        b"",
        b"{",
        b"[]",
        b'{"asset": 1}',
        b'{"asset":"a","ts":"x","values":{}}',
        b'{"asset":"a","ts":1e400,"values":{"temp":1}}',
        b"\xff\xfe",
        b"{" * 5000,
    ]
    readings = []
    for raw in payloads:
        out = decoder.decode(raw)
        assert isinstance(out, Reading | Rejection)
        if isinstance(out, Reading):
            readings.append(out)
    detector.process(readings)


# ------------------------------------------------------------ warm-up progress


def test_warm_up_progress_grows_with_the_event_time_covered_and_is_one_once_a_model_scores():
    config = dataclasses.replace(
        plant_config(),
        warmup_windows=100,
        warmup_span_s=400 * PERIOD,
        train=TrainConfig(epochs=2),
    )
    detector = Detector(config)
    stream = asset_stream("pump-w", 3, None, 0)[:500]
    seen = []
    for i in range(0, 500, 50):
        detector.process(stream[i : i + 50])
        seen.append(detector.warmup_progress)
    assert seen[0] < 0.1  # 19 windows of 32 steps after 50 readings, every third kept
    assert seen == sorted(seen[: seen.index(1.0)]) + [1.0] * (len(seen) - seen.index(1.0))
    before = seen[seen.index(1.0) - 1]
    assert 0.8 < before < 1.0
    assert detector.ready


def test_warm_up_progress_survives_a_snapshot_and_restore():
    config = dataclasses.replace(plant_config(), warmup_windows=100, warmup_span_s=400 * PERIOD)
    detector = Detector(config)
    detector.process(asset_stream("pump-w", 3, None, 0)[:300])
    restored = Detector.restore(config, json.loads(json.dumps(detector.snapshot())))
    assert restored.warmup_progress == pytest.approx(detector.warmup_progress)
    assert 0.5 < detector.warmup_progress < 0.99
