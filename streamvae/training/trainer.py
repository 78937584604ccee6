"""Fit a :class:`RecurrentVAE` on windows of normal data — a pure function of its inputs.

No wall clock, no files, no global RNG: the same windows, config and seed give the same
weights, which is what makes a retrain reproducible and a rollback meaningful. Timing and
printing belong to the caller's ``progress`` callback.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from streamvae.config import ScoringConfig, TrainConfig
from streamvae.errors import InputError, NonFiniteLossError, TrainingError
from streamvae.model.loss import elbo_loss
from streamvae.model.scorer import Scorer
from streamvae.model.vae import RecurrentVAE

__all__ = ["EpochReport", "FitReport", "ProgressCallback", "fit"]

MIN_WINDOWS = 8


@dataclass(frozen=True, slots=True)
class EpochReport:
    """What one epoch did, handed to the ``progress`` callback of :func:`fit`.

    Losses are nats per window: ``train_loss`` at the β in force during the epoch,
    ``val_loss`` at the final β so epochs stay comparable while β warms up.

    Example:
        >>> EpochReport(1, 10, 5.0, 4.0, 4.5, 0.5, 0.1, True).epoch
        1
    """

    epoch: int  # 1-based
    epochs: int
    train_loss: float
    val_loss: float
    nll: float
    kl: float
    beta: float
    improved: bool


ProgressCallback = Callable[[EpochReport], None]


@dataclass(frozen=True, slots=True)
class FitReport:
    """Outcome of :func:`fit`; stored in artefact metadata.

    Example:
        >>> FitReport(3, 2, 1.5, True, 80, 20, ()).best_epoch
        2
    """

    epochs_run: int
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    n_train: int
    n_val: int
    history: tuple[EpochReport, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stopped_early": self.stopped_early,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "train_loss": [round(e.train_loss, 6) for e in self.history],
            "val_loss": [round(e.val_loss, 6) for e in self.history],
        }


def _as_windows(model: RecurrentVAE, windows: npt.ArrayLike) -> torch.Tensor:
    cfg = model.config
    arr = np.asarray(windows)
    if arr.ndim != 3 or arr.shape[1:] != (cfg.window, cfg.n_channels):
        raise InputError(
            f"training windows must have shape (N, {cfg.window}, {cfg.n_channels}), got {arr.shape}"
        )
    arr32 = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr32).all():
        raise InputError("training windows contain NaN or infinite values; clean them first")
    if arr32.shape[0] < MIN_WINDOWS:
        raise InputError(f"need at least {MIN_WINDOWS} training windows, got {arr32.shape[0]}")
    return torch.from_numpy(arr32)


def fit(
    model: RecurrentVAE,
    windows: npt.ArrayLike,
    config: TrainConfig | None = None,
    progress: ProgressCallback | None = None,
) -> FitReport:
    """Train ``model`` in place on normal windows (N, T, C) given in time order.

    The last ``val_fraction`` of the windows is the validation set (a chronological split:
    overlapping windows would leak across a random one). Early stopping keeps the weights of
    the best validation epoch. Raises :class:`NonFiniteLossError` as soon as a loss is NaN or
    infinite, naming the epoch and step.

    Example:
        >>> import numpy as np
        >>> from streamvae.config import VAEConfig
        >>> model = RecurrentVAE(VAEConfig(channels=("a",), window=8, hidden_size=8))
        >>> windows = np.sin(np.arange(64 * 8, dtype=np.float32) / 3).reshape(64, 8, 1)
        >>> fit(model, windows, TrainConfig(epochs=2)).epochs_run
        2
    """
    cfg = config or TrainConfig()
    x = _as_windows(model, windows)  # (N, T, C)
    n_val = math.floor(x.shape[0] * cfg.val_fraction)
    n_train = x.shape[0] - n_val
    if n_train < MIN_WINDOWS // 2:
        raise InputError(
            f"only {n_train} windows left for training after the validation split; "
            "lower val_fraction or supply more data"
        )
    x_train, x_val = x[:n_train], x[n_train:]
    latent = model.config.latent_dim

    generator = torch.Generator().manual_seed(cfg.seed)
    val_noise = torch.randn(
        max(n_val, n_train), latent, generator=torch.Generator().manual_seed(cfg.seed + 1)
    )
    optimiser = torch.optim.Adam(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(
            optimiser, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.learning_rate * 0.02
        )
        if cfg.lr_schedule == "cosine"
        else None
    )
    settled = cfg.beta.settled_epoch(cfg.epochs)
    beta_final = cfg.beta.beta(float(cfg.epochs), cfg.epochs)
    if cfg.beta.kind == "cyclical":
        beta_final = cfg.beta.beta_max

    best_loss = math.inf
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    waited = 0
    history: list[EpochReport] = []
    stopped_early = False

    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(n_train, generator=generator)
        sums = np.zeros(3)
        for step, idx in enumerate(torch.split(order, cfg.batch_size)):
            beta = cfg.beta.beta(epoch + step / steps_per_epoch, cfg.epochs)
            xb = x_train[idx]  # (B, T, C)
            noise = torch.randn(xb.shape[0], latent, generator=generator)  # (B, Z)
            xin = _drop_channels(xb, cfg.channel_dropout, generator)  # (B, T, C)
            parts = elbo_loss(xb, model(xin, noise), beta, cfg.free_bits)
            if not torch.isfinite(parts.total):
                raise NonFiniteLossError(
                    f"training loss became {parts.total.item()} at epoch {epoch + 1}, step "
                    f"{step + 1} (learning_rate={cfg.learning_rate}); check that the windows are "
                    "scaled (unit variance) and lower learning_rate or grad_clip"
                )
            optimiser.zero_grad(set_to_none=True)
            parts.total.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimiser.step()
            if scheduler is not None:
                scheduler.step()
            weight = xb.shape[0] / n_train
            sums += weight * np.array([parts.total.item(), parts.nll.item(), parts.kl.item()])

        eval_set = x_val if n_val > 0 else x_train
        val_loss = _evaluate(model, eval_set, val_noise[: eval_set.shape[0]], beta_final, cfg)
        if not math.isfinite(val_loss):
            raise NonFiniteLossError(
                f"validation loss became {val_loss} at epoch {epoch + 1}; the model diverged — "
                "lower learning_rate"
            )
        improved = False
        if epoch + 1 >= settled:
            margin = cfg.min_delta * max(abs(best_loss), 1.0)
            if best_state is None or val_loss < best_loss - margin:
                best_loss, best_epoch, waited, improved = val_loss, epoch + 1, 0, True
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
        report = EpochReport(
            epoch + 1,
            cfg.epochs,
            float(sums[0]),
            val_loss,
            float(sums[1]),
            float(sums[2]),
            cfg.beta.beta(float(epoch + 1), cfg.epochs),
            improved,
        )
        history.append(report)
        if progress is not None:
            progress(report)
        if waited >= cfg.patience:
            stopped_early = True
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    else:  # the β schedule never settled within `epochs`: keep the final weights
        best_loss, best_epoch = history[-1].val_loss, history[-1].epoch
    model.eval()
    _set_channel_baseline(model, x_train)
    return FitReport(
        epochs_run=len(history),
        best_epoch=best_epoch,
        best_val_loss=best_loss,
        stopped_early=stopped_early,
        n_train=n_train,
        n_val=n_val,
        history=tuple(history),
    )


def _drop_channels(x: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Blank one random channel (to 0, its training mean) in a ``rate`` fraction of windows.

    The target stays the clean window, so the encoder learns to infer z from the other
    channels when one sensor misbehaves: the decoder then reconstructs what the faulty sensor
    *should* read, its NLL rises alone, and the alert names the right channel instead of
    blaming healthy channels whose reconstruction the fault dragged along.
    """
    b, _, c = x.shape
    draw = torch.rand(b, generator=generator)  # (B,)
    channel = torch.randint(0, c, (b,), generator=generator)  # (B,)
    if rate <= 0 or c < 2:
        return x
    keep = torch.ones(b, 1, c)
    rows = torch.nonzero(draw < rate).squeeze(1)
    keep[rows, 0, channel[rows]] = 0.0
    return x * keep


def _evaluate(
    model: RecurrentVAE, x: torch.Tensor, noise: torch.Tensor, beta: float, cfg: TrainConfig
) -> float:
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for xb, nb in zip(torch.split(x, 1024), torch.split(noise, 1024), strict=True):
            parts = elbo_loss(xb, model(xb, nb), beta, cfg.free_bits)
            total += parts.total.item() * xb.shape[0]
    return total / x.shape[0]


def _set_channel_baseline(model: RecurrentVAE, x_train: torch.Tensor) -> None:
    """Store each channel's median NLL on the training windows (the 'normal level')."""
    model.channel_nll_baseline.zero_()
    batch = Scorer(model, ScoringConfig(samples=1)).score_many(x_train.numpy())
    baseline = np.median(batch.channel_nll, axis=0)  # (C,)
    if not np.isfinite(baseline).all():
        raise TrainingError("per-channel NLL on the training windows is not finite")
    model.channel_nll_baseline.copy_(torch.from_numpy(baseline.astype(np.float32)))
