"""The network scenario of the reliability campaign, short: delay, dropped connections and a
cut of a few seconds between ``streamvae run`` and its broker (through the chaos proxy, the
broker advertising the proxy's port). Liveness holds, readiness reflects the cut, nothing is
lost. The full campaign cuts for 30 s."""

from __future__ import annotations

import pytest

from benchmarks.chaos import network
from benchmarks.chaos.common import Context

pytestmark = pytest.mark.slow


def test_a_cut_keeps_liveness_fails_readiness_and_loses_nothing_after_recovery(
    kafka_bootstrap, model_path, tmp_path
):
    ctx = Context(bootstrap=kafka_bootstrap, workdir=tmp_path, model=model_path)
    result = network.run(ctx, **network.SHORT)
    print(result.row(), dict(result.figures))
    assert result.ok, result.result
    assert result.figures["readyz_503_samples_during_cut"] >= 1
    assert result.figures["healthz_non_200_samples_during_cut"] == 0
