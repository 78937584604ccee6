"""Batched, deterministic window scoring.

The score of a window is its negative log-likelihood under the decoder's Gaussians (the
"reconstruction probability" of An & Cho 2015), averaged over L posterior samples, expressed
per value: nats divided by T×C, so thresholds read the same whatever the window size.

Determinism is a product requirement, not a nicety: a replay after a crash must reproduce
the same decisions and so the same alert ids. Two things could break it and both are handled:
sampling noise is drawn once from a seeded generator and shared by every window (common
random numbers), and batches are padded to a fixed row multiple so the CPU kernels never
switch code path with the batch size (see :class:`streamvae.config.ScoringConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from streamvae.config import ScoringConfig
from streamvae.errors import InputError
from streamvae.model.loss import gaussian_nll
from streamvae.model.vae import RecurrentVAE

__all__ = ["ScoreBatch", "Scorer"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ScoreBatch:
    """Scores of N windows.

    ``scores[i]`` is window i's mean NLL per value (nats). ``channel_nll[i, c]`` is channel c's
    mean NLL per value in that window (nats); ``scores`` is their mean over channels.
    ``contributions[i, c]`` is channel c's share of the window's *excess* NLL — how far each
    channel sits above its typical (median) level on the training data — normalised to sum
    to 1; a window with no excess anywhere gets equal shares. Excess rather than raw NLL
    because raw per-channel NLL can be negative and differs in level between channels.

    Example:
        >>> import numpy as np
        >>> batch = ScoreBatch(np.array([2.0]), np.array([[3.0, 1.0]]),
        ...                    np.array([[0.75, 0.25]]), ("vib", "temp"))
        >>> batch.top_channel(0)
        'vib'
    """

    scores: FloatArray  # (N,)
    channel_nll: FloatArray  # (N, C)
    contributions: FloatArray  # (N, C)
    channels: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def top_channel(self, i: int) -> str:
        """Name of the channel with the largest contribution to window ``i``."""
        return self.channels[int(np.argmax(self.contributions[i]))]

    def contributions_dict(self, i: int) -> dict[str, float]:
        """Window ``i``'s contributions by channel name, largest first."""
        pairs = zip(self.channels, self.contributions[i].tolist(), strict=True)
        return dict(sorted(pairs, key=lambda kv: -kv[1]))


class Scorer:
    """Scores windows with a trained :class:`RecurrentVAE`, many at a time.

    Example:
        >>> import numpy as np
        >>> from streamvae.config import VAEConfig
        >>> model = RecurrentVAE(VAEConfig(channels=("a", "b"), window=8))
        >>> scorer = Scorer(model, ScoringConfig(samples=4))
        >>> batch = scorer.score_many(np.zeros((3, 8, 2), dtype=np.float32))
        >>> batch.scores.shape, batch.contributions.shape
        ((3,), (3, 2))
    """

    def __init__(self, model: RecurrentVAE, config: ScoringConfig | None = None) -> None:
        self.model = model
        self.config = config or ScoringConfig()
        latent = model.config.latent_dim
        if self.config.samples > 1:
            generator = torch.Generator().manual_seed(self.config.seed)
            self._noise: torch.Tensor | None = torch.randn(
                self.config.samples, latent, generator=generator
            )  # (L, Z), shared by every window
        else:
            self._noise = None

    def _validate(self, windows: npt.ArrayLike) -> torch.Tensor:
        cfg = self.model.config
        arr = np.asarray(windows)
        expected = f"(N, {cfg.window}, {cfg.n_channels}) = (windows, steps, channels)"
        if arr.ndim != 3 or arr.shape[1] != cfg.window or arr.shape[2] != cfg.n_channels:
            raise InputError(f"windows must have shape {expected}, got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"windows must be numeric, got dtype {arr.dtype}")
        arr32 = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr32).all():
            bad = int((~np.isfinite(arr32)).any(axis=(1, 2)).sum())
            raise InputError(
                f"{bad} window(s) contain NaN or infinite values (after conversion to float32); "
                "fill or drop them before scoring"
            )
        return torch.from_numpy(arr32)

    def score_many(self, windows: npt.ArrayLike) -> ScoreBatch:
        """Score a batch of windows shaped (N, T, C), already scaled like the training data."""
        return self._score(self._validate(windows))

    def score_valid(self, windows: npt.NDArray[np.float32]) -> ScoreBatch:
        """:meth:`score_many` for callers that already hold a C-contiguous, finite float32
        array of the right shape (the Detector checks every window itself, to drop the bad
        ones rather than fail the batch): skips the second pass over the data."""
        return self._score(torch.from_numpy(windows))

    def _score(self, x: torch.Tensor) -> ScoreBatch:
        n = x.shape[0]
        cfg = self.model.config
        if n == 0:
            empty = np.zeros((0, cfg.n_channels))
            return ScoreBatch(np.zeros(0), empty, empty.copy(), cfg.channels)
        pad = (-n) % self.config.pad_multiple
        if pad:
            x = torch.cat([x, x.new_zeros(pad, cfg.window, cfg.n_channels)])  # (N+pad, T, C)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                channel_nll = self._channel_nll(x)[:n]  # (N, C)
                baseline = self.model.channel_nll_baseline  # (C,)
        finally:
            self.model.train(was_training)
        per_channel = channel_nll.double().numpy()  # (N, C)
        excess = np.clip(per_channel - baseline.double().numpy(), 0.0, None)  # (N, C)
        total = excess.sum(axis=1, keepdims=True)  # (N, 1)
        uniform = np.full_like(excess, 1.0 / cfg.n_channels)
        shares = np.divide(excess, total, out=uniform, where=total > 0)
        return ScoreBatch(per_channel.mean(axis=1), per_channel, shares, cfg.channels)

    def _channel_nll(self, x: torch.Tensor) -> torch.Tensor:
        """Mean NLL per value for each window and channel, (B, C), averaged over samples."""
        z_mean, z_logvar = self.model.encode(x)  # (B, Z) each
        if self._noise is None:
            mean, logvar = self.model.decode(z_mean)  # (B, T, C) each
            return gaussian_nll(x, mean, logvar).mean(dim=1)  # (B, C)
        z_std = torch.exp(0.5 * z_logvar)  # (B, Z)
        total = torch.zeros(x.shape[0], x.shape[2])  # (B, C)
        for eps in self._noise:  # eps: (Z,)
            mean, logvar = self.model.decode(z_mean + z_std * eps)
            total += gaussian_nll(x, mean, logvar).mean(dim=1)
        return total / self._noise.shape[0]

    def score_one(self, window: npt.ArrayLike) -> tuple[float, dict[str, float]]:
        """Score a single (T, C) window; returns the score and the channel contributions."""
        arr = np.asarray(window)
        if arr.ndim != 2:
            raise InputError(f"a single window must be 2-D (steps, channels), got {arr.shape}")
        batch = self.score_many(arr[None])
        return float(batch.scores[0]), batch.contributions_dict(0)
