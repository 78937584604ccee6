"""The classical baselines (Half-Space Trees, Hotelling T²): one behaviour per test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamvae.baselines import (
    Baseline,
    HalfSpaceTreesBaseline,
    HotellingT2Baseline,
    HSTConfig,
    T2Config,
    _RollingQuantile,
    run,
)
from streamvae.errors import ConfigError, InputError

CHANNELS = 6


def correlated(rows: int, seed: int) -> np.ndarray:
    """Gaussian rows whose channels are correlated (a random mixing of independent noise)."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(99).normal(size=(CHANNELS, CHANNELS))
    return np.asarray(rng.normal(size=(rows, CHANNELS)) @ mixing + 10.0)


def shifted_stream(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """400 training rows, then 600 normal test rows and 200 with two channels shifted by
    6 of their standard deviations; returns (train, test, is_shifted). (At 4 standard
    deviations T² still flags nearly all shifted rows, HST only a quarter to a half: its
    axis-aligned boxes do not see the broken correlation, only the distance.)"""
    data = correlated(1200, seed)
    train, test = data[:400], data[400:].copy()
    std = train.std(axis=0)
    test[600:, :2] += 6.0 * std[:2]
    return train, test, np.arange(800) >= 600


def hst(**kwargs: object) -> HalfSpaceTreesBaseline:
    return HalfSpaceTreesBaseline(HSTConfig(**{"n_trees": 10, **kwargs}))  # type: ignore[arg-type]


DETECTORS = {
    "hst": lambda: hst(),
    "t2": lambda: HotellingT2Baseline(),
}


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_shifted_rows_are_flagged_far_more_often_than_normal_rows(name):
    train, test, shifted = shifted_stream()
    _, flags = run(DETECTORS[name](), train, test)
    assert flags[shifted].mean() > 0.8
    assert flags[~shifted].mean() < 0.1


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_shifted_rows_score_higher_than_normal_rows(name):
    train, test, shifted = shifted_stream(seed=1)
    scores, _ = run(DETECTORS[name](), train, test)
    assert np.median(scores[shifted]) > np.quantile(scores[~shifted], 0.95)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_both_follow_the_baseline_protocol(name):
    detector = DETECTORS[name]()
    assert isinstance(detector, Baseline)
    assert detector.name == name


@pytest.mark.parametrize("q", [0.95, 0.99])
def test_t2_false_alarm_rate_on_normal_data_is_about_one_minus_q(q):
    train, test = correlated(4000, seed=2), correlated(20_000, seed=3)
    _, flags = run(HotellingT2Baseline(T2Config(q=q)), train, test)
    assert flags.mean() == pytest.approx(1.0 - q, rel=0.35)


def test_t2_threshold_is_the_training_quantile_of_t2_times_factor():
    train = correlated(500, seed=4)
    plain, scaled = (
        HotellingT2Baseline(T2Config(q=0.9)),
        HotellingT2Baseline(T2Config(q=0.9, factor=2.5)),
    )
    plain.fit(train)
    scaled.fit(train)
    training_t2 = [plain.score_one(row)[0] for row in train]
    assert plain.threshold == pytest.approx(np.quantile(training_t2, 0.9))
    assert scaled.threshold == pytest.approx(2.5 * plain.threshold)


def test_t2_keeps_the_fewest_components_that_explain_the_variance():
    rng = np.random.default_rng(5)
    strong = rng.normal(size=(1000, 2)) * 10.0
    data = np.hstack([strong, strong @ rng.normal(size=(2, 3))]) + rng.normal(size=(1000, 5))
    detector = HotellingT2Baseline(T2Config(variance=0.9))
    detector.fit(data)
    assert detector.components == 2


def test_t2_smoothing_averages_the_last_rows_including_the_end_of_training():
    train, test = correlated(400, seed=6), correlated(10, seed=7)
    raw, smooth = HotellingT2Baseline(), HotellingT2Baseline(T2Config(smooth=3))
    raw_scores, _ = run(raw, train, test)
    smooth_scores, _ = run(smooth, train, test)
    last_two = [raw.score_one(row)[0] for row in train[-2:]]
    history = np.concatenate([last_two, raw_scores])
    assert smooth_scores == pytest.approx(np.convolve(history, np.ones(3) / 3, "valid"))


def test_t2_fits_a_channel_that_was_constant_in_training_and_stays_blind_to_it():
    train = correlated(400, seed=8)
    train[:, 3] = 5.0
    detector = HotellingT2Baseline()
    detector.fit(train)
    row = train[0].copy()
    same = detector.score_one(row)[0]
    row[3] = 6.0
    moved = detector.score_one(row)[0]
    assert math.isfinite(same)
    assert moved == pytest.approx(same)  # outside every kept component: only Q/SPE would see it


def test_hst_is_deterministic_for_a_seed_and_differs_across_seeds():
    train, test, _ = shifted_stream(seed=9)
    first, _ = run(hst(seed=3), train, test)
    again, _ = run(hst(seed=3), train, test)
    other, _ = run(hst(seed=4), train, test)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_fitting_again_forgets_the_previous_fit(name):
    train, test, _ = shifted_stream(seed=10)
    fresh = run(DETECTORS[name](), train, test)
    reused = DETECTORS[name]()
    run(reused, correlated(500, seed=11) * 3.0, test)
    again = run(reused, train, test)
    assert np.array_equal(fresh[0], again[0])
    assert np.array_equal(fresh[1], again[1])


def test_hst_learns_only_rows_it_does_not_flag_by_default():
    train, test, _ = shifted_stream(seed=12)
    detector = hst()
    detector.fit(train)
    moved_on_normal = moved_on_flagged = 0
    for row in test:
        before = detector.threshold
        _, flag = detector.score_one(row)
        if flag:
            moved_on_flagged += detector.threshold != before
        else:
            moved_on_normal += detector.threshold != before
    assert moved_on_flagged == 0
    assert moved_on_normal > 0


def test_hst_with_learn_none_keeps_the_fitted_threshold():
    train, test, _ = shifted_stream(seed=13)
    detector = hst(learn="none")
    detector.fit(train)
    fitted = detector.threshold
    run_scores = [detector.score_one(row) for row in test]
    assert len(run_scores) == len(test)
    assert detector.threshold == fitted


def test_hst_learning_every_row_stops_flagging_a_lasting_shift():
    train, test, shifted = shifted_stream(seed=14)
    _, protected = run(hst(), train, test)
    _, learns_all = run(hst(learn="all"), train, test)
    assert learns_all[shifted].mean() < protected[shifted].mean()


def test_hst_needs_a_full_reference_window_of_training_rows():
    with pytest.raises(InputError, match="at least 300 training rows"):
        hst(window_size=300).fit(correlated(200, seed=15))


def test_rolling_quantile_is_numpys_quantile_of_the_last_values():
    values = np.random.default_rng(16).normal(size=700)
    window = _RollingQuantile(0.97, 250)
    for i, value in enumerate(values):
        window.push(float(value))
        assert window.get() == pytest.approx(np.quantile(values[max(0, i - 249) : i + 1], 0.97))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_scoring_before_fit_is_refused(name):
    with pytest.raises(InputError, match="call fit"):
        DETECTORS[name]().score_one(np.zeros(CHANNELS))


@pytest.mark.parametrize("name", sorted(DETECTORS))
@pytest.mark.parametrize(
    ("train", "message"),
    [
        (np.zeros(500), "2-D"),
        (np.full((500, 3), np.nan), "NaN or infinite"),
        (np.zeros((2, 3)), "at least"),
        ([["a", "b"]], "numeric"),
    ],
)
def test_bad_training_data_is_refused_with_the_reason(name, train, message):
    with pytest.raises(InputError, match=message):
        DETECTORS[name]().fit(train)


@pytest.mark.parametrize("name", sorted(DETECTORS))
@pytest.mark.parametrize(
    ("row", "message"),
    [
        (np.zeros(CHANNELS + 1), "shape"),
        (np.zeros((1, CHANNELS)), "shape"),
        (np.full(CHANNELS, np.inf), "NaN or infinite"),
    ],
)
def test_bad_rows_are_refused_with_the_reason(name, row, message):
    detector = DETECTORS[name]()
    detector.fit(correlated(400, seed=17))
    with pytest.raises(InputError, match=message):
        detector.score_one(row)


def test_run_refuses_a_test_set_that_is_not_2d():
    with pytest.raises(InputError, match="2-D"):
        run(HotellingT2Baseline(), correlated(400, seed=18), np.zeros(CHANNELS))


def test_t2_refuses_training_rows_that_do_not_vary():
    with pytest.raises(InputError, match="do not vary"):
        HotellingT2Baseline().fit(np.ones((50, 3)))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_trees": 0}, "n_trees"),
        ({"height": 0}, "height"),
        ({"height": 30}, "height"),
        ({"window_size": 5}, "window_size"),
        ({"q": 1.0}, "q"),
        ({"q": 0.0}, "q"),
        ({"history": 0}, "history"),
        ({"margin": 0.5}, "margin"),
        ({"margin": -0.1}, "margin"),
        ({"learn": "sometimes"}, "learn"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_hst_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"HSTConfig\.{field}"):
        HSTConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"variance": 0.0}, "variance"),
        ({"variance": 1.5}, "variance"),
        ({"q": 1.0}, "q"),
        ({"q": math.nan}, "q"),
        ({"factor": 0.0}, "factor"),
        ({"smooth": 0}, "smooth"),
    ],
)
def test_bad_t2_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"T2Config\.{field}"):
        T2Config(**kwargs)


def test_a_config_of_the_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="HSTConfig"):
        HalfSpaceTreesBaseline(T2Config())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="T2Config"):
        HotellingT2Baseline(HSTConfig())  # type: ignore[arg-type]


@pytest.mark.parametrize("config", [HSTConfig(margin=0.1, learn="none"), T2Config(smooth=4)])
def test_configs_round_trip_through_a_dict(config):
    assert type(config).from_dict(config.to_dict()) == config
