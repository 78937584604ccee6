"""Property tests of the decoders (a short slice of the campaign's fuzz run, see
``benchmarks/chaos/fuzz.py`` for the oracles): whatever the bytes, the reading decoder answers
with a Reading or a Rejection, and the alert decoder with an AlertEvent or an InputError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamvae as sv
from benchmarks.chaos import fuzz
from benchmarks.chaos.common import Context

_short = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_short
@given(st.binary(max_size=256))
def test_the_reading_decoder_never_raises_on_random_bytes(raw):
    fuzz.check_payloads(sv.ReadingConfig(), [raw])


@_short
@given(fuzz.decoder_configs, st.lists(fuzz.payloads, min_size=1, max_size=6))
def test_what_the_reading_decoder_accepts_is_within_every_configured_limit(config, raws):
    fuzz.check_payloads(config, raws)


@_short
@given(fuzz.alert_documents())
def test_the_alert_decoder_raises_nothing_but_input_error(doc):
    fuzz.check_alert_document(doc)


def test_an_alert_whose_score_is_too_large_for_a_float_is_refused_with_input_error():
    # found by the fuzz run: float(10**400) raised OverflowError out of from_cloudevent
    doc = json.loads(
        sv.AlertEvent(
            "firing",
            "p",
            "pump-7",
            "critical",
            "s",
            60.0,
            None,
            9.7,
            4.1,
            {"vib": 1.0},
            29.0,
            60.0,
            "v0001",
        ).to_json()
    )
    doc["data"]["details"]["score"] = 10**400
    with pytest.raises(sv.InputError, match="wrong type"):
        sv.AlertEvent.from_cloudevent(doc)


def test_the_fuzz_scenario_reports_examples_and_no_failure_for_a_second(tmp_path: Path):
    result = fuzz.run(Context(bootstrap="unused:9092", workdir=tmp_path), trials=1)
    print(result.row())
    assert result.ok, result.figures["failures"]
    assert result.figures["examples"] > 0


def test_an_allowed_channel_longer_than_the_channel_length_limit_is_a_config_error():
    # found by the fuzz run: with channels=("temperature",) and max_channel_length=4 the
    # decoder accepted an 11-character channel name the limit says it refuses
    with pytest.raises(sv.ConfigError, match="max_channel_length"):
        sv.ReadingConfig(channels=("temperature",), max_channel_length=4)


def test_an_allowed_asset_longer_than_the_asset_length_limit_is_a_config_error():
    # the same contradiction for assets sent every reading of that asset to the DLQ
    with pytest.raises(sv.ConfigError, match="max_asset_length"):
        sv.ReadingConfig(assets=("pump-0042",), max_asset_length=4)
