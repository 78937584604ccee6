"""The crash scenario of the reliability campaign, short: SIGKILLs at seeded random points of
a real ``streamvae run`` lose no alert, and a replayed alert is byte-identical to the first.
The full campaign (``benchmarks/reliability.py``) runs 20 kills."""

from __future__ import annotations

import pytest

from benchmarks.chaos import crash
from benchmarks.chaos.common import Context

pytestmark = pytest.mark.slow


def test_sigkills_at_random_points_lose_no_alert_and_replays_are_identical(
    kafka_bootstrap, model_path, tmp_path
):
    ctx = Context(bootstrap=kafka_bootstrap, workdir=tmp_path, seed=7, model=model_path)
    result = crash.run(ctx, **crash.SHORT)
    print(result.row(), dict(result.figures))
    assert result.ok, result.result
