"""The recurrent-encoder variational autoencoder.

One legible file. Shapes in comments: B batch, T window steps, C channels, H hidden size,
Z latent size. The decoder outputs a Gaussian per step and per channel (mean and log-variance),
so the model states how sure it is of each value; the anomaly score is the negative
log-likelihood of the window under that Gaussian (see :mod:`streamvae.model.scorer`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from streamvae.config import VAEConfig

__all__ = ["RecurrentVAE", "VAEOutput"]


class VAEOutput(NamedTuple):
    mean: Tensor  # (B, T, C) reconstruction mean
    logvar: Tensor  # (B, T, C) reconstruction log-variance
    z_mean: Tensor  # (B, Z) posterior mean
    z_logvar: Tensor  # (B, Z) posterior log-variance


def _rnn(cell: str, input_size: int, hidden_size: int, num_layers: int) -> nn.RNNBase:
    cls = nn.LSTM if cell == "lstm" else nn.GRU
    return cls(input_size, hidden_size, num_layers=num_layers, batch_first=True)


class RecurrentVAE(nn.Module):
    """Recurrent encoder q(z|x) and a decoder p(x|z) with per-step, per-channel Gaussians.

    Encoder: an LSTM or GRU reads the window; its last hidden state gives μ and log σ² of z.
    Decoder (``rnn``): z sets the initial hidden state and is fed at every step to a second
    recurrent layer whose outputs give the mean and log-variance of every value. Decoder
    (``mlp``): one hidden layer maps z to all T×C means and log-variances at once (faster, but
    smoother reconstructions).

    ``channel_nll_baseline`` is a buffer set by :func:`streamvae.fit` to each channel's median
    NLL on the training windows; scores use it to say which channel drove an anomaly.

    Example:
        >>> import torch
        >>> model = RecurrentVAE(VAEConfig(channels=("a", "b"), window=16))
        >>> out = model(torch.zeros(4, 16, 2))
        >>> tuple(out.mean.shape), tuple(out.z_mean.shape)
        ((4, 16, 2), (4, 8))
    """

    channel_nll_baseline: Tensor

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c, h, z = config.n_channels, config.hidden_size, config.latent_dim
        layers = config.num_layers
        # Seeded init without touching the caller's global RNG: same config, same weights.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.encoder = _rnn(config.cell, c, h, layers)
            self.to_z = nn.Linear(h, 2 * z)
            if config.decoder == "rnn":
                n_states = 2 if config.cell == "lstm" else 1
                self.z_to_state = nn.Linear(z, n_states * layers * h)
                self.decoder_rnn: nn.RNNBase | None = _rnn(config.cell, z, h, layers)
                self.to_x = nn.Linear(h, 2 * c)
                self.decoder_mlp: nn.Sequential | None = None
            else:
                self.decoder_rnn = None
                self.decoder_mlp = nn.Sequential(
                    nn.Linear(z, 2 * h), nn.Tanh(), nn.Linear(2 * h, config.window * 2 * c)
                )
        self.register_buffer("channel_nll_baseline", torch.zeros(c))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Window (B, T, C) → posterior mean and log-variance, each (B, Z)."""
        out, _ = self.encoder(x)  # (B, T, H)
        stats = self.to_z(out[:, -1])  # (B, 2Z)
        z_mean, z_logvar = stats.chunk(2, dim=-1)  # (B, Z) each
        return z_mean, z_logvar.clamp(-12.0, 8.0)

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latent (B, Z) → reconstruction mean and log-variance, each (B, T, C)."""
        cfg = self.config
        b = z.shape[0]
        if self.decoder_rnn is not None:
            layers, h = cfg.num_layers, cfg.hidden_size
            state = torch.tanh(self.z_to_state(z))  # (B, S*L*H)
            state = state.view(b, -1, layers, h).permute(1, 2, 0, 3).contiguous()  # (S, L, B, H)
            hx: Tensor | tuple[Tensor, Tensor] = (
                (state[0], state[1]) if cfg.cell == "lstm" else state[0]
            )
            steps = z.unsqueeze(1).expand(b, cfg.window, cfg.latent_dim)  # (B, T, Z)
            out, _ = self.decoder_rnn(steps, hx)  # (B, T, H)
            stats = self.to_x(out)  # (B, T, 2C)
        else:
            assert self.decoder_mlp is not None
            stats = self.decoder_mlp(z).view(b, cfg.window, 2 * cfg.n_channels)  # (B, T, 2C)
        mean, raw_logvar = stats.chunk(2, dim=-1)  # (B, T, C) each
        # A soft floor and ceiling: gradients never vanish at the bounds, variance never
        # reaches 0 (an infinite score) or explodes.
        lo, hi = cfg.min_logvar, cfg.max_logvar
        logvar = lo + (hi - lo) * torch.sigmoid(raw_logvar)
        return mean, logvar

    def forward(self, x: Tensor, noise: Tensor | None = None) -> VAEOutput:
        """Encode, sample z = μ + σ·noise (μ alone when ``noise`` is None), decode."""
        z_mean, z_logvar = self.encode(x)
        z = z_mean if noise is None else z_mean + torch.exp(0.5 * z_logvar) * noise
        mean, logvar = self.decode(z)
        return VAEOutput(mean, logvar, z_mean, z_logvar)
