"""Turning series into windows.

This module will also hold the streaming, event-time windower (DESIGN §1); for now it has the
batch helper that training and offline scoring use.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streamvae.errors import InputError

__all__ = ["sliding_windows", "window_starts"]


def window_starts(n_steps: int, window: int, stride: int = 1) -> npt.NDArray[np.int64]:
    """Start index of every full window of length ``window`` taken every ``stride`` steps."""
    if window < 1 or stride < 1:
        raise InputError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    if n_steps < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_steps - window + 1, stride, dtype=np.int64)


def sliding_windows(values: npt.ArrayLike, window: int, stride: int = 1) -> npt.NDArray[np.float32]:
    """Series (N, C) → windows (K, window, C), every ``stride`` steps, as a float32 copy.

    Example:
        >>> import numpy as np
        >>> sliding_windows(np.arange(10.0).reshape(5, 2), window=3, stride=2).shape
        (2, 3, 2)
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2:
        raise InputError(f"series must be 2-D (steps, channels), got shape {arr.shape}")
    starts = window_starts(arr.shape[0], window, stride)
    if starts.size == 0:
        return np.zeros((0, window, arr.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(arr, window, axis=0)  # (N-W+1, C, W)
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))
