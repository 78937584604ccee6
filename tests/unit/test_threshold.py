"""The adaptive threshold: what it must do on score streams, stated one behaviour per test."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import stats as river_stats

from streamvae.errors import ConfigError, InputError
from streamvae.threshold import AdaptiveThreshold, ThresholdBank, ThresholdConfig, fit_gpd

P995 = 2.5758  # 99.5th percentile of N(0, 1)


def bare(**kwargs) -> ThresholdConfig:
    """A config whose threshold is the bare percentile (no margin): the primitive under test."""
    return ThresholdConfig(**{"margin": 0.0, **kwargs})


def normal(n: int, seed: int = 0, loc: float = 0.0) -> list[float]:
    return np.random.default_rng(seed).normal(loc, 1.0, n).tolist()


def correlated(n: int, seed: int = 0) -> list[float]:
    """N(0, 1) scores correlated like those of overlapping windows (moving sums of 32)."""
    noise = np.random.default_rng(seed).normal(size=n + 31)
    return (np.convolve(noise, np.ones(32), "valid") / math.sqrt(32)).tolist()


def test_threshold_approaches_the_q_quantile_of_a_stationary_stream():
    th = AdaptiveThreshold(bare(q=0.995, history=2000, grace=100))
    decisions = [th.update(x) for x in normal(30_000)]
    assert th.get() == pytest.approx(P995, abs=0.25)
    alarm_rate = np.mean([d.anomalous for d in decisions[2000:]])
    assert 0.002 < alarm_rate < 0.01


def test_threshold_is_rivers_rolling_quantile_of_the_learned_scores():
    th = AdaptiveThreshold(bare(protect=False, history=500, grace=0))
    reference = river_stats.RollingQuantile(0.995, 500)
    for x in normal(3000, seed=1):
        th.update(x)
        reference.update(x)
        assert th.get() == reference.get()


def test_threshold_is_infinite_until_a_score_is_learned():
    assert AdaptiveThreshold().get() == math.inf


def test_a_burst_of_anomalies_does_not_move_the_protected_threshold():
    th = AdaptiveThreshold(bare(history=2000, grace=0))
    th.recalibrate(normal(2000))
    before = th.get()
    burst = [th.update(50.0) for _ in range(100)]
    assert all(d.anomalous for d in burst)
    for x in normal(200, seed=2):  # the episode closes; its scores must stay out
        th.update(x)
    assert th.get() <= before


def test_short_excursions_are_learned_so_the_protected_threshold_does_not_ratchet_down():
    th = AdaptiveThreshold(bare(history=2000, grace=0))
    scores = correlated(62_000)
    th.recalibrate(scores[:2000])
    decisions = [th.update(x) for x in scores[2000:]]
    late_alarm_rate = np.mean([d.anomalous for d in decisions[-20_000:]])
    assert late_alarm_rate < 0.015  # nominal 0.005, a little more for correlated scores


def test_strict_protection_ratchets_down_on_a_stationary_stream():
    # Why the default learns short episodes: protecting every exceedance keeps the window's
    # top out, so the threshold can only fall and the alarm rate climbs.
    strict = AdaptiveThreshold(bare(history=2000, grace=0, protect_after=1))
    scores = correlated(42_000)
    strict.recalibrate(scores[:2000])
    decisions = [strict.update(x) for x in scores[2000:]]
    assert np.mean([d.anomalous for d in decisions[-20_000:]]) > 0.05


def test_a_sustained_level_shift_stops_alarming_after_the_cap_and_the_threshold_adapts():
    cap = 200
    th = AdaptiveThreshold(bare(history=2000, grace=0, max_alarm_windows=cap))
    th.recalibrate(normal(2000))
    for x in normal(1000, seed=1):
        th.update(x)
    shifted = [th.update(x) for x in normal(4000, seed=2, loc=8.0)]
    changes = [i for i, d in enumerate(shifted) if d.regime_change]
    assert len(changes) == 1
    assert not shifted[changes[0]].anomalous
    assert sum(d.anomalous for d in shifted[: changes[0]]) <= cap
    assert th.get() > 8.0
    assert np.mean([d.anomalous for d in shifted[changes[0] + 1 :]]) < 0.02


def test_without_a_cap_a_protected_threshold_locks_on_to_a_level_shift():
    th = AdaptiveThreshold(bare(history=2000, grace=0, max_alarm_windows=0))
    th.recalibrate(normal(2000))
    shifted = [th.update(x) for x in normal(3000, seed=2, loc=8.0)]
    assert all(d.anomalous for d in shifted)
    assert not any(d.regime_change for d in shifted)


def test_grace_period_suppresses_decisions_and_says_so():
    th = AdaptiveThreshold(bare(grace=50))
    decisions = [th.update(x) for x in normal(50)] + [th.update(100.0)]
    assert all(d.warming_up and not d.anomalous for d in decisions[:50])
    assert decisions[50].anomalous
    assert not decisions[50].warming_up


def test_recalibrate_resets_the_scale_and_restarts_the_grace_period():
    th = AdaptiveThreshold(bare(history=2000, grace=20))
    for x in normal(3000):
        th.update(x)
    new_scale = [100.0 + 10.0 * x for x in normal(2000, seed=3)]
    th.recalibrate(new_scale)
    assert th.get() == pytest.approx(np.quantile(new_scale, 0.995))
    assert th.warming_up
    assert not th.update(1000.0).anomalous


def test_recalibrate_with_no_scores_empties_the_baseline():
    th = AdaptiveThreshold(bare(grace=0))
    for x in normal(100):
        th.update(x)
    th.recalibrate([])
    assert th.get() == math.inf


@pytest.mark.parametrize("mode", ["spot", "dspot"])
def test_spot_flags_extremes_of_a_heavy_tailed_stream_at_roughly_the_requested_risk(mode):
    risk = 1e-3
    th = AdaptiveThreshold(bare(mode=mode, q=1 - risk, history=5000, grace=0))
    heavy = np.random.default_rng(4).standard_t(df=3, size=60_000)
    if mode == "dspot":
        heavy = heavy + np.linspace(0.0, 20.0, heavy.size)  # a slow drift DSPOT must follow
    th.recalibrate(heavy[:5000].tolist())
    decisions = [th.update(x) for x in heavy[5000:].tolist()]
    rate = np.mean([d.anomalous for d in decisions])
    assert risk / 3 < rate < 3 * risk
    assert th.label == ("SPOT" if mode == "spot" else "DSPOT") + " q=1e-3"


def test_gpd_fit_recovers_a_known_tail():
    u = np.random.default_rng(5).random(20_000)
    shape, scale = 0.3, 2.0
    gamma, sigma = fit_gpd(scale * (u**-shape - 1) / shape)
    assert gamma == pytest.approx(shape, abs=0.05)
    assert sigma == pytest.approx(scale, rel=0.05)


def test_bank_keeps_every_assets_threshold_independent():
    bank = ThresholdBank(bare(history=500, grace=0))
    bank.recalibrate({"small": normal(500), "large": [100 * x for x in normal(500, seed=1)]})
    small_before = bank.get("small")
    burst = bank.update_many(["large"] * 50, [1e4] * 50)
    assert all(d.anomalous for d in burst)
    assert bank.get("small") == small_before
    assert bank.get("large") > 10 * small_before
    assert bank.update("new", 1.0).warming_up is False  # grace 0; created on first use
    assert sorted(bank.assets) == ["large", "new", "small"]


def test_bank_update_many_needs_one_score_per_asset():
    with pytest.raises(InputError, match="2 assets but 1 scores"):
        ThresholdBank().update_many(["a", "b"], [1.0])


def test_non_finite_scores_are_refused():
    with pytest.raises(InputError, match="finite"):
        AdaptiveThreshold().update(math.nan)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "zscore"}, "mode"),
        ({"q": 1.0}, "q"),
        ({"q": 0.0}, "q"),
        ({"history": 1}, "history"),
        ({"grace": -1}, "grace"),
        ({"protect": 1}, "protect"),
        ({"protect_after": 0}, "protect_after"),
        ({"episode_gap": 0}, "episode_gap"),
        ({"max_alarm_windows": -1}, "max_alarm_windows"),
        ({"spot_level": 1.0}, "spot_level"),
        ({"mode": "spot", "spot_level": 0.999}, "spot_level"),
        ({"dspot_depth": 0}, "dspot_depth"),
        ({"mode": "spot", "history": 100}, "history"),
    ],
)
def test_config_errors_name_the_bad_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"ThresholdConfig\.{field}:"):
        ThresholdConfig(**kwargs)


def test_percentile_mode_accepts_a_q_below_the_spot_level():
    assert ThresholdConfig(q=0.9).q == 0.9


def test_config_round_trips_through_a_dict():
    cfg = ThresholdConfig(mode="dspot", q=0.999, max_alarm_windows=0)
    assert ThresholdConfig.from_dict(cfg.to_dict()) == cfg


def test_labels_say_how_the_threshold_was_set():
    assert AdaptiveThreshold().label == "p99.5 + 0.5×spread"
    assert AdaptiveThreshold(bare(q=0.99)).label == "p99"
    assert ThresholdBank(bare(mode="spot")).label == "SPOT q=5e-3"


def test_the_margin_lifts_the_threshold_by_its_share_of_the_spread_above_the_median():
    # 2049 scores: the median is refreshed every 64 learned scores, the last time at 2049
    scores = normal(2049, seed=4)
    plain = AdaptiveThreshold(bare(history=2000, grace=0, protect=False))
    lifted = AdaptiveThreshold(ThresholdConfig(history=2000, grace=0, protect=False, margin=0.5))
    for x in scores:
        plain.update(x)
        lifted.update(x)
    median = float(np.median(scores[-2000:]))
    assert lifted.get() == pytest.approx(plain.get() + 0.5 * (plain.get() - median), abs=1e-12)


def test_the_margin_stops_alarms_on_the_normal_tail_of_a_correlated_stream():
    stream = correlated(60_000, seed=5)
    plain = AdaptiveThreshold(bare(history=2000, grace=200))
    lifted = AdaptiveThreshold(ThresholdConfig(history=2000, grace=200, margin=0.5))
    plain_alarms = sum(plain.update(x).anomalous for x in stream)
    lifted_alarms = sum(lifted.update(x).anomalous for x in stream)
    assert lifted_alarms < plain_alarms / 4


def test_the_margin_still_flags_a_fault_well_above_the_normal_range():
    th = AdaptiveThreshold(ThresholdConfig(history=2000, grace=0))
    for x in normal(3000, seed=6):
        th.update(x)
    assert th.update(P995 + 2.0).anomalous


def test_restore_refuses_an_unknown_snapshot_version():
    state = AdaptiveThreshold().snapshot() | {"version": 99}
    with pytest.raises(InputError, match="version 99"):
        AdaptiveThreshold.restore(ThresholdConfig(), state)


# A small config so that short streams exercise every path: grace, episodes that are learned,
# episodes that are protected, regime changes, window expiry and the top-list refill.
SMALL = {
    "percentile": ThresholdConfig(
        history=64, grace=10, protect_after=4, episode_gap=3, max_alarm_windows=25
    ),
    "spot": ThresholdConfig(
        mode="spot",
        history=500,
        grace=10,
        protect_after=4,
        episode_gap=3,
        max_alarm_windows=25,
        spot_level=0.97,
    ),
    "dspot": ThresholdConfig(
        mode="dspot",
        history=500,
        grace=10,
        protect_after=4,
        episode_gap=3,
        max_alarm_windows=25,
        spot_level=0.97,
        dspot_depth=5,
    ),
}


def _stream(seed: int, n: int) -> list[tuple[str, float]]:
    """Two interleaved assets: normal scores, bursts of 1-30 anomalous windows, and level
    shifts (mostly upward) that outlast the cap."""
    rng = np.random.default_rng(seed)
    level = {"a": 0.0, "b": 5.0}
    burst = {"a": 0, "b": 0}
    out = []
    for _ in range(n):
        asset = "a" if rng.random() < 0.6 else "b"
        if rng.random() < 0.006:
            level[asset] += rng.uniform(-3.0, 9.0)
        if burst[asset] == 0 and rng.random() < 0.02:
            burst[asset] = int(rng.integers(1, 31))
        extra = 20.0 if burst[asset] else 0.0
        burst[asset] = max(0, burst[asset] - 1)
        out.append((asset, float(level[asset] + rng.standard_normal() + extra)))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(sorted(SMALL)),
    seed=st.integers(0, 2**16),
    n=st.integers(50, 1500),
    cut_fraction=st.floats(0.0, 1.0),
)
def test_snapshot_json_restore_continues_bit_identically(mode, seed, n, cut_fraction):
    cfg = SMALL[mode]
    stream = _stream(seed, n)
    cut = int(cut_fraction * n)
    uncut = ThresholdBank(cfg)
    uncut.recalibrate({"a": normal(30, seed=seed)})
    for asset, score in stream[:cut]:
        uncut.update(asset, score)
    restored = ThresholdBank.restore(cfg, json.loads(json.dumps(uncut.snapshot())))
    rest = stream[cut:]
    expected = uncut.update_many([a for a, _ in rest], [s for _, s in rest])
    got = restored.update_many([a for a, _ in rest], [s for _, s in rest])
    assert got == expected
    assert [restored.get(a) for a in "ab"] == [uncut.get(a) for a in "ab"]


def test_the_baseline_median_is_numpys_median_at_every_size():
    from streamvae.threshold import _TopWindow

    rng = np.random.default_rng(7)
    window = _TopWindow(600, 0.995)
    values = rng.normal(size=1500)
    for i, v in enumerate(values):
        window.push(float(v))
        if i % 7 == 0 or i < 40:
            held = values[max(0, i + 1 - 600) : i + 1]
            assert window.median() == float(np.median(held)), i
