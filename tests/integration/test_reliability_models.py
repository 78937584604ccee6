"""Reliability campaign, short version: bad model artefacts in the registry and on the models
topic of a real ``streamvae run``, and a diverging retrain (``benchmarks/chaos/model_faults.py``
holds the kinds and the oracle)."""

from __future__ import annotations

import pytest

from benchmarks.chaos import model_faults
from benchmarks.chaos.common import Context

pytestmark = pytest.mark.slow


def test_corrupt_truncated_and_pickled_models_are_refused_and_the_scores_stay_the_same(
    kafka_bootstrap, model_path, tmp_path
):
    ctx = Context(bootstrap=kafka_bootstrap, workdir=tmp_path, model=model_path)
    result = model_faults.run(ctx, trials=len(model_faults.KINDS), kinds=list(model_faults.KINDS))
    print(result.row())
    assert result.ok, result.figures["problems"]
    assert not (tmp_path / "PICKLE-RAN").exists()  # nothing was unpickled


def test_a_valid_model_for_other_channels_on_the_models_topic_is_refused_not_fatal(
    kafka_bootstrap, model_path, tmp_path
):
    ctx = Context(bootstrap=kafka_bootstrap, workdir=tmp_path, model=model_path)
    result = model_faults.run_topic(ctx, trials=1, kinds=["foreign"])
    print(result.row())
    assert result.ok, result.figures["problems"]
