"""Training: fitting a model on normal windows."""

from streamvae.training.trainer import EpochReport, FitReport, ProgressCallback, fit

__all__ = ["EpochReport", "FitReport", "ProgressCallback", "fit"]
