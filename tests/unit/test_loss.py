import math

import torch

from streamvae import elbo_loss, gaussian_nll
from streamvae.model import VAEOutput, kl_to_standard_normal


def test_gaussian_nll_equals_torch_normal_log_prob():
    x, mean, logvar = torch.randn(3, 5, 2), torch.randn(3, 5, 2), torch.randn(3, 5, 2)
    expected = -torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x)
    assert torch.allclose(gaussian_nll(x, mean, logvar), expected, atol=1e-5)


def test_kl_is_zero_for_the_standard_normal_and_positive_elsewhere():
    zero = kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3))
    assert torch.equal(zero, torch.zeros(2, 3))
    assert (kl_to_standard_normal(torch.ones(2, 3), torch.zeros(2, 3)) > 0).all()


def _output(z_mean: torch.Tensor) -> VAEOutput:
    x = torch.zeros(4, 6, 2)
    return VAEOutput(x, torch.zeros_like(x), z_mean, torch.zeros_like(z_mean))


def test_free_bits_charge_each_latent_dimension_at_least_the_floor():
    out = _output(torch.zeros(4, 3))  # KL exactly 0 in every dimension
    parts = elbo_loss(torch.zeros(4, 6, 2), out, beta=1.0, free_bits=0.5)
    assert parts.kl.item() == 0.0
    assert parts.total.item() == parts.nll.item() + 3 * 0.5


def test_beta_scales_the_kl_term():
    out = _output(torch.ones(4, 3))  # KL 0.5 per dimension
    x = torch.zeros(4, 6, 2)
    low = elbo_loss(x, out, beta=0.0, free_bits=0.0)
    high = elbo_loss(x, out, beta=2.0, free_bits=0.0)
    assert math.isclose(high.total.item() - low.total.item(), 2.0 * 1.5, rel_tol=1e-6)
