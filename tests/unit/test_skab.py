"""SKAB scoring: pooled outlier metrics and the NAB-style changepoint score, on hand-made cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from streamvae.errors import InputError
from streamvae.skab import (
    LOW_FN,
    LOW_FP,
    PROFILES,
    STANDARD,
    NabFile,
    NabProfile,
    OutlierScores,
    nab_file,
    nab_normalised,
    outlier_counts,
    pool,
    predicted_changepoints,
    true_changepoints,
)

# ---------------------------------------------------------------------------- outlier task


def test_perfect_prediction_has_f1_one_far_zero_mar_zero():
    labels = np.array([0, 0, 1, 1, 0, 1, 0])
    s = outlier_counts(labels, labels)
    assert (s.tp, s.fp, s.fn, s.tn) == (3, 0, 0, 4)
    assert (s.f1, s.far, s.mar) == (1.0, 0.0, 0.0)


def test_counts_each_cell_of_the_confusion_matrix():
    s = outlier_counts([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    assert s == OutlierScores(tp=2, fp=1, fn=1, tn=1)
    assert s.f1 == pytest.approx(2 / (2 + (1 + 1) / 2))
    assert s.far == pytest.approx(50.0)
    assert s.mar == pytest.approx(100 / 3)


def test_all_ones_prediction_scores_two_p_over_one_plus_p():
    # 3 anomalous rows of 5: TP 3, FP 2, FN 0 -> F1 = 3 / (3 + 1) = 2p / (1 + p), p = 0.6
    s = outlier_counts([1, 1, 1, 0, 0], np.ones(5, dtype=int))
    assert s.f1 == pytest.approx(0.75)
    assert s.far == 100.0
    assert s.mar == 0.0


def test_all_ones_on_the_protocols_label_mix_gives_f1_0_698():
    # PROTOCOL.md: ~54 % of SKAB's test rows are anomalous (53.66 % exactly), and alarming on
    # every row scores F1 0.698 at FAR 100 %.
    labels = np.zeros(10_000, dtype=int)
    labels[:5366] = 1
    s = outlier_counts(labels, np.ones_like(labels))
    assert s.f1 == pytest.approx(0.698, abs=5e-4)
    assert s.far == 100.0


def test_accepts_booleans():
    s = outlier_counts(np.array([True, False]), np.array([True, True]))
    assert s == OutlierScores(1, 1, 0, 0)


def test_pooling_sums_confusion_matrices_rather_than_averaging_f1():
    short = outlier_counts([1], [1])  # F1 1.0
    long = outlier_counts([1] * 9, [0] * 9)  # F1 0.0
    pooled = pool([short, long])
    assert pooled == OutlierScores(tp=1, fp=0, fn=9, tn=0)
    assert pooled.f1 == pytest.approx(1 / (1 + 9 / 2))  # not (1.0 + 0.0) / 2
    assert pooled.mar == pytest.approx(90.0)


def test_pool_of_nothing_is_the_zero_matrix():
    assert pool([]) == OutlierScores(0, 0, 0, 0)


def test_metrics_with_a_zero_denominator_are_none():
    s = OutlierScores(tp=0, fp=0, fn=0, tn=5)
    assert (s.f1, s.mar) == (None, None)
    assert s.far == 0.0
    assert OutlierScores(tp=2, fp=0, fn=0, tn=0).far is None


def test_outlier_counts_refuses_a_length_mismatch():
    with pytest.raises(InputError, match="rows"):
        outlier_counts([0, 1, 1], [0, 1])


@pytest.mark.parametrize("bad", [[0, 2], [0.0, 0.5], [0.0, np.nan], ["0", "1"]])
def test_outlier_counts_refuses_non_binary_values(bad):
    with pytest.raises(InputError, match="0/1"):
        outlier_counts(bad, [0, 1])


def test_outlier_counts_refuses_two_dimensional_input():
    with pytest.raises(InputError, match="1-D"):
        outlier_counts([[0, 1]], [[0, 1]])


def test_outlier_scores_refuse_negative_or_non_integer_counts():
    with pytest.raises(InputError, match="non-negative integer"):
        OutlierScores(tp=-1, fp=0, fn=0, tn=0)
    with pytest.raises(InputError, match="non-negative integer"):
        OutlierScores(tp=1.5, fp=0, fn=0, tn=0)  # type: ignore[arg-type]


# --------------------------------------------------------------------- changepoint edges


def test_rising_and_falling_edges_are_changepoints_at_the_new_values_first_row():
    cps = predicted_changepoints([0, 1, 1, 0, 0, 1], [10, 11, 12, 13, 14, 15])
    assert cps.tolist() == [11, 13, 15]


def test_first_row_is_an_edge_when_its_prediction_is_one():
    assert predicted_changepoints([1, 1, 0], [0.0, 1.0, 2.0]).tolist() == [0.0, 2.0]
    assert predicted_changepoints([1, 1, 1], [0.0, 1.0, 2.0]).tolist() == [0.0]


def test_no_alarm_has_no_changepoints():
    assert predicted_changepoints([0, 0, 0], [0.0, 1.0, 2.0]).size == 0
    assert predicted_changepoints([], []).size == 0


def test_changepoints_keep_the_datetime_timestamps():
    ts = np.array(["2020-03-09T10:14:33", "2020-03-09T10:14:34", "2020-03-09T10:14:36"], "M8[s]")
    cps = predicted_changepoints([0, 1, 1], ts)
    assert cps.dtype == ts.dtype
    assert cps.tolist() == [ts[1].item()]


def test_true_changepoints_are_the_rows_marked_one():
    assert true_changepoints([0, 1, 0, 0, 1], [0.0, 1.0, 2.0, 3.0, 4.0]).tolist() == [1.0, 4.0]


def test_edges_refuse_a_length_mismatch():
    with pytest.raises(InputError, match="rows"):
        predicted_changepoints([0, 1], [0.0, 1.0, 2.0])


def test_edges_refuse_non_binary_predictions():
    with pytest.raises(InputError, match="binary"):
        predicted_changepoints([0, 3], [0.0, 1.0])


def test_edges_refuse_timestamps_out_of_order():
    with pytest.raises(InputError, match="strictly increasing"):
        true_changepoints([0, 1, 0], [0.0, 2.0, 2.0])


def test_edges_refuse_text_timestamps():
    with pytest.raises(InputError, match="datetime64"):
        predicted_changepoints([0, 1], ["2020-03-09 10:14:33", "2020-03-09 10:14:34"])


# ---------------------------------------------------------------------------- NAB reward


def test_hit_at_the_left_edge_scores_a_tp_exactly():
    f = nab_file([100.0], [100.0], STANDARD)
    assert (f.score, f.hits, f.misses, f.false_positives) == (1.0, 1, 0, 0)


def test_hit_at_the_right_edge_scores_a_fp_exactly():
    f = nab_file([100.0], [160.0], STANDARD)
    assert (f.score, f.hits, f.false_positives) == (-0.11, 1, 0)


def test_reward_falls_strictly_between_the_edges():
    rewards = [nab_file([0.0], [t], STANDARD).score for t in np.linspace(0.0, 60.0, 61)]
    assert all(a > b for a, b in itertools.pairwise(rewards))
    assert rewards[0] == 1.0
    assert rewards[-1] == -0.11


def test_reward_is_symmetric_about_the_window_middle():
    assert STANDARD.reward(0.5) == pytest.approx((1.0 - 0.11) / 2)
    early, late = STANDARD.reward(0.2), STANDARD.reward(0.8)
    assert early - STANDARD.reward(0.5) == pytest.approx(STANDARD.reward(0.5) - late)


def test_window_length_is_a_parameter():
    assert nab_file([0.0], [30.0], STANDARD, window_s=30.0).score == -0.11
    assert nab_file([0.0], [30.0], STANDARD, window_s=120.0).score == STANDARD.reward(0.25)


def test_datetime_timestamps_score_like_seconds():
    cp = np.array(["2020-03-09T10:24:33"], dtype="M8[s]")
    assert nab_file(cp, cp + np.timedelta64(60, "s"), STANDARD).score == -0.11
    assert nab_file(cp, cp + np.timedelta64(15, "s"), STANDARD).score == STANDARD.reward(0.25)


# ------------------------------------------------------------------------- NAB counting


def test_only_the_first_prediction_in_a_window_counts():
    f = nab_file([0.0], [10.0, 20.0, 59.0], STANDARD)
    assert (f.hits, f.false_positives) == (1, 0)
    assert f.score == STANDARD.reward(10.0 / 60.0)


def test_predictions_outside_every_window_are_false_positives():
    f = nab_file([100.0], [50.0, 161.0, 500.0], STANDARD)
    assert (f.hits, f.misses, f.false_positives) == (0, 1, 3)
    assert f.score == pytest.approx(3 * -0.11 - 1.0)


def test_a_window_without_a_prediction_is_a_miss():
    f = nab_file([0.0, 1000.0], [5.0], STANDARD)
    assert (f.hits, f.misses, f.windows) == (1, 1, 2)
    assert f.score == pytest.approx(STANDARD.reward(5 / 60) - 1.0)


def test_no_predictions_misses_every_window():
    f = nab_file([0.0, 100.0, 400.0], [], STANDARD)
    assert (f.hits, f.misses, f.false_positives, f.score) == (0, 3, 0, -3.0)


def test_an_overlapping_window_is_cut_where_the_next_one_starts():
    # windows [0, 60] and [30, 90] overlap: the first is cut to [0, 30); 40 s belongs to the
    # second (10 s after its changepoint), so the first is missed.
    f = nab_file([0.0, 30.0], [40.0], STANDARD)
    assert (f.hits, f.misses, f.false_positives) == (1, 1, 0)
    assert f.score == pytest.approx(STANDARD.reward(10 / 60) - 1.0)


def test_a_cut_window_keeps_the_nominal_reward_scale():
    # 10 s into the cut window [0, 30) earns what 10 s into a full window earns
    f = nab_file([0.0, 30.0], [10.0, 40.0], STANDARD)
    assert (f.hits, f.misses) == (2, 0)
    assert f.score == pytest.approx(2 * STANDARD.reward(10 / 60))


def test_the_instant_two_touching_windows_share_belongs_to_the_later():
    f = nab_file([0.0, 60.0], [60.0], STANDARD)
    assert (f.hits, f.misses, f.false_positives) == (1, 1, 0)
    assert f.score == pytest.approx(1.0 - 1.0)  # left edge of the second, first missed


def test_a_gap_between_windows_is_outside_every_window():
    f = nab_file([0.0, 100.0], [70.0], STANDARD)
    assert (f.hits, f.misses, f.false_positives) == (0, 2, 1)


def test_order_of_changepoints_does_not_matter():
    a = nab_file([0.0, 300.0], [310.0, 5.0, 200.0], STANDARD)
    b = nab_file([300.0, 0.0], [5.0, 200.0, 310.0], STANDARD)
    assert a == b


# ------------------------------------------------------------------------------ profiles


def test_the_three_published_profiles():
    assert [(p.a_tp, p.a_fp, p.a_fn) for p in PROFILES] == [
        (1.0, -0.11, -1.0),
        (1.0, -0.22, -1.0),
        (1.0, -0.11, -2.0),
    ]
    assert PROFILES == (STANDARD, LOW_FP, LOW_FN)


def test_profiles_weigh_false_positives_and_misses_differently():
    # one hit at the left edge, one false positive, one missed window
    def score(profile):
        return nab_file([0.0, 1000.0], [0.0, 500.0], profile).score

    assert score(STANDARD) == pytest.approx(1 - 0.11 - 1)
    assert score(LOW_FP) == pytest.approx(1 - 0.22 - 1)
    assert score(LOW_FN) == pytest.approx(1 - 0.11 - 2)


def test_the_right_edge_reward_follows_the_profiles_a_fp():
    assert nab_file([0.0], [60.0], LOW_FP).score == -0.22


@pytest.mark.parametrize(
    "weights", [(0.0, -0.11, -1.0), (1.0, 0.1, -1.0), (1.0, -0.11, 1.0), (1.0, float("nan"), -1.0)]
)
def test_a_profile_refuses_weights_that_do_not_reward_hits_and_cost_errors(weights):
    with pytest.raises(InputError, match="NabProfile"):
        NabProfile("bad", *weights)


def test_reward_refuses_a_position_outside_the_window():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        STANDARD.reward(1.5)


# -------------------------------------------------------------------------- normalisation


def test_normalised_score_is_100_for_a_perfect_detector():
    files = [nab_file([0.0, 300.0], [0.0, 300.0], STANDARD), nab_file([50.0], [50.0], STANDARD)]
    assert nab_normalised(files, STANDARD) == 100.0


def test_normalised_score_is_0_without_predictions():
    for profile in PROFILES:
        files = [nab_file([0.0, 300.0], [], profile), nab_file([50.0], [], profile)]
        assert nab_normalised(files, profile) == 0.0


def test_normalised_score_of_a_hand_computed_mixed_case():
    # file A: hit at 0 (+1), 150 outside (-0.11), hit at 360 = right edge of 300 (-0.11)
    # file B: one window missed (-1).  S = -0.22; 3 windows: S_null = -3, S_perfect = 3
    a = nab_file([0.0, 300.0], [0.0, 30.0, 150.0, 360.0], STANDARD)
    b = nab_file([1000.0], [], STANDARD)
    assert a.score == pytest.approx(0.78)
    assert nab_normalised([a, b], STANDARD) == pytest.approx(100 * (-0.22 + 3) / 6)


def test_normalised_score_goes_negative_when_false_positives_outweigh():
    f = nab_file([0.0], [100.0 * i for i in range(1, 20)], STANDARD)
    assert nab_normalised([f], STANDARD) < 0


def test_normalised_score_without_windows_is_undefined():
    with pytest.raises(InputError, match="no detection windows"):
        nab_normalised([nab_file([], [5.0], STANDARD)], STANDARD)
    with pytest.raises(InputError, match="no detection windows"):
        nab_normalised([], STANDARD)


def test_normalisation_refuses_files_scored_with_another_profile():
    with pytest.raises(InputError, match="profile"):
        nab_normalised([nab_file([0.0], [0.0], LOW_FN)], STANDARD)


# ------------------------------------------------------------------------- invalid inputs


def test_nab_file_refuses_duplicate_true_changepoints():
    with pytest.raises(InputError, match="twice"):
        nab_file([10.0, 10.0], [10.0], STANDARD)


def test_nab_file_refuses_mixed_timestamp_kinds():
    cp = np.array(["2020-03-09T10:24:33"], dtype="M8[s]")
    with pytest.raises(InputError, match="mix"):
        nab_file(cp, [1.0], STANDARD)


@pytest.mark.parametrize("window", [0.0, -60.0, float("inf"), True])
def test_nab_file_refuses_a_bad_window(window):
    with pytest.raises(InputError, match="window_s"):
        nab_file([0.0], [0.0], STANDARD, window_s=window)


def test_nab_file_refuses_non_finite_timestamps():
    with pytest.raises(InputError, match="NaN"):
        nab_file([0.0], [np.nan], STANDARD)


def test_nab_file_result_refuses_inconsistent_counts():
    with pytest.raises(InputError, match="hits"):
        NabFile(0.0, hits=1, misses=1, false_positives=0, windows=3, profile=STANDARD)
