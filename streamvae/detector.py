"""The Detector: every stage of the core composed — readings in, alerts out.

``Detector.process(readings) → list[AlertEvent]`` is the whole data flow of DESIGN §1 without
Kafka: the event-time windower, per-asset scaling, batched VAE scoring across assets, the
per-asset adaptive threshold and the alert lifecycle. It is a deterministic function of its
input sequence and config (how the input is cut into ``process`` calls does not matter), so
a test drives it with a list and the service drives it with Kafka batches, through the same
code, and a replay after a crash reproduces the same alerts with the same ids.

One Detector is one *model group*: assets that share a channel set (one
:class:`~streamvae.windowing.WindowConfig`) and one model. A plant with pumps and
compressors runs one Detector per kind.

What happens before there is a model (the warm-up):

1. Every window updates its asset's running channel statistics (the future scaler), and
   every ``train_stride``-th window of an asset is copied into a bounded training buffer
   (when it reaches ``max_train_windows`` every other window is dropped, so the buffer keeps
   covering the whole warm-up span). Nothing is scored; nothing alerts.
2. The first model is trained once the buffer holds ``warmup_windows`` windows of assets
   that have been seen for at least ``asset_warmup_windows`` windows, spanning at least
   ``warmup_span_s`` of event time. Those assets' scalers are frozen (one per asset, fitted
   on all of its warm-up windows), the model is fitted on the buffered windows (training is
   synchronous: that one ``process`` call takes as long as :func:`~streamvae.fit` does), and
   each asset's threshold is calibrated on the scores of its own windows in the held-out
   chronological validation split. Then the threshold's grace period runs (``grace``
   windows learned, not judged). Scoring starts with the next window.
3. An asset first seen later (or not yet seen long enough) keeps collecting statistics for
   ``asset_warmup_windows`` windows, unscored; then its scaler is frozen and it is scored,
   starting with the grace period of a fresh threshold.

So an asset alerts at the earliest after ``asset_warmup_windows + grace`` of its own windows
once the first model exists. A fault present during the warm-up is learned as normal: warm
up on a period you believe healthy.

Scalers are frozen with the model version: a model is only meaningful with the scalers it
was trained with, so :meth:`Detector.swap_model` takes the new model's scalers along
(retraining refits them) and :meth:`Detector.export_model` writes them into the artefact.

Cost per window after warm-up: the windower, one row of a batched scoring call (batches of
``max_batch`` windows across assets), one threshold update; an ``AlertEvent`` and the
per-channel contributions are built only for windows the alert lifecycle must see.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from streamvae.alerting import AlertConfig, Alerter
from streamvae.artefact import Artefact, dumps_artefact, loads_artefact
from streamvae.config import (
    _NESTED,
    ScoringConfig,
    TrainConfig,
    VAEConfig,
    _DictMixin,
    _finite_float,
    _positive_int,
    _require,
)
from streamvae.errors import ConfigError, InputError
from streamvae.model.scorer import ScoreBatch, Scorer
from streamvae.model.vae import RecurrentVAE
from streamvae.retraining import RetrainConfig, RetrainTrigger, TrainingBuffer, TrainingSet
from streamvae.scaling import StandardScaler
from streamvae.threshold import ThresholdBank, ThresholdConfig
from streamvae.training.trainer import FitReport, ProgressCallback, fit
from streamvae.types import AlertEvent, Reading, ScoredWindow, Window
from streamvae.windowing import WindowConfig, Windower

__all__ = ["Detector", "DetectorConfig", "DetectorStats", "ProcessResult", "check_model_fits"]

FloatArray = npt.NDArray[np.float64]
SNAPSHOT_FORMAT = 2
SCALER_KINDS = ("per_asset", "group")
THRESHOLD_KIND = "per_asset_thresholds"
Scaling = Literal["asset", "group"]
_MIN_SCALE = 1e-9


@dataclass(frozen=True, slots=True)
class DetectorConfig(_DictMixin):
    """Everything a Detector needs, stage by stage, plus the warm-up policy.

    ``model`` defaults to the default :class:`VAEConfig` for the window's channels and
    length. ``train_stride`` keeps every n-th window of an asset for training (3 is co-prime
    with most short periodicities, see ``docs/performance.md``). ``recent_per_asset`` normal
    windows per asset, one every ``recent_every``, are kept to recalibrate thresholds when a
    model is swapped. ``min_scale_fraction`` floors each channel's scale at that fraction of
    its mean magnitude (at least of 1), so a channel that barely moved during the warm-up
    does not turn tiny later changes into huge standardised values. ``max_batch`` caps the
    windows of one scoring call (memory stays bounded whatever the input batch).

    Example:
        >>> cfg = DetectorConfig(window=WindowConfig(channels=("temp", "vib"), window=16))
        >>> cfg.vae().window, cfg.vae().channels
        (16, ('temp', 'vib'))
    """

    window: WindowConfig
    model: VAEConfig | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    alert: AlertConfig = field(default_factory=AlertConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    warmup_windows: int = 2000
    warmup_span_s: float = 0.0
    max_train_windows: int = 4000
    train_stride: int = 3
    asset_warmup_windows: int = 64
    recent_per_asset: int = 8
    recent_every: int = 16
    min_scale_fraction: float = 1e-3
    max_batch: int = 1024
    scaling: Scaling = "group"

    def __post_init__(self) -> None:
        owner = "DetectorConfig"
        for name, cls in (
            ("window", WindowConfig),
            ("train", TrainConfig),
            ("scoring", ScoringConfig),
            ("threshold", ThresholdConfig),
            ("alert", AlertConfig),
            ("retrain", RetrainConfig),
        ):
            value = getattr(self, name)
            _require(
                isinstance(value, cls),
                owner,
                name,
                f"must be a {cls.__name__}, got {type(value).__name__}",
            )
        if self.model is not None:
            _require(isinstance(self.model, VAEConfig), owner, "model", "must be a VAEConfig")
            _require(
                self.model.channels == self.window.channels
                and self.model.window == self.window.window,
                owner,
                "model",
                f"channels and window must match the window config ({list(self.window.channels)}"
                f", {self.window.window}), got ({list(self.model.channels)}, "
                f"{self.model.window}); leave model unset to derive it",
            )
        _positive_int(owner, "warmup_windows", self.warmup_windows, 8)
        _finite_float(owner, "warmup_span_s", self.warmup_span_s, low=0.0)
        _positive_int(owner, "max_train_windows", self.max_train_windows, 16)
        _require(
            self.max_train_windows >= self.warmup_windows,
            owner,
            "max_train_windows",
            f"must be >= warmup_windows ({self.warmup_windows}), got {self.max_train_windows}",
        )
        _positive_int(owner, "train_stride", self.train_stride)
        _positive_int(owner, "asset_warmup_windows", self.asset_warmup_windows, 1)
        _positive_int(owner, "recent_per_asset", self.recent_per_asset)
        _positive_int(owner, "recent_every", self.recent_every)
        _finite_float(owner, "min_scale_fraction", self.min_scale_fraction, low=0.0)
        _positive_int(owner, "max_batch", self.max_batch)
        _require(
            self.scaling in ("asset", "group"),
            owner,
            "scaling",
            f"must be 'asset' or 'group', got {self.scaling!r}",
        )

    def vae(self) -> VAEConfig:
        """The model config: ``model`` if set, else the default for the window."""
        return self.model or VAEConfig(channels=self.window.channels, window=self.window.window)


# DetectorConfig.from_dict is _DictMixin's: its nested sections are registered here.
_NESTED.update(
    {
        ("DetectorConfig", "window"): WindowConfig,
        ("DetectorConfig", "model"): VAEConfig,
        ("DetectorConfig", "train"): TrainConfig,
        ("DetectorConfig", "scoring"): ScoringConfig,
        ("DetectorConfig", "threshold"): ThresholdConfig,
        ("DetectorConfig", "alert"): AlertConfig,
        ("DetectorConfig", "retrain"): RetrainConfig,
    }
)


@dataclass(slots=True)
class DetectorStats:
    """Counters since the detector started (restored with its state), for metrics.

    ``windows`` = ``windows_warmup`` + ``windows_scored`` + ``windows_non_finite``: every
    window is either collected for a warm-up, scored, or dropped because scaling made it
    non-finite (a value beyond float32 after standardising).

    Example:
        >>> DetectorStats().windows_scored
        0
    """

    readings: int = 0
    windows: int = 0
    windows_scored: int = 0
    windows_anomalous: int = 0
    windows_warmup: int = 0
    windows_non_finite: int = 0
    models_trained: int = 0
    model_swaps: int = 0
    alerts_firing: int = 0
    alerts_resolved: int = 0

    def to_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """What one :meth:`Detector.process_detailed` call produced: the alerts and every scored
    window (threshold decision, score, contributions), in order.

    Example:
        >>> ProcessResult([], []).alerts
        []
    """

    alerts: list[AlertEvent]
    scored: list[ScoredWindow]


class _Moments:
    """Running per-channel mean and variance of an asset's warm-up windows (shifted sums,
    exact enough in float64 for any sensor range)."""

    __slots__ = ("count", "shift", "sq", "sum", "windows")

    def __init__(self, first: FloatArray) -> None:
        self.shift = first.mean(axis=0)  # (C,)
        self.sum = np.zeros_like(self.shift)
        self.sq = np.zeros_like(self.shift)
        self.count = 0
        self.windows = 0

    def add(self, values: FloatArray) -> None:
        d = values - self.shift  # (W, C)
        self.sum += d.sum(axis=0)
        self.sq += np.einsum("tc,tc->c", d, d)
        self.count += values.shape[0]
        self.windows += 1

    def scaler(self, min_scale_fraction: float) -> tuple[FloatArray, FloatArray]:
        mean_d = self.sum / self.count
        var = np.maximum(self.sq / self.count - mean_d * mean_d, 0.0)
        mean = self.shift + mean_d
        floor = np.maximum(min_scale_fraction * np.maximum(np.abs(mean), 1.0), _MIN_SCALE)
        return mean, np.maximum(np.sqrt(var), floor)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shift": _b64(self.shift),
            "sum": _b64(self.sum),
            "sq": _b64(self.sq),
            "count": self.count,
            "windows": self.windows,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _Moments:
        m = cls.__new__(cls)
        m.shift = _unb64(d["shift"])
        m.sum = _unb64(d["sum"])
        m.sq = _unb64(d["sq"])
        m.count = int(d["count"])
        m.windows = int(d["windows"])
        return m


def _b64(arr: npt.NDArray[Any], dtype: type[np.floating[Any]] = np.float64) -> dict[str, Any]:
    a = np.ascontiguousarray(arr, dtype=dtype)
    return {
        "dtype": np.dtype(dtype).name,
        "shape": list(a.shape),
        "data": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode(),
    }


def _unb64(obj: Mapping[str, Any]) -> FloatArray:
    dtype = np.dtype(obj.get("dtype", "float64")).newbyteorder("<")
    raw = base64.b64decode(obj["data"])
    out: FloatArray = np.frombuffer(raw, dtype=dtype).reshape(obj["shape"]).astype(dtype.name)
    return out


class Detector:
    """Readings in, alerts out: windowing, scaling, scoring, threshold, alert lifecycle.

    Example:
        >>> from streamvae.windowing import WindowConfig
        >>> cfg = DetectorConfig(window=WindowConfig(channels=("temp",), window=8),
        ...                      warmup_windows=16, asset_warmup_windows=8, train_stride=1,
        ...                      train=TrainConfig(epochs=1))
        >>> detector = Detector(cfg)
        >>> readings = [Reading("pump-1", float(t), {"temp": 20.0 + t % 5}) for t in range(40)]
        >>> detector.process(readings)
        []
        >>> detector.model_version, detector.stats.windows_scored
        ('v0001', 16)
    """

    def __init__(
        self,
        config: DetectorConfig,
        model: RecurrentVAE | None = None,
        *,
        model_version: str = "v0001",
        scalers: Mapping[str, StandardScaler] | StandardScaler | None = None,
        progress: ProgressCallback | None = None,
        threshold_seeds: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not isinstance(config, DetectorConfig):
            raise ConfigError(
                f"Detector: expected a DetectorConfig, got {type(config).__name__}; build one "
                "with DetectorConfig(window=WindowConfig(channels=(...)))"
            )
        self.config = config
        self.windower = Windower(config.window)
        self._threshold_seeds = dict(threshold_seeds or {})
        self.thresholds = ThresholdBank(config.threshold, self._threshold_seeds)
        self.alerter = Alerter(config.alert)
        self.stats = DetectorStats()
        self.model: RecurrentVAE | None = None
        self.model_version = ""
        self.last_fit: FitReport | None = None
        self.progress = progress  # called with each epoch's report while a model trains
        self._scorer: Scorer | None = None
        C = config.window.n_channels
        # frozen scalers: row i of the matrices belongs to the asset with index i
        self._index: dict[str, int] = {}
        self._mean = np.zeros((16, C))
        self._scale = np.ones((16, C))
        self._sync32()
        # assets still warming up: running statistics (group mode: one for the group, and
        # the group's scaler in row 0 once frozen)
        self._moments: dict[str, _Moments] = {}
        self._group = config.scaling == "group"
        self._group_moments: _Moments | None = None
        self._group_ready = False
        # the first model's training buffer, in the order the windows became final
        self._train_assets: list[str] = []
        self._train_values: list[FloatArray] = []
        self._train_start: list[float] = []
        self._train_seen: dict[str, int] = {}
        self._keep_every = config.train_stride
        self._warmup_last_end = 0.0  # the newest window end seen while warming up
        # recent normal windows, for recalibration on a model swap (float32 copies)
        self._recent: dict[str, deque[npt.NDArray[np.float32]]] = {}
        self._recent_count: dict[str, int] = {}
        # continual learning: normal windows for the next model, and when it is due
        self.training = TrainingBuffer(config.retrain, config.window.window, C)
        self.trigger = RetrainTrigger(config.retrain)
        if model is not None:
            self._check_model(model, "model")
            self._install(model, model_version)
        elif scalers:
            raise ConfigError(
                "Detector: scalers without a model cannot be used (a scaler is frozen with "
                "the model it was trained for); pass the model too, or neither"
            )
        self._apply_scalers(scalers)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_artefact(cls, config: DetectorConfig, artefact: Artefact) -> Detector:
        """A detector that starts with a trained model, the scalers saved with it and the
        thresholds it had calibrated (:meth:`export_model`): the assets it knows skip the
        warm-up and the threshold's grace period."""
        version = str(artefact.metadata.get("model_version", "v0001"))
        return cls(
            config,
            artefact.model,
            model_version=version,
            scalers=_scalers_of(artefact.scaler),
            threshold_seeds=threshold_seeds_of(artefact),
        )

    def export_model(self, metadata: Mapping[str, Any] | None = None) -> tuple[bytes, str]:
        """The current model as artefact bytes, with its per-asset scalers and version in the
        manifest; returns ``(bytes, content hash)``. Raises before the first model exists."""
        if self.model is None:
            raise InputError("export_model: the detector has no model yet (still warming up)")
        meta = {"model_version": self.model_version, **(metadata or {})}
        return dumps_artefact(
            self.model,
            train_config=self.config.train,
            scaler=self.scalers_state(),
            threshold={"kind": THRESHOLD_KIND, **self.thresholds.snapshot()},
            metadata=meta,
        )

    # ------------------------------------------------------------------ public API

    def process(self, readings: Iterable[Reading]) -> list[AlertEvent]:
        """Feed readings (any order within the windower's allowed lateness); get the alerts
        they caused, in order."""
        return self._run(self.windower.push_many(self._count(readings)), detailed=False).alerts

    def process_detailed(self, readings: Iterable[Reading]) -> ProcessResult:
        """Like :meth:`process`, also returning every scored window (for reports, metrics,
        evaluation). Slower: every window gets a :class:`ScoredWindow`."""
        return self._run(self.windower.push_many(self._count(readings)), detailed=True)

    def flush(self, detailed: bool = False) -> ProcessResult:
        """Finalise every pending bucket (the end of a finite stream or a replay) and process
        the windows that completes. Readings for those buckets arriving later are late."""
        return self._run(self.windower.flush(), detailed=detailed)

    def swap_model(
        self,
        model: RecurrentVAE,
        version: str,
        scalers: Mapping[str, StandardScaler] | StandardScaler | None = None,
    ) -> None:
        """Replace the model between batches. ``scalers`` (from the new model's training)
        replace those of the assets they name; other assets keep theirs. Every scored asset's
        threshold is recalibrated on its buffered training windows and recent normal windows
        scored by the new model (a new model has a new score scale); an asset with fewer than
        ``threshold.grace`` of them runs its grace period again. Open alerts stay open
        through it."""
        self._check_model(model, "swap_model")
        _require(
            isinstance(version, str) and bool(version),
            "Detector",
            "swap_model",
            "version must be a non-empty string",
        )
        self._apply_scalers(scalers, check_only=True)
        if self.model is None:  # swapped in during the warm-up: it ends now
            self._train_assets, self._train_values, self._train_start = [], [], []
            self._train_seen = {}
        self._install(model, version)
        self._apply_scalers(scalers)
        self.stats.model_swaps += 1
        scored = self.thresholds.assets
        # calibration windows: the asset's buffered training windows (normal, guard-banded,
        # oldest first), then its recent normal ones
        buffered: dict[str, list[npt.NDArray[np.float32]]] = {}
        data = self.training.training_set()
        for asset, values in zip(data.assets, data.values, strict=True):
            buffered.setdefault(asset, []).append(values)
        assets = [
            a for a in scored if (self._recent.get(a) or buffered.get(a)) and self._has_scaler(a)
        ]
        calibration: dict[str, list[float]] = {a: [] for a in scored}
        if assets:
            rows = [
                (a, v) for a in assets for v in [*buffered.get(a, []), *self._recent.get(a, ())]
            ]
            batch = self._score([a for a, _ in rows], np.stack([v for _, v in rows]))
            for (asset, _), s in zip(rows, batch.scores.tolist(), strict=True):
                calibration[asset].append(s)
        self.thresholds.recalibrate(calibration, skip_grace=True)

    @property
    def ready(self) -> bool:
        """True once a model exists (the first warm-up is over)."""
        return self.model is not None

    # ------------------------------------------------------------------ continual learning

    def retrain_due(self) -> str | None:
        """Why the serving model is due for a retrain (``windows``, ``time``, ``drift``), or
        None (no model yet, too few buffered windows, not due). The Detector never retrains
        by itself after the first model: a :class:`~streamvae.continual.Retrainer` (or the
        service) trains in the background and calls :meth:`swap_model`."""
        if self.model is None:
            return None
        return self.trigger.due(len(self.training))

    def training_set(self) -> TrainingSet:
        """A copy of the buffered normal windows (raw values), in event-time order."""
        return self.training.training_set()

    def retrain_started(self) -> None:
        """A retrain was started: the clock restarts, so it is not due again meanwhile."""
        self.trigger.reset(self.trigger.last_ts)

    def scaler(self, asset: str) -> StandardScaler | None:
        """The frozen scaler the asset's windows are standardised with (the group's in group
        mode), or None while there is none yet."""
        if self._group:
            return self._row_scaler(0) if self._group_ready else None
        i = self._index.get(asset)
        return None if i is None else self._row_scaler(i)

    def scalers_state(self) -> dict[str, Any]:
        """Every frozen scaler, JSON-safe: the artefact's scaler slot."""
        state: dict[str, Any] = {
            "kind": "group" if self._group else "per_asset",
            "channels": list(self.config.window.channels),
        }
        if self._group:
            state["group"] = self._row_scaler(0).to_state() if self._group_ready else None
        else:
            state["assets"] = {a: self._row_scaler(i).to_state() for a, i in self._index.items()}
        return state

    # ------------------------------------------------------------------ internals

    def _count(self, readings: Iterable[Reading]) -> Iterable[Reading]:
        if not isinstance(readings, list | tuple):
            readings = list(readings)
        self.stats.readings += len(readings)
        return readings

    def _check_model(self, model: RecurrentVAE, where: str) -> None:
        if not isinstance(model, RecurrentVAE):
            raise ConfigError(f"Detector.{where}: expected a RecurrentVAE, got {type(model)}")
        check_model_fits(self.config.window, model, f"Detector.{where}")

    def _install(self, model: RecurrentVAE, version: str) -> None:
        model.eval()
        self.model = model
        self.model_version = version
        self._scorer = Scorer(model, self.config.scoring)
        self._model_bytes: tuple[bytes, str] | None = None  # artefact, hash: see snapshot()
        self.trigger.reset(None)  # the new model's score stream starts now

    def _model_artefact(self) -> tuple[bytes, str]:
        """The installed model as artefact bytes and hash, serialised once: a model is never
        trained in place after installation, and every checkpoint snapshots it."""
        assert self.model is not None
        if self._model_bytes is None:
            self._model_bytes = dumps_artefact(self.model)
        return self._model_bytes

    def _row_scaler(self, i: int) -> StandardScaler:
        return StandardScaler(
            tuple(self._mean[i].tolist()), tuple(float(x) for x in self._scale[i].tolist())
        )

    def _has_scaler(self, asset: str) -> bool:
        return self._group_ready if self._group else asset in self._index

    def _apply_scalers(
        self,
        scalers: Mapping[str, StandardScaler] | StandardScaler | None,
        check_only: bool = False,
    ) -> None:
        """Install given scalers: one StandardScaler for the group (group mode), or one per
        asset name (asset mode)."""
        if scalers is None:
            return
        if self._group:
            if not isinstance(scalers, StandardScaler):
                raise ConfigError(
                    "Detector: with scaling='group' pass one StandardScaler for the whole "
                    f"group, got {type(scalers).__name__}"
                )
            arrays = self._scaler_arrays("(group)", scalers)
            if not check_only:
                self._set_row(0, *arrays)
                self._group_ready = True
                self._group_moments = None
            return
        if not isinstance(scalers, Mapping):
            raise ConfigError(
                "Detector: with scaling='asset' pass a mapping of asset name to StandardScaler, "
                f"got {type(scalers).__name__}"
            )
        new = {a: self._scaler_arrays(a, sc) for a, sc in scalers.items()}
        if not check_only:
            for asset, (mean, scale) in new.items():
                self._set_scaler(asset, mean, scale)
                self._moments.pop(asset, None)

    def _scaler_arrays(self, asset: str, scaler: StandardScaler) -> tuple[FloatArray, FloatArray]:
        if (
            not isinstance(scaler, StandardScaler)
            or scaler.n_channels != self.config.window.n_channels
        ):
            raise ConfigError(
                f"Detector: the scaler for asset {asset!r} must be a StandardScaler over "
                f"{self.config.window.n_channels} channels"
            )
        return np.asarray(scaler.mean, dtype=np.float64), np.asarray(scaler.scale, dtype=np.float64)

    def _set_scaler(self, asset: str, mean: FloatArray, scale: FloatArray) -> None:
        i = self._index.get(asset)
        if i is None:
            i = len(self._index)
            if i == self._mean.shape[0]:  # double the capacity
                self._mean = np.concatenate([self._mean, np.zeros_like(self._mean)])
                self._scale = np.concatenate([self._scale, np.ones_like(self._scale)])
                self._sync32()
            self._index[asset] = i
        self._set_row(i, mean, scale)

    def _set_row(self, i: int, mean: FloatArray, scale: FloatArray) -> None:
        """Row ``i`` of the scaler matrices and of their float32 copies (one row, not the
        whole matrix: assets are frozen one by one)."""
        self._mean[i], self._scale[i] = mean, scale
        self._mean32[i], self._scale32[i] = mean, scale

    def _sync32(self) -> None:
        """float32 copies of the scaler matrices: what ``_scaled`` computes with."""
        self._mean32 = self._mean.astype(np.float32)
        self._scale32 = self._scale.astype(np.float32)

    def _freeze_scaler(self, asset: str) -> None:
        moments = self._moments.pop(asset)
        self._set_scaler(asset, *moments.scaler(self.config.min_scale_fraction))

    def _scaled(
        self, assets: list[str], values: FloatArray | list[FloatArray]
    ) -> npt.NDArray[np.float32]:
        """Raw windows (N, W, C) of the given assets → standardised float32 (N, W, C).

        Standardised in float32, straight into the array the model reads: one pass, no
        float64 temporaries. A value beyond float32 becomes inf (dropped later, counted)."""
        shape = (len(assets), self.config.window.window, self._mean.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):
            x = np.array(values, dtype=np.float32) if len(assets) else np.empty(shape, np.float32)
            if self._group:
                x -= self._mean32[0]
                x /= self._scale32[0]
            else:
                idx = np.fromiter((self._index[a] for a in assets), np.intp, count=len(assets))
                x -= self._mean32[idx][:, None, :]
                x /= self._scale32[idx][:, None, :]
        return x

    def _score(self, assets: list[str], values: FloatArray | list[FloatArray]) -> ScoreBatch:
        assert self._scorer is not None
        return self._scorer.score_many(self._scaled(assets, values))

    def _observe(self, window: Window) -> None:
        """A window of an asset without a frozen scaler: learn its statistics (and the
        group's)."""
        if self._group:
            g = self._group_moments
            if g is None:
                g = self._group_moments = _Moments(window.values)
            g.add(window.values)
        else:
            m = self._moments.get(window.asset)
            if m is None:
                m = self._moments[window.asset] = _Moments(window.values)
            m.add(window.values)
        self.stats.windows_warmup += 1

    def _buffer_for_training(self, window: Window) -> bool:
        """Keep every ``keep_every``-th window of the asset; True when this one was kept."""
        seen = self._train_seen.get(window.asset, 0)
        self._train_seen[window.asset] = seen + 1
        if seen % self._keep_every:
            return False
        self._train_assets.append(window.asset)
        self._train_values.append(np.array(window.values))  # a copy: views pin the ring
        self._train_start.append(window.start_ts)
        return True

    def _trainable(self) -> list[int]:
        """Positions in the buffer of windows whose asset has warmed up long enough."""
        if self._group:
            return list(range(len(self._train_assets)))
        need = self.config.asset_warmup_windows
        ok = {a for a, m in self._moments.items() if m.windows >= need}
        return [i for i, a in enumerate(self._train_assets) if a in ok]

    @property
    def warmup_progress(self) -> float:
        """How far the first model's warm-up is, 0..1 (1 once a model scores): the smaller
        of the windows collected and the event time covered, each against what the first
        training needs — for progress bars, not for decisions."""
        if self.ready:
            return 1.0
        cfg = self.config
        n = len(self._train_values)
        if n == 0:
            return 0.0
        by_windows = 1.0 if self._keep_every > cfg.train_stride else n / cfg.warmup_windows
        span = self._warmup_last_end - self._train_start[0]
        by_span = span / cfg.warmup_span_s if cfg.warmup_span_s > 0 else 1.0
        return max(0.0, min(0.99, by_windows, by_span))

    def _maybe_train(self, last_end: float) -> None:
        cfg = self.config
        self._warmup_last_end = last_end
        n = len(self._train_values)
        # cheap necessary conditions first: the full check walks the buffer
        if n >= cfg.warmup_windows and last_end - self._train_start[0] >= cfg.warmup_span_s:
            usable = self._trainable()
            if len(usable) >= cfg.warmup_windows:
                span = last_end - self._train_start[usable[0]]
                if span >= cfg.warmup_span_s:
                    self._train_first_model(usable)
                    return
        if n >= cfg.max_train_windows:
            # Keep every other window: the buffer still spans the whole warm-up.
            self._train_assets = self._train_assets[::2]
            self._train_values = self._train_values[::2]
            self._train_start = self._train_start[::2]
            self._keep_every *= 2

    def _train_first_model(self, usable: list[int]) -> None:
        # A canonical order (event time, then asset): how the assets' windows interleaved on
        # arrival must not change the model, and the validation split is the latest 20 %.
        usable = sorted(usable, key=lambda i: (self._train_start[i], self._train_assets[i]))
        assets = [self._train_assets[i] for i in usable]
        if self._group:
            assert self._group_moments is not None
            self._set_row(0, *self._group_moments.scaler(self.config.min_scale_fraction))
            self._group_ready = True
            self._group_moments = None
        else:
            for asset in dict.fromkeys(assets):
                self._freeze_scaler(asset)
        values = np.stack([self._train_values[i] for i in usable])  # (N, W, C)
        x = self._scaled(assets, values)
        model = RecurrentVAE(self.config.vae())
        self.last_fit = fit(model, x, self.config.train, progress=self.progress)
        self.stats.models_trained += 1
        self._install(model, f"v{self.stats.models_trained:04d}")
        assert self._scorer is not None
        n_val = self.last_fit.n_val
        first = len(assets) - n_val if n_val else 0
        scores = self._scorer.score_many(x[first:]).scores.tolist()
        calibration: dict[str, list[float]] = {a: [] for a in dict.fromkeys(assets)}
        for asset, s in zip(assets[first:], scores, strict=True):
            calibration[asset].append(s)
        self.thresholds.recalibrate(calibration)
        self._train_assets, self._train_values, self._train_start = [], [], []
        self._train_seen = {}

    def _keep_recent(self, asset: str, values: FloatArray) -> None:
        """Keep a float32 copy of a normal window (for recalibration on a model swap)."""
        ring = self._recent.get(asset)
        if ring is None:
            ring = self._recent[asset] = deque(maxlen=self.config.recent_per_asset)
        ring.append(values.astype(np.float32))

    def _run(self, windows: list[Window], detailed: bool) -> ProcessResult:
        alerts: list[AlertEvent] = []
        scored: list[ScoredWindow] = []
        self.stats.windows += len(windows)
        index = self._index
        queue: list[Window] = []
        max_batch = self.config.max_batch
        need = self.config.asset_warmup_windows
        group = self._group
        if group and self._group_ready:  # after the warm-up every window is scored
            for start in range(0, len(windows), max_batch):
                self._score_batch(windows[start : start + max_batch], alerts, scored, detailed)
            return ProcessResult(alerts, scored)
        for window in windows:
            asset = window.asset
            if asset in index or (group and self._group_ready):
                queue.append(window)
                if len(queue) >= max_batch:
                    self._score_batch(queue, alerts, scored, detailed)
                    queue = []
                continue
            self._observe(window)
            if self.model is None:
                self._buffer_for_training(window)
                self._maybe_train(window.end_ts)
            elif not group and self._moments[asset].windows >= need:
                self._freeze_scaler(asset)
        if queue:
            self._score_batch(queue, alerts, scored, detailed)
        return ProcessResult(alerts, scored)

    def _score_batch(
        self,
        batch: list[Window],
        alerts: list[AlertEvent],
        scored: list[ScoredWindow],
        detailed: bool,
    ) -> None:
        assert self._scorer is not None
        assets = [w.asset for w in batch]
        x = self._scaled(assets, [w.values for w in batch])
        finite = np.isfinite(x).all(axis=(1, 2))
        if not finite.all():  # a value beyond float32 once standardised: drop, count
            keep = np.flatnonzero(finite).tolist()
            self.stats.windows_non_finite += len(batch) - len(keep)
            batch = [batch[i] for i in keep]
            assets = [assets[i] for i in keep]
            x = x[finite]
            if not batch:
                return
        result = self._scorer.score_valid(x)
        scores = result.scores.tolist()
        decisions = self.thresholds.update_many(assets, scores)
        self.stats.windows_scored += len(batch)
        label = self.thresholds.label
        version = self.model_version
        alerter = self.alerter
        watched = alerter.watched()  # a live view of the assets whose lifecycle is not quiet
        counts = self._recent_count
        every = self.config.recent_every
        keep_every = self.config.retrain.keep_every
        training = self.training
        anomalous = 0
        for k, d in enumerate(decisions):
            asset = assets[k]
            window = batch[k]
            if d.anomalous:
                anomalous += 1
                training.void(asset, counts.get(asset, 0))
            else:
                c = counts.get(asset, 0)
                counts[asset] = c + 1
                if c % every == 0:
                    self._keep_recent(asset, window.values)
                if asset in watched:
                    training.void(asset, c)  # an active lifecycle: nothing of it is learned
                elif c % keep_every == 0:
                    training.offer(asset, window.end_ts, window.values, c)
                if not detailed and asset not in watched:
                    continue  # a normal window of a quiet asset: nothing for the lifecycle
            sw = ScoredWindow(
                window=window,
                score=scores[k],
                threshold=d.threshold,
                anomalous=d.anomalous,
                contributions=result.contributions_dict(k),
                model_version=version,
                threshold_label=label,
                regime_change=d.regime_change,
                warming_up=d.warming_up,
            )
            if detailed:
                scored.append(sw)
            for event in alerter.update(sw):
                alerts.append(event)
                if event.status == "firing":
                    self.stats.alerts_firing += 1
                else:
                    self.stats.alerts_resolved += 1
        self.stats.windows_anomalous += anomalous
        self.trigger.observe(scores, batch[-1].end_ts)

    # ------------------------------------------------------------------ state

    def snapshot(self, include_model: bool = True) -> dict[str, Any]:
        """The whole state as a JSON-safe dict. With ``include_model=False`` the model is
        named by version and content hash only (the service keeps models in a registry and
        hands the model to :meth:`restore`); everything else is always included."""
        model: dict[str, Any] | None = None
        if self.model is not None:
            data, digest = self._model_artefact()
            model = {
                "version": self.model_version,
                "hash": digest,
                "artefact": base64.b64encode(data).decode() if include_model else None,
            }
        n = len(self._index)
        return {
            "format": SNAPSHOT_FORMAT,
            "config": self.config.to_dict(),
            "windower": self.windower.snapshot(),
            "thresholds": self.thresholds.snapshot(),
            "alerter": self.alerter.snapshot(),
            "stats": self.stats.to_dict(),
            "model": model,
            "scalers": {
                "assets": list(self._index),
                "mean": _b64(self._mean[: max(n, 1)]),
                "scale": _b64(self._scale[: max(n, 1)]),
                "group_ready": self._group_ready,
            },
            "moments": {a: m.to_dict() for a, m in self._moments.items()},
            "group_moments": None if self._group_moments is None else self._group_moments.to_dict(),
            "train": {
                "assets": list(self._train_assets),
                "values": _b64(np.stack(self._train_values)) if self._train_values else None,
                "start": list(self._train_start),
                "seen": dict(self._train_seen),
                "keep_every": self._keep_every,
                "last_end": self._warmup_last_end,
            },
            "recent": {
                a: _b64(np.stack(list(r)), np.float32) for a, r in self._recent.items() if r
            },
            "recent_count": dict(self._recent_count),
            # the retrain clock; the buffer refills after a restore (it is megabytes)
            "retrain": {
                "windows": self.trigger.windows,
                "since_ts": self.trigger.since_ts,
                "last_ts": self.trigger.last_ts,
            },
        }

    @classmethod
    def restore(
        cls,
        config: DetectorConfig,
        state: Mapping[str, Any],
        model: RecurrentVAE | None = None,
        threshold_seeds: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Detector:
        """Rebuild a detector from :meth:`snapshot`; it continues exactly as the snapshotted
        one would have (given the same ``threshold_seeds``, if it had any). ``model`` is
        required when the snapshot was taken without it, and must be the very model it names
        (same content hash)."""
        if not isinstance(state, Mapping) or state.get("format") != SNAPSHOT_FORMAT:
            found = state.get("format") if isinstance(state, Mapping) else type(state).__name__
            raise InputError(
                f"Detector.restore: snapshot format {found!r} is not supported (expected "
                f"{SNAPSHOT_FORMAT}); take it with Detector.snapshot() of this version"
            )
        try:
            return cls._restore(config, state, model, threshold_seeds)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            if isinstance(err, InputError | ConfigError):
                raise
            raise InputError(
                f"Detector.restore: the snapshot is malformed ({type(err).__name__}: {err}); "
                "restore from an unmodified Detector.snapshot()"
            ) from None

    @classmethod
    def _restore(
        cls,
        config: DetectorConfig,
        state: Mapping[str, Any],
        model: RecurrentVAE | None,
        seeds: Mapping[str, Mapping[str, Any]] | None,
    ) -> Detector:
        det = cls(config, threshold_seeds=seeds)
        det.windower = Windower.restore(config.window, state["windower"])
        det.thresholds = ThresholdBank.restore(config.threshold, state["thresholds"], seeds)
        det.alerter = Alerter.restore(config.alert, state["alerter"])
        det.stats = DetectorStats(**state["stats"])
        saved = state["model"]
        if saved is not None:
            if saved["artefact"] is not None:
                art = loads_artefact(base64.b64decode(saved["artefact"]), "<detector snapshot>")
                loaded = art.model
            elif model is None:
                raise InputError(
                    f"Detector.restore: the snapshot was taken without its model (version "
                    f"{saved['version']!r}, sha256 {saved['hash'][:12]}…); pass that model"
                )
            else:
                det._check_model(model, "restore")
                if dumps_artefact(model)[1] != saved["hash"]:
                    raise InputError(
                        f"Detector.restore: the model passed is not version "
                        f"{saved['version']!r} of the snapshot (content hash differs)"
                    )
                loaded = model
            det._install(loaded, str(saved["version"]))
        scalers = state["scalers"]
        means, scales = _unb64(scalers["mean"]), _unb64(scalers["scale"])
        for i, asset in enumerate(scalers["assets"]):
            det._set_scaler(str(asset), means[i], scales[i])
        if scalers["group_ready"]:
            det._set_row(0, means[0], scales[0])
            det._group_ready = True
        gm = state["group_moments"]
        det._group_moments = None if gm is None else _Moments.from_dict(gm)
        det._moments = {str(a): _Moments.from_dict(m) for a, m in state["moments"].items()}
        train = state["train"]
        det._train_assets = [str(a) for a in train["assets"]]
        det._train_values = list(_unb64(train["values"])) if train["values"] else []
        det._train_start = [float(x) for x in train["start"]]
        det._warmup_last_end = float(train.get("last_end", 0.0))  # absent before 0.1.1
        det._train_seen = {str(k): int(v) for k, v in train["seen"].items()}
        det._keep_every = int(train["keep_every"])
        det._recent = {
            str(a): deque(list(_unb64(v).astype(np.float32)), maxlen=config.recent_per_asset)
            for a, v in state["recent"].items()
        }
        det._recent_count = {str(k): int(v) for k, v in state["recent_count"].items()}
        clock = state.get("retrain")
        if clock:
            det.trigger.windows = int(clock["windows"])
            det.trigger.since_ts = clock["since_ts"]
            det.trigger.last_ts = clock["last_ts"]
        return det


def threshold_seeds_of(artefact: Artefact) -> dict[str, Mapping[str, Any]]:
    """Per-asset threshold snapshots saved in an artefact by :meth:`Detector.export_model`
    (empty for artefacts without them)."""
    slot = artefact.threshold
    if not slot or slot.get("kind") != THRESHOLD_KIND:
        return {}
    assets = slot.get("assets")
    return dict(assets) if isinstance(assets, Mapping) else {}


def _scalers_of(
    state: Mapping[str, Any] | None,
) -> dict[str, StandardScaler] | StandardScaler | None:
    """Per-asset scalers from an artefact's scaler slot (written by export_model)."""
    if state is None:
        return None
    kind = state.get("kind")
    if kind not in SCALER_KINDS:
        raise ConfigError(
            f"the artefact's scaler slot is of kind {kind!r}, not one of {list(SCALER_KINDS)}: "
            "it was not exported by a Detector; start without scalers (assets warm up)"
        )
    if kind == "group":
        group = state.get("group")
        return None if group is None else StandardScaler.from_state(group)
    return {str(a): StandardScaler.from_state(s) for a, s in state["assets"].items()}


def check_model_fits(window: WindowConfig, model: RecurrentVAE, where: str) -> None:
    """Raise :class:`ConfigError` unless ``model`` reads ``window``'s channels over its
    length. The one rule for every door a model comes in by (construction, swap, restore, a
    model published on the models topic): a model for other windows would fail on the first
    batch it scores."""
    mc = model.config
    if tuple(mc.channels) != tuple(window.channels) or mc.window != window.window:
        raise ConfigError(
            f"{where}: the model reads channels {list(mc.channels)} over {mc.window} steps, "
            f"but the detector's windows have {list(window.channels)} over {window.window}; "
            "train a model for this window config"
        )
