"""The simulated fleet of `streamvae simulate` / `streamvae demo`: readings, imperfections,
labels and the demo's detector config."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest

import streamvae as sv
from consumers.simulate import (
    FAULT_HOURS,
    SENSOR_CHANNELS,
    FaultLabel,
    asset_names,
    demo_detector_config,
    fault_steps,
    plan_plant,
    write_labels,
)
from streamvae.plant import FAULT_KINDS, FLEET_CHANNELS, fault_applies

T0 = 1_700_000_000.0


def test_the_fleet_cycles_pumps_compressors_and_motors_numbered_across_the_fleet():
    assert asset_names(5) == [
        ("pump-01", "pump"),
        ("compressor-02", "compressor"),
        ("motor-03", "motor"),
        ("pump-04", "pump"),
        ("compressor-05", "compressor"),
    ]
    plan = plan_plant(assets=3, steps=10, faults=0, missing=0, late=0)
    assert {r.asset for r in plan.readings} == {"pump-01", "compressor-02", "motor-03"}
    assert all(set(r.values) == set(FLEET_CHANNELS) for r in plan.readings)


def test_every_fault_is_labelled_in_event_time_after_the_healthy_stretch():
    plan = plan_plant(assets=9, steps=2200, faults=12, healthy_steps=864, seed=3)
    assert len(plan.labels) == 12
    assert sorted(x.kind for x in plan.labels) == sorted(list(FAULT_KINDS) * 2)
    for x in plan.labels:
        assert x.start_ts >= T0 + 864 * 300.0
        assert x.end_ts <= T0 + 2200 * 300.0
        assert x.duration_s == fault_steps(x.kind, 300.0) * 300.0
        assert x.duration_s == max(300.0, FAULT_HOURS[x.kind] * 3600)


def test_faults_go_only_to_asset_kinds_they_can_happen_to():
    plan = plan_plant(assets=6, steps=3000, faults=12, healthy_steps=600, seed=1)
    for x in plan.labels:
        assert x.asset.startswith(x.asset_kind + "-")
        assert fault_applies(x.kind, x.asset_kind), x
        if x.kind in SENSOR_CHANNELS:
            assert x.channel in SENSOR_CHANNELS[x.kind][x.asset_kind]


def test_a_label_names_the_primary_channel_of_a_physical_fault():
    plan = plan_plant(assets=9, steps=2200, faults=12, healthy_steps=864, seed=3)
    primary = {("bearing_wear", k): "vibration" for k in ("pump", "compressor", "motor")}
    primary |= {("cavitation", "pump"): "vibration", ("leak", "pump"): "flow"}
    primary |= {("leak", "compressor"): "current"}
    for x in plan.labels:
        if x.kind not in SENSOR_CHANNELS:
            assert x.channel == primary[(x.kind, x.asset_kind)]


def test_a_labelled_fault_changes_the_readings_it_names():
    plan = plan_plant(assets=3, steps=1200, faults=6, healthy_steps=400, missing=0, late=0)
    clean = plan_plant(assets=3, steps=1200, faults=0, healthy_steps=400, missing=0, late=0)

    def values(p, label):
        return np.array(
            [
                r.values[label.channel]
                for r in p.readings
                if r.asset == label.asset and label.start_ts <= r.ts < label.end_ts
            ]
        )

    for label in plan.labels:
        assert not np.allclose(values(plan, label), values(clean, label)), label


def test_faults_on_one_asset_never_overlap():
    plan = plan_plant(assets=1, steps=4000, faults=5, healthy_steps=1000, seed=7)
    spans = sorted((x.start_ts, x.end_ts) for x in plan.labels)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_some_readings_go_missing_and_some_arrive_late():
    plan = plan_plant(assets=5, steps=2000, faults=0, missing=0.01, late=0.01, seed=2)
    assert len(plan.readings) + plan.missing == 5 * 2000
    assert 50 <= plan.missing <= 150
    assert plan.late > 0
    newest: dict[str, float] = {}
    behind = 0
    for r in plan.readings:
        if r.ts < newest.get(r.asset, -1.0):
            behind += 1
            assert newest[r.asset] - r.ts in (300.0, 600.0)  # after the asset's next reading
        newest[r.asset] = max(newest.get(r.asset, -1.0), r.ts)
    assert behind == plan.late


def test_the_same_seed_plans_the_same_plant():
    a = plan_plant(assets=3, steps=800, faults=2, healthy_steps=400, seed=5)
    b = plan_plant(assets=3, steps=800, faults=2, healthy_steps=400, seed=5)
    assert a.labels == b.labels
    assert a.readings == b.readings


def test_too_many_faults_for_the_room_is_an_error_not_a_hang():
    with pytest.raises(ValueError, match="fewer"):
        plan_plant(assets=1, steps=1200, faults=30, healthy_steps=400)


def test_a_fault_longer_than_the_room_after_the_healthy_stretch_is_an_error():
    with pytest.raises(ValueError, match="no room for a 288-step bearing_wear fault"):
        plan_plant(assets=2, steps=576, faults=1, healthy_steps=288)


def test_an_unknown_fault_kind_is_an_error():
    with pytest.raises(ValueError, match="fault_kinds"):
        plan_plant(assets=2, steps=800, faults=1, fault_kinds=["meltdown"])


def test_labels_are_written_as_json_a_report_can_read(tmp_path):
    plan = plan_plant(assets=2, steps=800, faults=1, healthy_steps=400)
    path = write_labels(tmp_path / "out" / "labels.json", plan, topic="t", period_s=300.0)
    doc = json.loads(path.read_text())
    assert doc["about"] == {"topic": "t", "period_s": 300.0}
    assert doc["faults"][0]["asset"] == plan.labels[0].asset
    assert set(doc["faults"][0]) == {"asset", "kind", "channel", "start_ts", "end_ts", "asset_kind"}
    assert [FaultLabel(**x) for x in doc["faults"]] == plan.labels


def test_labels_written_before_the_mixed_fleet_still_read():
    old = {"asset": "pump-00", "kind": "spike", "channel": "flow", "start_ts": 0.0, "end_ts": 1.0}
    assert FaultLabel(**old).asset_kind == ""


def test_the_demo_config_reads_the_fleet_and_warms_up_on_two_days():
    cfg = demo_detector_config()
    assert cfg.window.channels == FLEET_CHANNELS
    assert cfg.window.window == 32
    assert cfg.window.period_s == 300.0
    assert 1.9 * 86_400 <= cfg.warmup_span_s <= 2 * 86_400
    windows_in_two_days = 576 - cfg.window.window + 1
    buffered_by_six_assets = 6 * -(-windows_in_two_days // cfg.train_stride)
    assert cfg.warmup_windows <= buffered_by_six_assets
    assert cfg.window.allowed_lateness_s >= 300.0  # late readings are one period late
    assert cfg.window.max_gap_s >= 300.0  # a missing reading is carried over


def test_the_demo_config_follows_its_period():
    cfg = demo_detector_config(period_s=60.0)
    assert cfg.window.period_s == 60.0
    assert cfg.warmup_span_s == pytest.approx(2 * 86_400 - 60.0)


def test_the_demo_config_trains_a_first_model_on_two_days_of_a_small_fleet():
    plan = plan_plant(assets=6, steps=600, faults=0, missing=0.002, late=0.002, seed=4)
    cfg = dataclasses.replace(demo_detector_config(), train=sv.TrainConfig(epochs=1))
    detector = sv.Detector(cfg)
    detector.process(plan.readings)
    assert detector.ready
    assert detector.windower.stats.late_dropped == 0
