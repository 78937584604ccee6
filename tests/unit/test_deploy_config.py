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


def test_the_image_default_settings_serve_health_where_its_healthcheck_asks():
    # deploy/Dockerfile copies this file to /etc/streamvae/streamvae.toml and its HEALTHCHECK
    # asks 127.0.0.1:<port>/healthz inside the container; a loopback-only bind would also hide
    # the port from probes and scrapers outside it.
    import re

    settings = Settings.load(EXAMPLE, env={})
    dockerfile = (EXAMPLE.parent / "Dockerfile").read_text()
    assert "COPY deploy/streamvae.toml /etc/streamvae/streamvae.toml" in dockerfile
    m = re.search(r"127\.0\.0\.1:(\d+)/healthz", dockerfile)
    assert m is not None
    assert int(m.group(1)) == settings.run.metrics_port
    assert settings.run.metrics_host == "0.0.0.0"
