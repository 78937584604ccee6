"""Fixtures shared by the unit tests: one real model trained once per session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from streamvae import RecurrentVAE, StandardScaler, TrainConfig, VAEConfig, fit, sliding_windows
from streamvae.testing import SyntheticPlant
from streamvae.training import FitReport

TRAIN_STEPS = 5760  # 20 days of 5-minute readings
TRAIN_STRIDE = 3  # co-prime with the 8-step pulsation, so every phase is seen in training


@dataclass(frozen=True)
class TrainedPlantModel:
    plant: SyntheticPlant
    scaler: StandardScaler
    model: RecurrentVAE
    report: FitReport
    train_windows: np.ndarray


@pytest.fixture(scope="session")
def trained() -> TrainedPlantModel:
    """The default model config, trained on a clean synthetic plant (about 15 s on 2 cores)."""
    plant = SyntheticPlant(seed=3)
    series = plant.generate(TRAIN_STEPS)
    scaler = StandardScaler.fit(series.values)
    windows = sliding_windows(scaler.transform(series.values), 32, TRAIN_STRIDE)
    model = RecurrentVAE(VAEConfig(channels=plant.channels, window=32))
    report = fit(model, windows, TrainConfig(seed=0))
    return TrainedPlantModel(plant, scaler, model, report, windows)


@pytest.fixture
def tiny_windows() -> np.ndarray:
    """A small, smooth two-channel data set that trains in well under a second."""
    t = np.arange(40 * 16, dtype=np.float32)
    series = np.stack([np.sin(t / 5), np.cos(t / 7)], axis=1)
    return sliding_windows(series, 16, 4)


@pytest.fixture
def tiny_config() -> VAEConfig:
    return VAEConfig(channels=("a", "b"), window=16, hidden_size=8, latent_dim=4)
