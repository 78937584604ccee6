import pytest
import torch

from streamvae import RecurrentVAE, VAEConfig


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("decoder", ["mlp", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_forward_gives_per_step_per_channel_gaussians_and_a_latent_posterior(cell, decoder, layers):
    cfg = VAEConfig(
        channels=("a", "b", "c"),
        window=12,
        cell=cell,
        decoder=decoder,
        num_layers=layers,
        hidden_size=16,
        latent_dim=5,
    )
    out = RecurrentVAE(cfg)(torch.randn(7, 12, 3), noise=torch.randn(7, 5))
    assert out.mean.shape == out.logvar.shape == (7, 12, 3)
    assert out.z_mean.shape == out.z_logvar.shape == (7, 5)


def test_reconstruction_log_variance_stays_within_the_configured_bounds():
    cfg = VAEConfig(channels=("a",), window=8, min_logvar=-2.0, max_logvar=1.0)
    out = RecurrentVAE(cfg)(torch.randn(16, 8, 1) * 1e3)
    assert out.logvar.min() >= -2.0
    assert out.logvar.max() <= 1.0


def test_same_config_gives_identical_initial_weights_without_touching_global_rng():
    cfg = VAEConfig(channels=("a", "b"), window=8, seed=11)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = RecurrentVAE(cfg)
    after = torch.rand(1)
    b = RecurrentVAE(cfg)
    assert torch.equal(before, after)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


def test_different_seeds_give_different_weights():
    a = RecurrentVAE(VAEConfig(channels=("a",), window=8, seed=1))
    b = RecurrentVAE(VAEConfig(channels=("a",), window=8, seed=2))
    assert not torch.equal(a.to_z.weight, b.to_z.weight)
