"""The trained default model against every anomaly type of the synthetic plant.

One model (the default config) is trained once on 20 clean days; each fault kind gets its own
test series with 10 faults rotating over the channels. Targets from the foundation issue:
ROC AUC >= 0.95 per kind, and the faulted channel named as top contributor in >= 90 % of faults.
"""

import pytest

from streamvae import Scorer, sliding_windows
from streamvae.testing import FAULT_KINDS, evaluate_detection, fault_suite

from .conftest import TRAIN_STEPS


@pytest.fixture(scope="module")
def results(trained):
    scorer = Scorer(trained.model)
    out = {}
    for kind in FAULT_KINDS:
        series = fault_suite(trained.plant, kind, start_step=TRAIN_STEPS)
        windows = sliding_windows(trained.scaler.transform(series.values), 32, 1)
        out[kind] = evaluate_detection(scorer.score_many(windows), series, 32)
    return out


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_anomalous_windows_score_above_normal_windows(results, kind):
    result = results[kind]
    assert result.auc >= 0.95, result


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_top_contributing_channel_is_the_faulted_one(results, kind):
    result = results[kind]
    assert result.n_faults == 10
    assert result.top_channel_accuracy >= 0.9, result


def test_clean_training_reaches_a_settled_best_epoch(trained):
    assert trained.report.best_epoch > trained.report.epochs_run // 2
