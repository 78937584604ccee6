"""Reliability campaign, short version: ``streamvae`` processes run with a fresh Kafka password
each, on the paths where secrets leak (invalid or contradictory settings, a password under a
misspelt name, ``--help``), and every byte they write is searched for it
(``benchmarks/chaos/secrets.py``; the slow SASL-against-the-broker cases run in the full
campaign)."""

from __future__ import annotations

import pytest

from benchmarks.chaos import secrets
from benchmarks.chaos.common import Context

pytestmark = pytest.mark.slow


def test_no_password_reaches_stdout_stderr_or_written_files_on_the_settings_failure_paths(
    kafka_bootstrap, tmp_path
):
    result = secrets.run(Context(bootstrap=kafka_bootstrap, workdir=tmp_path), trials=4)
    print(result.row())
    assert result.ok, result.figures["problems"]
