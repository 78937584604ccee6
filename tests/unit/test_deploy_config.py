"""The annotated example settings in deploy/ stay loadable as the settings evolve."""

from pathlib import Path

from consumers.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "streamvae.toml"


def test_the_deploy_example_settings_load_and_say_what_they_claim():
    settings = Settings.load(EXAMPLE, env={})
    assert settings.kafka.topics == ("plant.sensors.v1",)
    assert settings.kafka.state_topic == "streamvae.state.v1"
    assert settings.run.log_format == "json"
    assert settings.detector.window.period_s == 60.0
    assert settings.detector.alert.site == "plant-1"
    assert settings.run.workers == 2
    assert settings.kafka.models_topic == "streamvae.models.v1"
    assert settings.detector.retrain.every_s == 604800.0
