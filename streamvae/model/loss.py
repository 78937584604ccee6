"""The ELBO as free functions: Gaussian NLL + β·KL with free bits.

Kept apart from the module so the scorer and the trainer share exactly the same NLL.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from streamvae.model.vae import VAEOutput

__all__ = ["LossParts", "elbo_loss", "gaussian_nll", "kl_to_standard_normal"]

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """Elementwise −log N(x; mean, exp(logvar)) in nats, same shape as ``x``."""
    return 0.5 * (_LOG_2PI + logvar + (x - mean).square() * torch.exp(-logvar))


def kl_to_standard_normal(z_mean: Tensor, z_logvar: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per latent dimension in nats, shape (B, Z)."""
    return 0.5 * (z_mean.square() + torch.exp(z_logvar) - 1.0 - z_logvar)


class LossParts(NamedTuple):
    total: Tensor  # scalar, what the optimiser minimises
    nll: Tensor  # scalar, mean over the batch of the window NLL (nats per window)
    kl: Tensor  # scalar, mean over the batch of the KL (nats per window), before free bits


def elbo_loss(x: Tensor, out: VAEOutput, beta: float, free_bits: float) -> LossParts:
    """Negative ELBO per window: NLL summed over (T, C) plus β times the KL.

    Free bits: each latent dimension is charged at least ``free_bits`` nats (its batch-mean KL
    is clamped from below), so the optimiser gains nothing by collapsing it entirely.
    """
    nll = gaussian_nll(x, out.mean, out.logvar).sum(dim=(1, 2)).mean()  # scalar
    kl_dims = kl_to_standard_normal(out.z_mean, out.z_logvar).mean(dim=0)  # (Z,)
    kl_charged = torch.clamp(kl_dims, min=free_bits).sum() if free_bits > 0 else kl_dims.sum()
    return LossParts(nll + beta * kl_charged, nll, kl_dims.sum())
