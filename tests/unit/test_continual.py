"""Continual learning end to end on a plant whose normal regime drifts.

Three pumps, 40 days of 5-minute readings; their load rises by 0.006 a day and the ambient
temperature by 0.3 °C a day, so by the end the plant runs where the warm-up never saw it. Pump 0
has a four-day pressure shift from day 18, while a retrain happens. The warm-up (first model)
is shared; then the same readings go to a detector that never retrains and to one with a
Retrainer (inline, so the test is reproducible), retraining every four days of event time.
"""

from __future__ import annotations

import numpy as np
import pytest

import streamvae as sv
from streamvae.testing import Fault, SyntheticPlant, interleave, series_readings

pytestmark = pytest.mark.slow

PERIOD = 300.0
DAY = 288
T0 = 1_700_000_000.0
DAYS = 40
WARMUP_DAYS = 7
FAULT = Fault("level_shift", "pressure", start=18 * DAY, length=4 * DAY, magnitude=3.0)
BOUND = 8  # false alerts in 120 pump-days with retraining: at most one per 15 pump-days


def config(**train: object) -> sv.DetectorConfig:
    channels = SyntheticPlant().channels
    return sv.DetectorConfig(
        window=sv.WindowConfig(channels=channels, period_s=PERIOD, max_gap_s=3 * PERIOD),
        warmup_windows=1500,
        warmup_span_s=5 * 86_400.0,
        train=sv.TrainConfig(**{"epochs": 40, **train}),
        # alarm throughout the four-day fault (the default cap accepts two days as a new normal)
        threshold=sv.ThresholdConfig(max_alarm_windows=1500),
        retrain=sv.RetrainConfig(
            every_windows=0,
            every_s=4 * 86_400.0,
            drift=False,
            min_windows=1000,
            capacity=2048,
            epochs=15,
        ),
    )


def readings() -> list[sv.Reading]:
    streams = []
    for i in range(3):
        plant = SyntheticPlant(seed=70 + i, load_drift_per_day=0.006, ambient_drift_per_day=0.3)
        series = plant.generate(DAYS * DAY, [FAULT] if i == 0 else [])
        streams.append(series_readings(series, f"pump-{i}", T0, PERIOD))
    return interleave(*streams)


def in_fault(event: sv.AlertEvent) -> bool:
    start, end = T0 + FAULT.start * PERIOD, T0 + FAULT.end * PERIOD
    return event.asset == "pump-0" and start - 24 * PERIOD <= event.starts_at <= end + 32 * PERIOD


def days(n: float) -> int:
    return int(n * DAY) * 3  # readings of three pumps


@pytest.fixture(scope="module")
def plant() -> list[sv.Reading]:
    return readings()


@pytest.fixture(scope="module")
def warm(plant) -> dict:
    detector = sv.Detector(config())
    detector.process(plant[: days(WARMUP_DAYS)])
    assert detector.ready
    return detector.snapshot()


def run(detector: sv.Detector, stream, retrainer: sv.Retrainer | None = None):
    events = []
    for i in range(0, len(stream), DAY):
        batch = stream[i : i + DAY]
        events += retrainer.process(batch) if retrainer else detector.process(batch)
    return events


@pytest.fixture(scope="module")
def frozen(plant, warm) -> list[sv.AlertEvent]:
    detector = sv.Detector.restore(config(), warm)
    return run(detector, plant[days(WARMUP_DAYS) :])


@pytest.fixture(scope="module")
def retrained(plant, warm):
    detector = sv.Detector.restore(config(), warm)
    retrainer = sv.Retrainer(detector, background="inline")
    events = run(detector, plant[days(WARMUP_DAYS) :], retrainer)
    return detector, retrainer, events


def false_alerts(events) -> list[sv.AlertEvent]:
    return [e for e in events if e.status == "firing" and not in_fault(e)]


def test_without_retraining_false_alerts_climb_as_the_plant_drifts(frozen):
    fired = false_alerts(frozen)
    late = [e for e in fired if e.starts_at >= T0 + 20 * 86_400]
    assert len(late) >= 10, [(e.asset, e.starts_at) for e in fired]


def test_with_retraining_false_alerts_stay_within_the_bound(frozen, retrained):
    _, retrainer, events = retrained
    assert retrainer.promoted >= 5
    assert len(false_alerts(events)) <= BOUND
    assert len(false_alerts(events)) * 3 <= len(false_alerts(frozen))


def test_a_fault_persisting_through_a_retrain_is_not_learned(retrained):
    detector, retrainer, events = retrained
    fault_start, fault_end = T0 + FAULT.start * PERIOD, T0 + FAULT.end * PERIOD
    mine = [e for e in events if in_fault(e)]
    assert mine, [
        (e.status, round((e.starts_at - T0) / 86400, 2), e.model_version, len(retrainer.history))
        for e in events
        if e.asset == "pump-0"
    ]
    assert mine[0].status == "firing"
    swapped_during = [
        o
        for o in retrainer.history
        if o.promoted and o.at_ts is not None and fault_start < o.at_ts < fault_end
    ]
    assert swapped_during, "no retrain was promoted while the fault was on"
    resolved = [e for e in mine if e.status == "resolved"]
    assert resolved, "the alert never resolved after the fault"
    assert resolved[0].ends_at is not None
    assert resolved[0].ends_at >= fault_end, "it resolved during the fault: the fault was learned"
    buffered = detector.training_set()
    inside = [
        t
        for a, t in zip(buffered.assets, buffered.end_ts.tolist(), strict=True)
        if a == "pump-0" and fault_start + 32 * PERIOD <= t <= fault_end
    ]
    assert inside == []


def test_every_window_is_scored_once_across_the_swaps(retrained):
    detector, retrainer, _ = retrained
    s = detector.stats
    assert s.model_swaps == retrainer.promoted
    assert s.windows == s.windows_warmup + s.windows_scored + s.windows_non_finite
    # per pump, every window but the newest (final once the next step arrives) was seen
    assert s.windows == 3 * (DAYS * DAY - detector.config.window.window)


def test_every_alert_names_a_model_version_that_was_serving(retrained):
    _, retrainer, events = retrained
    serving = {"v0001"} | {o.version for o in retrainer.history if o.promoted}
    assert {e.model_version for e in events} <= serving


def test_a_rejected_candidate_leaves_the_old_model_serving(plant, warm):
    before = plant[days(WARMUP_DAYS) : days(WARMUP_DAYS + 2)]
    after = plant[days(WARMUP_DAYS + 2) : days(WARMUP_DAYS + 3)]
    # a learning rate that wrecks the fine-tuning: a genuinely worse candidate (its scores
    # explode; the gate sees its fault AUC collapse)
    broken = sv.Detector.restore(config(learning_rate=1e6), warm)
    reference = sv.Detector.restore(config(), warm)
    broken.process(before)
    reference.process(before)
    outcome = sv.Retrainer(broken, background="inline").retrain_now()
    assert not outcome.promoted
    assert outcome.decision.reason.startswith("rejected: fault AUC")
    assert broken.model_version == "v0001"
    got = broken.process_detailed(after).scored
    want = reference.process_detailed(after).scored
    assert [w.score for w in got] == [w.score for w in want]


def test_a_retrain_without_enough_buffered_windows_is_rejected_not_raised(warm):
    detector = sv.Detector.restore(config(), warm)  # the buffer refills after a restore
    outcome = sv.Retrainer(detector, background="inline").retrain_now()
    assert not outcome.promoted
    assert "buffered windows" in outcome.decision.reason


def test_rollback_restores_the_previous_versions_scores(plant, warm, tmp_path):
    registry = sv.ModelRegistry(tmp_path / "models")
    detector = sv.Detector.restore(config(), warm)
    registry.save(detector.export_model()[0], "v0001")
    detector.process(plant[days(WARMUP_DAYS) : days(WARMUP_DAYS + 2)])
    outcome = sv.Retrainer(detector, registry, background="inline").retrain_now()
    assert outcome.promoted
    assert registry.latest() == "v0002"
    windows = np.stack([w.values for w in sv.Windower(config().window).push_many(plant[: days(1)])])

    def scores(artefact: sv.Artefact) -> list[float]:
        d = sv.Detector.from_artefact(config(), artefact)
        return d._score(["pump-0"] * len(windows), windows).scores.tolist()

    v1 = scores(registry.load("v0001"))
    assert scores(registry.load()) != v1
    registry.rollback()
    assert registry.latest() == "v0001"
    assert scores(registry.load()) == v1
