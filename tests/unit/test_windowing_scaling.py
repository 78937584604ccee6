import numpy as np
import pytest

from streamvae import InputError, StandardScaler, sliding_windows


def test_sliding_windows_take_every_stride_th_start():
    series = np.arange(20.0).reshape(10, 2)
    windows = sliding_windows(series, window=4, stride=3)
    assert windows.shape == (3, 4, 2)
    assert windows[1, 0].tolist() == [6.0, 7.0]


def test_a_series_shorter_than_the_window_gives_no_windows():
    assert sliding_windows(np.zeros((3, 2)), window=4).shape == (0, 4, 2)


def test_univariate_series_work():
    assert sliding_windows(np.zeros((10, 1)), window=5).shape == (6, 5, 1)


def test_scaler_standardises_each_channel_and_round_trips_its_state():
    values = np.random.default_rng(0).normal(5.0, 3.0, size=(1000, 3))
    scaler = StandardScaler.fit(values)
    scaled = scaler.transform(values)
    assert np.allclose(scaled.mean(axis=0), 0.0, atol=1e-9)
    assert np.allclose(scaled.std(axis=0), 1.0)
    assert StandardScaler.from_state(scaler.to_state()) == scaler


def test_scaler_centres_a_constant_channel_instead_of_dividing_by_zero():
    scaler = StandardScaler.fit(np.array([[1.0, 7.0], [2.0, 7.0], [3.0, 7.0]]))
    assert np.isfinite(scaler.transform([[2.0, 7.0]])).all()


def test_scaler_ignores_missing_values_when_fitting():
    scaler = StandardScaler.fit(np.array([[1.0], [np.nan], [3.0]]))
    assert scaler.mean == (2.0,)


def test_scaler_rejects_the_wrong_channel_count():
    scaler = StandardScaler.fit(np.zeros((4, 2)) + np.arange(4)[:, None])
    with pytest.raises(InputError, match="2 channels"):
        scaler.transform(np.zeros((3, 3)))
