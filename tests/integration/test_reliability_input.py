"""Reliability campaign, short version: hostile payloads through a real ``streamvae run`` on
the real broker (``benchmarks/chaos/bad_input.py`` holds the generator, the rule for what is
bad and the oracle)."""

from __future__ import annotations

import pytest

from benchmarks.chaos import bad_input
from benchmarks.chaos.common import Context

pytestmark = pytest.mark.slow


def test_every_bad_payload_lands_in_the_dlq_and_every_valid_window_is_scored_as_without_them(
    kafka_bootstrap, model_path, tmp_path
):
    result = bad_input.run(
        Context(bootstrap=kafka_bootstrap, workdir=tmp_path, model=model_path), trials=2000
    )
    print(result.row())
    assert result.ok, result.figures["problems"]
    assert result.figures["bad_records"] > 1000
    assert result.figures["windows_scored"] == result.figures["windows_expected"] > 0
