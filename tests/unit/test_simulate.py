"""The simulated plant of `streamvae simulate`: readings, imperfections and labels."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from consumers.simulate import KINDS, plan_plant, write_labels

T0 = 1_700_000_000.0


def test_every_fault_is_labelled_in_event_time_after_the_healthy_stretch():
    plan = plan_plant(assets=4, steps=2000, faults=5, healthy_steps=1000, seed=3)
    assert len(plan.labels) == 5
    assert {x.kind for x in plan.labels} == {k for k, _, _ in KINDS}
    for x in plan.labels:
        assert x.start_ts >= T0 + 1000 * 300.0
        assert x.end_ts <= T0 + 2000 * 300.0
        assert x.duration_s == next(n for k, _, n in KINDS if k == x.kind) * 300.0


def test_a_labelled_fault_changes_the_readings_it_names():
    plan = plan_plant(assets=2, steps=1200, faults=1, healthy_steps=600, missing=0, late=0)
    clean = plan_plant(assets=2, steps=1200, faults=0, healthy_steps=600, missing=0, late=0)
    label = plan.labels[0]

    def values(p):
        return np.array(
            [
                r.values[label.channel]
                for r in p.readings
                if r.asset == label.asset and label.start_ts <= r.ts < label.end_ts
            ]
        )

    assert not np.allclose(values(plan), values(clean))


def test_faults_on_one_asset_never_overlap():
    plan = plan_plant(assets=1, steps=4000, faults=4, healthy_steps=1000, seed=7)
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
        newest[r.asset] = max(newest.get(r.asset, -1.0), r.ts)
    assert behind == plan.late


def test_the_same_seed_plans_the_same_plant():
    a = plan_plant(assets=2, steps=800, faults=1, healthy_steps=400, seed=5)
    b = plan_plant(assets=2, steps=800, faults=1, healthy_steps=400, seed=5)
    assert a.labels == b.labels
    assert a.readings == b.readings


def test_too_many_faults_for_the_room_is_an_error_not_a_hang():
    with pytest.raises(ValueError, match="fewer"):
        plan_plant(assets=1, steps=800, faults=30, healthy_steps=400)


def test_labels_are_written_as_json_a_report_can_read(tmp_path):
    plan = plan_plant(assets=2, steps=800, faults=1, healthy_steps=400)
    path = write_labels(tmp_path / "out" / "labels.json", plan, topic="t", period_s=300.0)
    doc = json.loads(path.read_text())
    assert doc["about"] == {"topic": "t", "period_s": 300.0}
    assert doc["faults"][0]["asset"] == plan.labels[0].asset
    assert set(doc["faults"][0]) == {"asset", "kind", "channel", "start_ts", "end_ts"}
