"""``streamvae demo``'s pure parts: options, the settings file it writes, durations."""

from __future__ import annotations

import argparse
import tomllib

import pytest

from consumers.cli import _duration
from consumers.demo import DemoError, DemoOptions, _Names, _settings, _toml
from consumers.settings import Settings


def test_the_plant_fills_the_duration_less_start_up_training_and_a_tail():
    assert DemoOptions(duration_s=30).plant_seconds() == pytest.approx(15.5)
    assert DemoOptions(duration_s=180).plant_seconds() == pytest.approx(150.0)
    assert DemoOptions(duration_s=10).plant_seconds() >= 5.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration_s": 5}, "--duration must be at least 10 s"),
        ({"assets": 2}, "--assets must be at least 3"),
        ({"healthy_days": 9.0}, "--healthy-days must be between 0 and --days"),
        ({"healthy_days": 1.0}, "--healthy-days must be at least 2.5"),
    ],
)
def test_bad_options_fail_before_anything_starts(kwargs, message):
    with pytest.raises(DemoError, match=message):
        DemoOptions(**kwargs)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("3m", 180.0), ("180", 180.0), ("1h", 3600.0)]
)
def test_durations_take_a_unit(text, seconds):
    assert _duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-3m", "0", "m"])
def test_a_bad_duration_says_how_to_write_one(text):
    with pytest.raises(argparse.ArgumentTypeError):
        _duration(text)


def test_the_generated_settings_file_is_valid_service_settings(tmp_path):
    names = _Names.fresh("abc12345")
    doc = _settings(DemoOptions(), "127.0.0.1:9092", names, 9999, tmp_path / "registry")
    text = _toml(doc)
    assert tomllib.loads(text)["kafka"]["topics"] == [names.sensors]
    path = tmp_path / "demo.toml"
    path.write_text(text)
    settings = Settings.load(path)
    assert settings.kafka.scores_topic == names.scores
    assert settings.kafka.group_id == "streamvae-demo-abc12345"
    assert settings.run.metrics_port == 9999
    assert settings.detector.alert.site == "demo"
    assert settings.detector.retrain.every_s == pytest.approx(3 * 86_400.0)


def test_toml_leaves_out_unset_values_and_nests_tables():
    text = _toml({"a": {"x": 1, "y": None, "b": {"z": [1.5, "s"], "t": True}}})
    assert tomllib.loads(text) == {"a": {"x": 1, "b": {"z": [1.5, "s"], "t": True}}}
