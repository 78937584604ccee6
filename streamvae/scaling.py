"""Per-channel standardisation, fitted on training data and frozen with the model version.

The VAE learns in standardised units; a model is only meaningful together with the scaler
it was trained with, so the scaler's state travels inside the model artefact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streamvae.errors import ConfigError, InputError

__all__ = ["StandardScaler"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StandardScaler:
    """``(x - mean) / scale`` per channel. ``scale`` has a floor so a constant channel is
    centred rather than divided by zero.

    Example:
        >>> import numpy as np
        >>> scaler = StandardScaler.fit(np.array([[1.0, 10.0], [3.0, 10.0]]))
        >>> scaler.transform(np.array([[2.0, 10.0]])).tolist()
        [[0.0, 0.0]]
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]

    MIN_SCALE = 1e-6

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.scale) or not self.mean:
            raise ConfigError("StandardScaler: mean and scale must be non-empty and equally long")
        if not all(np.isfinite(self.mean)) or not all(np.isfinite(s) and s > 0 for s in self.scale):
            raise ConfigError("StandardScaler: mean must be finite and scale finite and > 0")

    @classmethod
    def fit(cls, values: npt.ArrayLike, min_scale: float = MIN_SCALE) -> StandardScaler:
        """Fit on rows of readings (N, C); non-finite values are ignored per channel."""
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] < 2:
            raise InputError(
                f"scaler needs a 2-D array (rows, channels) with >= 2 rows, got {arr.shape}"
            )
        finite = np.isfinite(arr)
        if not finite.any(axis=0).all():
            raise InputError("a channel has no finite value to fit the scaler on")
        masked = np.where(finite, arr, np.nan)
        mean = np.nanmean(masked, axis=0)
        scale = np.maximum(np.nanstd(masked, axis=0), min_scale)
        return cls(tuple(float(m) for m in mean), tuple(float(s) for s in scale))

    @property
    def n_channels(self) -> int:
        return len(self.mean)

    def transform(self, values: npt.ArrayLike) -> FloatArray:
        """Scale an array whose last axis is the channel axis."""
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape[-1] != self.n_channels:
            raise InputError(
                f"expected {self.n_channels} channels on the last axis, got {arr.shape}"
            )
        result: FloatArray = (arr - np.asarray(self.mean)) / np.asarray(self.scale)
        return result

    def inverse_transform(self, values: npt.ArrayLike) -> FloatArray:
        arr = np.asarray(values, dtype=np.float64)
        result: FloatArray = arr * np.asarray(self.scale) + np.asarray(self.mean)
        return result

    def to_state(self) -> dict[str, Any]:
        return {"kind": "standard", "mean": list(self.mean), "scale": list(self.scale)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StandardScaler:
        if state.get("kind") != "standard":
            raise ConfigError(f"unknown scaler kind {state.get('kind')!r}; expected 'standard'")
        return cls(tuple(map(float, state["mean"])), tuple(map(float, state["scale"])))
