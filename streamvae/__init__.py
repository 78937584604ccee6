"""streamvae: streaming anomaly detection for industrial sensor data.

The pure core: windows of sensor readings in, anomaly scores and (later) alerts out. It never
imports Kafka, reads environment variables, opens sockets or calls the wall clock; the Kafka
service in ``consumers/`` is the edge that does.

Example:
    >>> import numpy as np
    >>> import streamvae as sv
    >>> model = sv.RecurrentVAE(sv.VAEConfig(channels=("flow", "temp"), window=16))
    >>> scores = sv.Scorer(model).score_many(np.zeros((4, 16, 2), dtype=np.float32))
    >>> len(scores)
    4
"""

from streamvae._version import __version__
from streamvae.alerting import AlertConfig, Alerter
from streamvae.artefact import (
    Artefact,
    dumps_artefact,
    load_artefact,
    loads_artefact,
    save_artefact,
)
from streamvae.config import BetaSchedule, ScoringConfig, TrainConfig, VAEConfig
from streamvae.continual import Retrainer, RetrainOutcome
from streamvae.detector import (
    Detector,
    DetectorConfig,
    DetectorStats,
    ProcessResult,
    check_model_fits,
)
from streamvae.errors import (
    ArtefactError,
    ArtefactFormatError,
    ArtefactIntegrityError,
    ConfigError,
    InputError,
    NonFiniteLossError,
    StreamVAEError,
    TrainingError,
    UnsafeArtefactError,
)
from streamvae.evaluation import (
    AlertSpan,
    EventSummary,
    FaultOutcome,
    FaultSpan,
    alert_spans,
    faults_from_labels,
    match_alerts,
    scored_asset_hours,
)
from streamvae.model import RecurrentVAE, ScoreBatch, Scorer, elbo_loss, gaussian_nll
from streamvae.registry import ModelInfo, ModelRegistry, RegistryError
from streamvae.retraining import (
    Candidate,
    GateDecision,
    RetrainConfig,
    RetrainTrigger,
    TrainingBuffer,
    TrainingSet,
    train_candidate,
    validation_gate,
)
from streamvae.scaling import StandardScaler
from streamvae.serde import ReadingConfig, ReadingDecoder, encode_reading
from streamvae.threshold import AdaptiveThreshold, Decision, ThresholdBank, ThresholdConfig
from streamvae.training import EpochReport, FitReport, fit
from streamvae.types import (
    AlertEvent,
    OffsetSpan,
    Reading,
    Rejection,
    RejectReason,
    ScoredWindow,
    SourceRef,
    Window,
)
from streamvae.windowing import WindowConfig, Windower, WindowerStats, sliding_windows

__all__ = [
    "AdaptiveThreshold",
    "AlertConfig",
    "AlertEvent",
    "AlertSpan",
    "Alerter",
    "Artefact",
    "ArtefactError",
    "ArtefactFormatError",
    "ArtefactIntegrityError",
    "BetaSchedule",
    "Candidate",
    "ConfigError",
    "Decision",
    "Detector",
    "DetectorConfig",
    "DetectorStats",
    "EpochReport",
    "EventSummary",
    "FaultOutcome",
    "FaultSpan",
    "FitReport",
    "GateDecision",
    "InputError",
    "ModelInfo",
    "ModelRegistry",
    "NonFiniteLossError",
    "OffsetSpan",
    "ProcessResult",
    "Reading",
    "ReadingConfig",
    "ReadingDecoder",
    "RecurrentVAE",
    "RegistryError",
    "RejectReason",
    "Rejection",
    "RetrainConfig",
    "RetrainOutcome",
    "RetrainTrigger",
    "Retrainer",
    "ScoreBatch",
    "ScoredWindow",
    "Scorer",
    "ScoringConfig",
    "SourceRef",
    "StandardScaler",
    "StreamVAEError",
    "ThresholdBank",
    "ThresholdConfig",
    "TrainConfig",
    "TrainingBuffer",
    "TrainingError",
    "TrainingSet",
    "UnsafeArtefactError",
    "VAEConfig",
    "Window",
    "WindowConfig",
    "Windower",
    "WindowerStats",
    "__version__",
    "alert_spans",
    "check_model_fits",
    "dumps_artefact",
    "elbo_loss",
    "encode_reading",
    "faults_from_labels",
    "fit",
    "gaussian_nll",
    "load_artefact",
    "loads_artefact",
    "match_alerts",
    "save_artefact",
    "scored_asset_hours",
    "sliding_windows",
    "train_candidate",
    "validation_gate",
]
