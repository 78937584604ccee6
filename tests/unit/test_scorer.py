import numpy as np
import pytest
import torch

from streamvae import InputError, RecurrentVAE, Scorer, ScoringConfig, VAEConfig


@pytest.fixture(params=["lstm", "gru"])
def model(request) -> RecurrentVAE:
    return RecurrentVAE(VAEConfig(channels=("a", "b", "c"), window=10, cell=request.param))


@pytest.fixture
def windows() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(203, 10, 3)).astype(np.float32)


@pytest.mark.parametrize("samples", [1, 4])
def test_score_is_bit_identical_whatever_the_batch_composition(model, windows, samples):
    scorer = Scorer(model, ScoringConfig(samples=samples, seed=3))
    whole = scorer.score_many(windows)
    singles = np.concatenate([scorer.score_many(windows[i : i + 1]).scores for i in range(30)])
    assert np.array_equal(singles, whole.scores[:30])
    order = np.random.default_rng(1).permutation(len(windows))
    for size in (3, 17, 64, 100):
        parts = [scorer.score_many(windows[order[i : i + size]]) for i in range(0, 203, size)]
        shuffled = np.concatenate([p.scores for p in parts])
        contributions = np.concatenate([p.contributions for p in parts])
        assert np.array_equal(shuffled, whole.scores[order])
        assert np.array_equal(contributions, whole.contributions[order])


def test_score_is_bit_identical_across_torch_thread_counts(model, windows):
    scorer = Scorer(model, ScoringConfig(samples=2))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = scorer.score_many(windows).scores
        torch.set_num_threads(2)
        two = scorer.score_many(windows).scores
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(one, two)


def test_a_new_scorer_with_the_same_seed_reproduces_sampled_scores(model, windows):
    a = Scorer(model, ScoringConfig(samples=5, seed=9)).score_many(windows)
    b = Scorer(model, ScoringConfig(samples=5, seed=9)).score_many(windows)
    assert np.array_equal(a.scores, b.scores)


def test_single_sample_scoring_uses_the_posterior_mean_not_noise(model, windows):
    a = Scorer(model, ScoringConfig(samples=1, seed=1)).score_many(windows)
    b = Scorer(model, ScoringConfig(samples=1, seed=2)).score_many(windows)
    assert np.array_equal(a.scores, b.scores)


def test_score_is_the_mean_of_the_per_channel_nll(model, windows):
    batch = Scorer(model).score_many(windows)
    assert np.allclose(batch.scores, batch.channel_nll.mean(axis=1))


def test_contributions_are_shares_that_sum_to_one(model, windows):
    batch = Scorer(model).score_many(windows)
    assert (batch.contributions >= 0).all()
    assert np.allclose(batch.contributions.sum(axis=1), 1.0)


def test_an_empty_batch_gives_empty_scores(model):
    batch = Scorer(model).score_many(np.zeros((0, 10, 3), dtype=np.float32))
    assert len(batch) == 0
    assert batch.contributions.shape == (0, 3)


def test_wrong_shape_is_rejected_with_the_expected_shape(model):
    with pytest.raises(InputError, match=r"\(N, 10, 3\)"):
        Scorer(model).score_many(np.zeros((4, 10, 2)))


def test_non_finite_windows_are_rejected_and_counted(model, windows):
    windows[[2, 5], 0, 0] = np.inf
    with pytest.raises(InputError, match="2 window"):
        Scorer(model).score_many(windows)


def test_score_one_returns_contributions_by_channel_name(model, windows):
    score, contributions = Scorer(model).score_one(windows[0])
    assert isinstance(score, float)
    assert set(contributions) == {"a", "b", "c"}


def test_scoring_leaves_a_training_model_in_training_mode(model, windows):
    model.train()
    Scorer(model).score_many(windows[:2])
    assert model.training
