"""The retrain loop around a Detector: due → train in the background → gate → register → swap.

The Detector collects the training buffer and says when a retrain is due
(:meth:`~streamvae.Detector.retrain_due`); it never trains after its first model, so it stays a
deterministic function of its input. :class:`Retrainer` runs the side loop of DESIGN §1 for
one Detector: it hands the buffer to a background trainer, and when the candidate comes back
and passes the validation gate it registers it (a :class:`~streamvae.registry.ModelRegistry`,
when given) and swaps it in *between* two ``process`` calls — so no window is dropped or
scored twice, every window is scored by exactly one model, and every alert names the model
version that scored it.

Background modes: ``"process"`` (default: a spawned process with ``torch_threads`` threads, so
training competes with scoring for CPU only, never for the GIL), ``"thread"``, and
``"inline"`` (synchronous, for tests and replays that must be reproducible).

Example:
    >>> # retrainer = Retrainer(detector, registry=ModelRegistry("models"))
    >>> # for batch in batches:
    >>> #     alerts = retrainer.process(batch)   # detector.process + the side loop
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from streamvae.artefact import Artefact, dumps_artefact, loads_artefact
from streamvae.detector import Detector, DetectorConfig
from streamvae.model.vae import RecurrentVAE
from streamvae.registry import ModelRegistry, version_name, version_number
from streamvae.retraining import GateDecision, TrainingSet, train_candidate
from streamvae.scaling import StandardScaler
from streamvae.types import AlertEvent, Reading

__all__ = [
    "RetrainOutcome",
    "Retrainer",
    "promoted_artefact",
    "scaler_state",
    "serving_artefact",
    "train_job",
    "training_payload",
]

Background = Literal["process", "thread", "inline"]
_log = logging.getLogger("streamvae.retrain")


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    """What one retrain did: why it ran, the gate's decision, the version it produced.

    Example:
        >>> from streamvae.retraining import GateDecision
        >>> RetrainOutcome("drift", GateDecision(False, "rejected: …", 0.8, 0.9, 100), None,
        ...                4000, 12.5).promoted
        False
    """

    reason: str
    decision: GateDecision
    version: str | None  # the registered/serving version when promoted
    n_train: int
    seconds: float
    at_ts: float | None = None  # event time of the swap (or of the rejection): the newest window

    @property
    def promoted(self) -> bool:
        return self.version is not None


def scaler_state(
    scaler: StandardScaler | Mapping[str, StandardScaler] | None, channels: Iterable[str]
) -> dict[str, Any] | None:
    """The artefact's scaler slot for a group scaler or per-asset scalers."""
    if scaler is None:
        return None
    if isinstance(scaler, StandardScaler):
        return {"kind": "group", "channels": list(channels), "group": scaler.to_state()}
    return {
        "kind": "per_asset",
        "channels": list(channels),
        "assets": {a: s.to_state() for a, s in scaler.items()},
    }


def serving_artefact(detector: Detector) -> bytes:
    """The serving model with the scalers it scores with, as a trainer needs it (no
    thresholds: their baselines are megabytes, and a candidate recalibrates anyway)."""
    assert detector.model is not None
    return dumps_artefact(detector.model, scaler=detector.scalers_state())[0]


def promoted_artefact(candidate: Artefact, metadata: Mapping[str, Any]) -> bytes:
    """A gated candidate re-serialised with its version and provenance in the manifest."""
    return dumps_artefact(
        candidate.model,
        train_config=candidate.train_config,
        scaler=candidate.scaler,
        metadata=metadata,
    )[0]


def training_payload(
    config: DetectorConfig, data: TrainingSet, serving: bytes, reason: str
) -> dict[str, Any]:
    """What :func:`train_job` needs, as plain values (it crosses into another process)."""
    return {
        "serving": serving,
        "values": data.values,
        "assets": list(data.assets),
        "end_ts": data.end_ts,
        "retrain": config.retrain.to_dict(),
        "train": config.train.to_dict(),
        "scoring": config.scoring.to_dict(),
        "group": config.scaling == "group",
        "min_scale_fraction": config.min_scale_fraction,
        "channels": list(config.window.channels),
        "reason": reason,
    }


def train_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Runs in the background (a process or a thread): everything crosses as bytes/arrays."""
    from streamvae.config import ScoringConfig, TrainConfig
    from streamvae.detector import _scalers_of
    from streamvae.retraining import RetrainConfig

    started = time.perf_counter()
    serving = loads_artefact(payload["serving"], "<serving model>")
    serving_scaler = _scalers_of(serving.scaler)
    assert serving_scaler is not None
    data = TrainingSet(payload["values"], tuple(payload["assets"]), payload["end_ts"])
    candidate = train_candidate(
        data,
        serving.model,
        serving_scaler,
        RetrainConfig.from_dict(payload["retrain"]),
        TrainConfig.from_dict(payload["train"]),
        ScoringConfig.from_dict(payload["scoring"]),
        group_scaling=payload["group"],
        min_scale_fraction=payload["min_scale_fraction"],
        reason=payload["reason"],
    )
    artefact = None
    if candidate.model is not None and candidate.decision.promote:
        artefact = dumps_artefact(
            candidate.model,
            train_config=TrainConfig.from_dict(payload["train"]),
            scaler=scaler_state(candidate.scaler, payload["channels"]),
        )[0]
    return {
        "decision": candidate.decision,
        "artefact": artefact,
        "n_train": candidate.n_train,
        "seconds": time.perf_counter() - started,
    }


def _init_process(threads: int) -> None:
    """The trainer process: bounded torch threads, and it dies with its parent."""
    torch.set_num_threads(threads)
    die_with_parent()


def die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies, so a killed service
    or program never leaves a trainer behind (a no-op elsewhere)."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - no libc
        pass


class Retrainer:
    """The retrain side loop for one Detector (see the module docstring).

    ``registry`` receives every promoted version (and names it: the next free version);
    without one, versions count up from the detector's. ``history`` keeps the last 50
    outcomes; ``promoted`` / ``rejected`` count them.

    Example:
        >>> # r = Retrainer(detector, background="inline")
        >>> # (no wall clock in the core: a version records the event time it was promoted at;
        >>> # the service adds the wall-clock ``created``)
        >>> # r.retrain_now()      # train, gate, swap (or not) right away
    """

    def __init__(
        self,
        detector: Detector,
        registry: ModelRegistry | None = None,
        *,
        background: Background = "process",
        torch_threads: int = 1,
    ) -> None:
        if background not in ("process", "thread", "inline"):
            raise ValueError(
                f"background must be 'process', 'thread' or 'inline', got {background!r}"
            )
        self.detector = detector
        self.registry = registry
        self.background = background
        self.torch_threads = torch_threads
        self.history: deque[RetrainOutcome] = deque(maxlen=50)
        self.promoted = 0
        self.rejected = 0
        self._pool: cf.Executor | None = None
        self._future: cf.Future[dict[str, Any]] | None = None
        self._reason = ""

    # ------------------------------------------------------------------ the loop

    def process(self, readings: Iterable[Reading]) -> list[AlertEvent]:
        """``detector.process(readings)``, then the side loop (swap a finished candidate in,
        start a retrain that is due)."""
        alerts = self.detector.process(readings)
        self.poll()
        return alerts

    def poll(self) -> RetrainOutcome | None:
        """Between batches: finish a retrain whose result is in, or start one that is due."""
        if self._future is not None:
            if not self._future.done():
                return None
            return self._finish()
        reason = self.detector.retrain_due()
        if reason is not None:
            self.start(reason)
            if self.background == "inline":
                return self._finish()
        return None

    @property
    def training(self) -> bool:
        """True while a retrain runs in the background."""
        return self._future is not None

    def retrain_now(self, reason: str = "manual") -> RetrainOutcome:
        """Train, gate and (maybe) swap now, whatever the trigger says; blocks."""
        if self._future is None:
            self.start(reason)
        assert self._future is not None
        self._future.result()
        return self._finish()

    def start(self, reason: str) -> None:
        d = self.detector
        if d.model is None:
            raise RuntimeError("retrain: the detector has no model yet (still warming up)")
        if self._future is not None:
            return
        data = d.training_set()
        cfg = d.config
        payload = training_payload(cfg, data, serving_artefact(d), reason)
        d.retrain_started()
        self._reason = reason
        _log.info(
            "retraining model %s (%s) on %d buffered normal windows",
            d.model_version,
            reason,
            len(data),
            extra={"reason": reason, "windows": len(data)},
        )
        if self.background == "inline":
            future: cf.Future[dict[str, Any]] = cf.Future()
            future.set_result(train_job(payload))
            self._future = future
            return
        if self._pool is None:
            if self.background == "process":
                self._pool = cf.ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_process,
                    initargs=(self.torch_threads,),
                )
            else:
                self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="streamvae-retrain")
        self._future = self._pool.submit(train_job, payload)

    def _finish(self) -> RetrainOutcome:
        future, self._future = self._future, None
        assert future is not None
        try:
            result = future.result()
        except Exception as exc:  # a crashed trainer is a rejected candidate, not an outage
            failed = GateDecision(False, f"rejected: training failed ({exc!r})", np.nan, np.nan, 0)
            result = {"decision": failed, "artefact": None, "n_train": 0, "seconds": 0.0}
        decision: GateDecision = result["decision"]
        at_ts = self.detector.trigger.last_ts
        version = None
        if decision.promote and result["artefact"] is not None:
            version = self._install(result["artefact"], decision)
            self.promoted += 1
        else:
            self.rejected += 1
        outcome = RetrainOutcome(
            self._reason, decision, version, int(result["n_train"]), float(result["seconds"]), at_ts
        )
        self.history.append(outcome)
        _log.info(
            "retrain (%s): %s; serving %s",
            self._reason,
            decision.reason,
            self.detector.model_version,
            extra={"reason": self._reason, "decision": decision.to_dict(), "version": version},
        )
        return outcome

    def _install(self, artefact: bytes, decision: GateDecision) -> str:
        """Register (when there is a registry) and swap the candidate in, between batches."""
        d = self.detector
        art = loads_artefact(artefact, "<candidate>")
        if self.registry is not None:
            version = self.registry.next_version()
        else:
            version = version_name(version_number(d.model_version, 0) + 1)
        metadata = {
            "model_version": version,
            "promoted_at_event_time": self.detector.trigger.last_ts,
            "reason": self._reason,
            "previous": d.model_version,
            "gate": decision.to_dict(),
        }
        data = promoted_artefact(art, metadata)
        if self.registry is not None:
            version = self.registry.save(data, version)
        from streamvae.detector import _scalers_of

        model: RecurrentVAE = art.model
        d.swap_model(model, version, _scalers_of(art.scaler))
        return version

    def close(self) -> None:
        """Stop the background trainer (a retrain in flight is abandoned)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._future = None
