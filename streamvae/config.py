"""Typed, validated configuration records.

Configs are frozen dataclasses validated in ``__post_init__`` so that a bad value fails where
it enters (a config file, a CLI flag, an artefact) with a message that names the field, not
deep inside a training loop. ``to_dict``/``from_dict`` give a JSON-safe form used by model
artefacts; ``from_dict`` rejects unknown keys so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeVar

from streamvae.errors import ConfigError

__all__ = [
    "BetaSchedule",
    "ScoringConfig",
    "TrainConfig",
    "VAEConfig",
]

Cell = Literal["lstm", "gru"]
DecoderKind = Literal["rnn", "mlp"]
BetaKind = Literal["constant", "linear", "cyclical"]

_T = TypeVar("_T")


def _require(ok: bool, owner: str, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{owner}.{name}: {message}")


def _positive_int(owner: str, name: str, value: object, minimum: int = 1) -> None:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        owner,
        name,
        f"must be an integer >= {minimum}, got {value!r}",
    )


def _finite_float(
    owner: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    _require(ok, owner, name, f"must be a finite number, got {value!r}")
    assert isinstance(value, int | float)
    if low is not None:
        bad = value <= low if low_open else value < low
        _require(not bad, owner, name, f"must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None:
        _require(value <= high, owner, name, f"must be <= {high}, got {value}")


def _channel_names(owner: str, channels: object, name: str = "channels") -> None:
    """A non-empty tuple of unique, non-empty channel names (shared by every config)."""
    _require(
        isinstance(channels, tuple) and len(channels) >= 1,
        owner,
        name,
        f"must be a non-empty tuple of channel names, got {channels!r}",
    )
    assert isinstance(channels, tuple)
    _require(
        all(isinstance(c, str) and c for c in channels),
        owner,
        name,
        "every channel name must be a non-empty string",
    )
    _require(
        len(set(channels)) == len(channels),
        owner,
        name,
        f"channel names must be unique, got {list(channels)}",
    )


def _choice(owner: str, name: str, value: object, allowed: tuple[str, ...]) -> None:
    _require(value in allowed, owner, name, f"must be one of {list(allowed)}, got {value!r}")


class _DictMixin:
    """JSON-safe round trip shared by every config record."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, _DictMixin):
                out[f.name] = value.to_dict()
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown field(s) {unknown}; known fields are {sorted(known)}"
            )
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            nested = _NESTED.get((cls.__name__, name))
            if nested is not None and isinstance(value, Mapping):
                kwargs[name] = nested.from_dict(value)
            elif isinstance(value, list):
                kwargs[name] = tuple(value)
            else:
                kwargs[name] = value
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class VAEConfig(_DictMixin):
    """Shape of the recurrent VAE.

    The defaults were chosen by measuring detection quality and CPU scoring speed together
    (``docs/performance.md``): an LSTM encoder is 2-3x faster than a GRU on CPU for the same
    size, and the MLP decoder both scores faster and reconstructs a pulsation's phase that a
    recurrent decoder fed a constant z struggles to regenerate (frequency-change AUC 0.99 vs
    0.58 on the synthetic plant).

    Example:
        >>> cfg = VAEConfig(channels=("flow", "pressure", "temperature"), window=32)
        >>> cfg.n_channels
        3
    """

    channels: tuple[str, ...]
    window: int = 32
    cell: Cell = "lstm"
    hidden_size: int = 32
    latent_dim: int = 8
    num_layers: int = 1
    decoder: DecoderKind = "mlp"
    min_logvar: float = -6.0
    max_logvar: float = 6.0
    seed: int = 0

    def __post_init__(self) -> None:
        owner = "VAEConfig"
        _channel_names(owner, self.channels)
        _positive_int(owner, "window", self.window, 2)
        _choice(owner, "cell", self.cell, ("lstm", "gru"))
        _positive_int(owner, "hidden_size", self.hidden_size)
        _positive_int(owner, "latent_dim", self.latent_dim)
        _positive_int(owner, "num_layers", self.num_layers)
        _choice(owner, "decoder", self.decoder, ("rnn", "mlp"))
        _finite_float(owner, "min_logvar", self.min_logvar)
        _finite_float(owner, "max_logvar", self.max_logvar)
        _require(
            self.min_logvar < self.max_logvar,
            owner,
            "min_logvar",
            f"must be below max_logvar ({self.min_logvar} >= {self.max_logvar})",
        )
        _positive_int(owner, "seed", self.seed, 0)

    @property
    def n_channels(self) -> int:
        return len(self.channels)


@dataclass(frozen=True, slots=True)
class BetaSchedule(_DictMixin):
    """Weight of the KL term over training, measured in epochs.

    ``linear`` warms β from 0 to ``beta_max`` over ``warmup_epochs`` (Bowman et al. 2016);
    ``cyclical`` repeats that ramp ``cycles`` times, ramping for ``ramp_fraction`` of each cycle
    and holding ``beta_max`` for the rest (Fu et al. 2019). Both fight posterior collapse: the
    decoder first learns to use z, then the prior is enforced. ``beta_max`` defaults to 0.1,
    measured on the whole Detector (``docs/detector.md``): against β = 1 it reconstructs the
    plant's rarer normal transients well enough that false alerts fell from 6 to 2 per 711
    asset-days, detecting 28 of 30 faults instead of 27, with the same per-kind AUC (≥ 0.99).

    Example:
        >>> BetaSchedule(kind="linear", beta_max=1.0, warmup_epochs=10).beta(5.0, total_epochs=40)
        0.5
    """

    kind: BetaKind = "linear"
    beta_max: float = 0.1
    warmup_epochs: float = 10.0
    cycles: int = 4
    ramp_fraction: float = 0.5

    def __post_init__(self) -> None:
        owner = "BetaSchedule"
        _choice(owner, "kind", self.kind, ("constant", "linear", "cyclical"))
        _finite_float(owner, "beta_max", self.beta_max, low=0.0)
        _finite_float(owner, "warmup_epochs", self.warmup_epochs, low=0.0)
        _positive_int(owner, "cycles", self.cycles)
        _finite_float(owner, "ramp_fraction", self.ramp_fraction, low=0.0, high=1.0, low_open=True)

    def beta(self, epoch: float, total_epochs: int) -> float:
        """β at a fractional epoch (``epoch`` counts from 0)."""
        if self.kind == "constant":
            return self.beta_max
        if self.kind == "linear":
            if self.warmup_epochs == 0:
                return self.beta_max
            return self.beta_max * min(1.0, max(0.0, epoch) / self.warmup_epochs)
        cycle_len = max(total_epochs, 1) / self.cycles
        position = (max(0.0, epoch) % cycle_len) / cycle_len
        return self.beta_max * min(1.0, position / self.ramp_fraction)

    def settled_epoch(self, total_epochs: int) -> float:
        """First epoch from which β stays at its final value; early stopping waits for it."""
        if self.kind == "constant":
            return 0.0
        if self.kind == "linear":
            return self.warmup_epochs
        cycle_len = max(total_epochs, 1) / self.cycles
        return (self.cycles - 1) * cycle_len + self.ramp_fraction * cycle_len


@dataclass(frozen=True, slots=True)
class TrainConfig(_DictMixin):
    """How :func:`streamvae.fit` trains a model.

    ``free_bits`` is the minimum KL (nats) each latent dimension is charged, averaged over the
    batch (Kingma et al. 2016): below it the KL gradient is off, so the encoder is not pushed to
    collapse dimensions the decoder still needs. Early stopping watches the validation loss at
    the final β and starts counting ``patience`` only once the β schedule has settled.

    Example:
        >>> TrainConfig(epochs=30, batch_size=128, seed=7).val_fraction
        0.2
    """

    epochs: int = 150
    batch_size: int = 64
    learning_rate: float = 1e-2
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    patience: int = 20
    min_delta: float = 1e-3
    grad_clip: float = 5.0
    free_bits: float = 0.05
    channel_dropout: float = 0.3
    beta: BetaSchedule = field(default_factory=BetaSchedule)
    seed: int = 0

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        _positive_int(owner, "epochs", self.epochs)
        _positive_int(owner, "batch_size", self.batch_size)
        _finite_float(owner, "learning_rate", self.learning_rate, low=0.0, low_open=True)
        _choice(owner, "lr_schedule", self.lr_schedule, ("constant", "cosine"))
        _finite_float(owner, "weight_decay", self.weight_decay, low=0.0)
        _finite_float(owner, "val_fraction", self.val_fraction, low=0.0, high=0.9)
        _positive_int(owner, "patience", self.patience)
        _finite_float(owner, "min_delta", self.min_delta, low=0.0)
        _finite_float(owner, "grad_clip", self.grad_clip, low=0.0, low_open=True)
        _finite_float(owner, "free_bits", self.free_bits, low=0.0)
        _finite_float(owner, "channel_dropout", self.channel_dropout, low=0.0, high=1.0)
        _require(
            isinstance(self.beta, BetaSchedule),
            owner,
            "beta",
            f"must be a BetaSchedule, got {type(self.beta).__name__}",
        )
        _positive_int(owner, "seed", self.seed, 0)


@dataclass(frozen=True, slots=True)
class ScoringConfig(_DictMixin):
    """How windows are scored.

    ``samples`` is L, the number of posterior samples averaged into the reconstruction
    probability; ``samples=1`` uses the posterior mean (no sampling at all). Samples use fixed,
    seeded noise shared by every window (common random numbers), so a window's score never
    depends on what else is in the batch. ``pad_multiple`` pads every batch to a multiple of
    that many rows: CPU kernels pick different code paths for very small batches (measured: a
    GRU gives last-bit differences below 12 rows), and padding keeps scores bit-identical
    whatever the batch composition.

    Example:
        >>> ScoringConfig(samples=8, seed=1).samples
        8
    """

    samples: int = 1
    seed: int = 0
    pad_multiple: int = 16

    def __post_init__(self) -> None:
        owner = "ScoringConfig"
        _positive_int(owner, "samples", self.samples)
        _positive_int(owner, "seed", self.seed, 0)
        _positive_int(owner, "pad_multiple", self.pad_multiple)


_NESTED: dict[tuple[str, str], type[_DictMixin]] = {("TrainConfig", "beta"): BetaSchedule}
