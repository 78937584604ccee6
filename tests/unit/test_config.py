import pytest

from streamvae import BetaSchedule, ConfigError, ScoringConfig, TrainConfig, VAEConfig


def test_vae_config_rejects_duplicate_channel_names_naming_the_field():
    with pytest.raises(ConfigError, match=r"VAEConfig\.channels: .*unique"):
        VAEConfig(channels=("a", "a"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 1}, "window"),
        ({"cell": "rnn"}, "cell"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"decoder": "transformer"}, "decoder"),
        ({"min_logvar": 3.0, "max_logvar": 2.0}, "min_logvar"),
    ],
)
def test_vae_config_errors_name_the_bad_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"VAEConfig\.{field}:"):
        VAEConfig(channels=("a",), **kwargs)


def test_config_error_is_a_value_error_for_callers_that_catch_those():
    with pytest.raises(ValueError):  # noqa: PT011
        TrainConfig(epochs=0)


def test_train_config_round_trips_through_a_dict_with_its_nested_schedule():
    cfg = TrainConfig(epochs=7, beta=BetaSchedule(kind="cyclical", cycles=2))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_from_dict_rejects_unknown_fields_so_typos_never_pass_silently():
    with pytest.raises(ConfigError, match=r"unknown field.*'epoch'"):
        TrainConfig.from_dict({"epoch": 3})


def test_scoring_config_requires_at_least_one_sample():
    with pytest.raises(ConfigError, match=r"ScoringConfig\.samples"):
        ScoringConfig(samples=0)


def test_linear_beta_warms_up_then_holds():
    schedule = BetaSchedule(kind="linear", beta_max=2.0, warmup_epochs=4)
    assert [schedule.beta(e, 10) for e in (0, 1, 4, 9)] == [0.0, 0.5, 2.0, 2.0]


def test_cyclical_beta_restarts_each_cycle():
    schedule = BetaSchedule(kind="cyclical", beta_max=1.0, cycles=2, ramp_fraction=0.5)
    # 10 epochs, 2 cycles of 5: ramp over 2.5 epochs, hold, restart at epoch 5
    assert schedule.beta(0, 10) == 0.0
    assert schedule.beta(2.5, 10) == 1.0
    assert schedule.beta(4.9, 10) == 1.0
    assert schedule.beta(5.0, 10) == 0.0
    assert schedule.settled_epoch(10) == pytest.approx(7.5)


def test_constant_beta_is_settled_from_the_start():
    schedule = BetaSchedule(kind="constant", beta_max=0.3)
    assert schedule.beta(0, 10) == 0.3
    assert schedule.settled_epoch(10) == 0.0
