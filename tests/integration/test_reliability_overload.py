"""The overload scenario of the reliability campaign, short: a burst at 10x the rate the
service sustains (measured in the same run) pauses and resumes the partitions, keeps memory
within the in-flight bound, triggers no rebalance and drains to lag 0."""

from __future__ import annotations

import pytest

from benchmarks.chaos import overload
from benchmarks.chaos.common import Context

pytestmark = pytest.mark.slow


def test_a_10x_burst_pauses_stays_bounded_and_drains(kafka_bootstrap, model_path, tmp_path):
    ctx = Context(bootstrap=kafka_bootstrap, workdir=tmp_path, model=model_path)
    result = overload.run(ctx, **overload.SHORT)
    print(result.row(), dict(result.figures))
    assert result.ok, result.result
    assert result.figures["pauses"] >= 1
    assert result.figures["rebalances_during_burst"] == 0
