import numpy as np
import pytest
import torch

from streamvae import (
    BetaSchedule,
    InputError,
    NonFiniteLossError,
    RecurrentVAE,
    TrainConfig,
    fit,
)


def test_training_loss_decreases(tiny_config, tiny_windows):
    report = fit(RecurrentVAE(tiny_config), tiny_windows, TrainConfig(epochs=15, patience=50))
    assert report.history[-1].train_loss < report.history[0].train_loss - 10.0


def test_same_seed_and_data_give_bit_identical_weights(tiny_config, tiny_windows):
    cfg = TrainConfig(epochs=3, seed=5)
    a, b = RecurrentVAE(tiny_config), RecurrentVAE(tiny_config)
    fit(a, tiny_windows, cfg)
    fit(b, tiny_windows, cfg)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


def test_different_training_seeds_give_different_weights(tiny_config, tiny_windows):
    a, b = RecurrentVAE(tiny_config), RecurrentVAE(tiny_config)
    fit(a, tiny_windows, TrainConfig(epochs=2, seed=1))
    fit(b, tiny_windows, TrainConfig(epochs=2, seed=2))
    assert not torch.equal(a.to_z.weight, b.to_z.weight)


def test_progress_callback_sees_every_epoch_in_order(tiny_config, tiny_windows):
    seen = []
    fit(RecurrentVAE(tiny_config), tiny_windows, TrainConfig(epochs=4), progress=seen.append)
    assert [e.epoch for e in seen] == [1, 2, 3, 4]
    assert all(e.epochs == 4 for e in seen)


def test_validation_split_is_chronological_and_sized_by_val_fraction(tiny_config, tiny_windows):
    report = fit(RecurrentVAE(tiny_config), tiny_windows, TrainConfig(epochs=1, val_fraction=0.25))
    assert report.n_val == len(tiny_windows) // 4
    assert report.n_train + report.n_val == len(tiny_windows)


def test_early_stopping_ends_training_once_validation_stops_improving(tiny_config, tiny_windows):
    cfg = TrainConfig(
        epochs=200,
        learning_rate=1e-6,
        lr_schedule="constant",
        patience=3,
        min_delta=0.01,
        beta=BetaSchedule(kind="constant"),
    )
    report = fit(RecurrentVAE(tiny_config), tiny_windows, cfg)
    assert report.stopped_early
    assert report.epochs_run == report.best_epoch + 3


def test_early_stopping_restores_the_best_epoch_weights(tiny_config, tiny_windows):
    cfg = TrainConfig(epochs=12, patience=100, beta=BetaSchedule(kind="constant"))
    model = RecurrentVAE(tiny_config)
    report = fit(model, tiny_windows, cfg)
    best = min(e.val_loss for e in report.history)
    assert report.best_val_loss == best
    assert report.history[report.best_epoch - 1].val_loss == best


def test_non_finite_loss_raises_a_clear_error_naming_epoch_and_step(tiny_config, tiny_windows):
    huge = tiny_windows * np.float32(1e30)  # finite in float32, but its square overflows
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 1 .*learning_rate"):
        fit(RecurrentVAE(tiny_config), huge, TrainConfig(epochs=1))


def test_gradient_clipping_keeps_a_large_input_step_bounded(tiny_config, tiny_windows):
    model = RecurrentVAE(tiny_config)
    before = [p.detach().clone() for p in model.parameters()]
    fit(
        model,
        tiny_windows * 50,
        TrainConfig(
            epochs=1,
            batch_size=1000,
            grad_clip=1e-3,
            learning_rate=1e-2,
            lr_schedule="constant",
            val_fraction=0.0,
        ),
    )
    # One Adam step moves each weight by at most ~lr; clipping keeps it finite and small.
    moved = max((p - b).abs().max().item() for p, b in zip(model.parameters(), before, strict=True))
    assert 0 < moved <= 1.1e-2


def test_nan_in_training_windows_is_rejected_before_training(tiny_config, tiny_windows):
    bad = tiny_windows.copy()
    bad[3, 2, 1] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        fit(RecurrentVAE(tiny_config), bad)


def test_wrong_window_shape_is_rejected_with_the_expected_shape(tiny_config, tiny_windows):
    with pytest.raises(InputError, match=r"\(N, 16, 2\)"):
        fit(RecurrentVAE(tiny_config), tiny_windows[:, :8])


def test_too_few_windows_is_rejected(tiny_config, tiny_windows):
    with pytest.raises(InputError, match="at least 8"):
        fit(RecurrentVAE(tiny_config), tiny_windows[:3])


def test_fit_sets_each_channels_normal_nll_level(tiny_config, tiny_windows):
    model = RecurrentVAE(tiny_config)
    assert torch.equal(model.channel_nll_baseline, torch.zeros(2))
    fit(model, tiny_windows, TrainConfig(epochs=2))
    assert not torch.equal(model.channel_nll_baseline, torch.zeros(2))
