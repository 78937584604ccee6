"""The retraining side loop's parts: the training buffer, the trigger, the validation gate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import streamvae as sv
from streamvae.errors import ConfigError
from streamvae.retraining import inject_faults


def buffer(**kw) -> sv.TrainingBuffer:
    cfg = sv.RetrainConfig(**{"min_windows": 16, "capacity": 64, "keep_every": 1, **kw})
    return sv.TrainingBuffer(cfg, window=4, channels=2)


def offer(buf: sv.TrainingBuffer, asset: str, counts, ts0: float = 0.0) -> None:
    for c in counts:
        buf.offer(asset, ts0 + c, np.full((4, 2), float(c)), c)


# ----------------------------------------------------------------------------- buffer


def test_a_window_enters_the_buffer_only_after_its_guard_band_passed_normally():
    buf = buffer(guard_windows=3)
    offer(buf, "p", range(3))
    assert len(buf) == 0
    offer(buf, "p", [3])
    assert len(buf) == 1  # window 0 is 3 normal windows old


def test_an_anomaly_drops_the_guard_band_before_it_and_blocks_the_band_after_it():
    buf = buffer(guard_windows=3)
    offer(buf, "p", range(6))  # 0..2 admitted, 3..5 pending
    buf.void("p", 6)
    offer(buf, "p", range(6, 14))
    kept = sorted(buf.training_set().end_ts.tolist())
    assert kept[:3] == [0.0, 1.0, 2.0]
    assert not set(kept) & {3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0}
    assert 10.0 in kept  # 10 is outside the band after; its guard (11..13) passed


def test_an_anomaly_of_one_asset_does_not_touch_another():
    buf = buffer(guard_windows=2)
    offer(buf, "a", range(4))
    offer(buf, "b", range(4))
    buf.void("a", 4)
    assets = buf.training_set().assets
    assert assets.count("a") == 2
    assert assets.count("b") == 2


def test_the_buffer_is_bounded_and_keeps_recent_windows_more_often_than_old_ones():
    buf = buffer(guard_windows=0, capacity=64, min_windows=16)
    offer(buf, "p", range(2000))
    ts = buf.training_set().end_ts
    assert len(ts) == 64
    newer = int((ts >= 1000).sum())
    assert newer > 0.8 * len(ts)  # time-biased: each admission evicts a random window
    assert ts.max() >= 1990


def test_windows_beyond_the_horizon_are_not_trained_on():
    buf = buffer(guard_windows=0, horizon_s=10.0)
    offer(buf, "p", range(40))
    assert buf.training_set().end_ts.min() >= 29.0


def test_a_training_set_is_in_event_time_order_and_its_holdout_is_the_latest_part():
    buf = buffer(guard_windows=0)
    for c in range(30):
        buf.offer("b" if c % 2 else "a", 100.0 - c, np.zeros((4, 2)), c)
    ts = buf.training_set()
    assert ts.end_ts.tolist() == sorted(ts.end_ts.tolist())
    older, holdout = ts.split(0.2)
    assert len(holdout) == 6
    assert older.end_ts.max() <= holdout.end_ts.min()


# ----------------------------------------------------------------------------- trigger


def test_a_retrain_is_due_after_enough_scored_windows():
    t = sv.RetrainTrigger(sv.RetrainConfig(every_windows=100, every_s=0.0, drift=False))
    t.observe([1.0] * 99, end_ts=1.0)
    assert t.due(buffered=10_000) is None
    t.observe([1.0], end_ts=2.0)
    assert t.due(buffered=10_000) == "windows"


def test_a_retrain_is_due_after_enough_event_time():
    t = sv.RetrainTrigger(sv.RetrainConfig(every_windows=0, every_s=3600.0, drift=False))
    t.observe([1.0], end_ts=1000.0)
    t.observe([1.0], end_ts=4599.0)
    assert t.due(buffered=10_000) is None
    t.observe([1.0], end_ts=4600.0)
    assert t.due(buffered=10_000) == "time"


def test_never_with_fewer_than_the_minimum_of_buffered_windows():
    t = sv.RetrainTrigger(sv.RetrainConfig(every_windows=1, min_windows=500, drift=False))
    t.observe([1.0] * 10, end_ts=1.0)
    assert t.due(buffered=499) is None
    assert t.due(buffered=500) == "windows"


def test_a_drifting_score_stream_makes_a_retrain_due_early():
    rng = np.random.default_rng(0)
    t = sv.RetrainTrigger(sv.RetrainConfig(every_windows=0, every_s=0.0, drift_block=64))
    for i in range(200):
        t.observe(rng.normal(0.0, 0.1, 64).tolist(), end_ts=float(i))
    assert t.due(buffered=10_000) is None
    for i in range(200, 260):
        t.observe(rng.normal(1.5, 0.1, 64).tolist(), end_ts=float(i))
    assert t.due(buffered=10_000) == "drift"


def test_a_reset_restarts_the_clock():
    t = sv.RetrainTrigger(sv.RetrainConfig(every_windows=10, drift=False))
    t.observe([1.0] * 20, end_ts=5.0)
    t.reset(5.0)
    assert t.due(buffered=10_000) is None


def test_retrain_settings_are_validated_where_they_enter():
    with pytest.raises(ConfigError, match="capacity"):
        sv.RetrainConfig(capacity=100, min_windows=200)
    with pytest.raises(ConfigError, match="holdout"):
        sv.RetrainConfig(holdout=0.9)


# ----------------------------------------------------------------------------- gate


@pytest.fixture(scope="module")
def trained() -> tuple[sv.RecurrentVAE, sv.StandardScaler, sv.TrainingSet]:
    plant = sv.testing.SyntheticPlant(seed=3)
    values = plant.generate(1400).values
    wins = sv.sliding_windows(values, 16)
    scaler = sv.StandardScaler.fit(values)
    model = sv.RecurrentVAE(sv.VAEConfig(channels=plant.channels, window=16))
    x = ((wins - np.asarray(scaler.mean)) / np.asarray(scaler.scale)).astype(np.float32)
    sv.fit(model, x[:1000], sv.TrainConfig(epochs=30))
    holdout = sv.TrainingSet(
        wins[1000:].astype(np.float32),
        tuple("p" for _ in wins[1000:]),
        np.arange(len(wins) - 1000, dtype=np.float64),
    )
    return model, scaler, holdout


def test_injected_faults_change_every_window():
    values = np.zeros((9, 8, 3), np.float32)
    faulty = inject_faults(values, np.ones(3), magnitude=4.0)
    assert (np.abs(faulty - values).max(axis=(1, 2)) > 1.0).all()


def test_the_gate_promotes_a_candidate_as_good_as_the_serving_model(trained):
    model, scaler, holdout = trained
    d = sv.validation_gate(model, scaler, model, scaler, holdout, sv.RetrainConfig())
    assert d.promote
    assert d.candidate_auc == d.serving_auc
    assert d.candidate_auc > 0.75  # the mean over the three fault sizes


def test_the_gate_rejects_a_candidate_that_separates_faults_worse(trained):
    model, scaler, holdout = trained
    untrained = sv.RecurrentVAE(model.config)
    d = sv.validation_gate(untrained, scaler, model, scaler, holdout, sv.RetrainConfig())
    assert not d.promote
    assert "below the serving model" in d.reason


def test_the_gate_rejects_a_candidate_with_non_finite_scores(trained):
    model, scaler, holdout = trained
    broken = sv.RecurrentVAE(model.config)
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():
        next(broken.parameters()).fill_(math.nan)
    d = sv.validation_gate(broken, scaler, model, scaler, holdout, sv.RetrainConfig())
    assert not d.promote
    assert "non-finite" in d.reason
