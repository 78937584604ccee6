"""The recurrent VAE, its loss and its scorer."""

from streamvae.model.loss import LossParts, elbo_loss, gaussian_nll, kl_to_standard_normal
from streamvae.model.scorer import ScoreBatch, Scorer
from streamvae.model.vae import RecurrentVAE, VAEOutput

__all__ = [
    "LossParts",
    "RecurrentVAE",
    "ScoreBatch",
    "Scorer",
    "VAEOutput",
    "elbo_loss",
    "gaussian_nll",
    "kl_to_standard_normal",
]
