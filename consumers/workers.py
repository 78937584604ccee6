"""Scoring worker processes: decode and detect beside the consumer, on other cores.

Why processes: everything but torch's kernels holds the GIL, and decoding plus detecting cost
about twice what kafka-python's fetch does per record (``docs/service.md``, *Measured*). In one
process the service could never get near the consume-only ceiling; with the consumer in the
main process and the Detectors in ``run.workers`` worker processes, fetch, decode and scoring
run in parallel.

How records are split. Every input partition is sharded over the workers by its records' Kafka
key (``crc32(key) % workers``; a record without a key goes to worker 0): worker ``i`` owns
shard ``i`` of every partition, with its own ``Detector`` and ``ReadingDecoder``. That needs
every reading of an asset to carry the same key — what a producer keyed by asset does, and what
keeps an asset's readings in one partition in the first place. Within a worker, messages are
handled in the order they were sent (one pipe), so an asset's readings stay in offset order and
a snapshot request sees every batch sent before it.

The protocol (tuples pickled over a ``multiprocessing`` pipe, main → worker):

- ``("assign", tp, state | None, offset, reuse)`` — own shard ``i`` of partition ``tp``
  (``(topic, partition)``): restore ``state`` (the shard's part of a checkpoint), or reuse
  the shard parked by a drop at ``offset``, or start fresh; replies ``("assigned", tp, ready)``.
- ``("records", tp, seq, values, offsets)`` — decode and detect a batch; replies ``("done",
  tp, seq, n, rejections, alerts, windows_scored, seconds, ready, model_version, scores,
  warmup)`` with rejections as ``(index, reason, message)``, alerts as :class:`AlertOut`,
  scores as ``(asset key, JSON)`` per scored window (only with ``WorkerSpec.scores``) and
  warmup as the shard's :attr:`Detector.warmup_progress`. While a shard trains its first
  model it sends ``("progress", epoch, epochs)`` after every epoch.
- ``("snapshot", request, [(tp, offset)], drop)`` — the JSON state of those shards; dropped
  shards are parked under their offset (a re-assignment of our own checkpoint needs no
  restore); replies ``("snapshot", request, {tp: (json, model)}, (active alerts,
  thresholds, assets))`` (the assets only with several workers).
- ``("swap", version, artefact)`` — a newer group model (from the models topic): every shard
  with an older model swaps to it between two batches, and new shards start from it; replies
  ``("swapped", version, shards)``.
- ``("training", request)`` — the buffered normal windows of every shard and the serving
  model, for the group's trainer; replies ``("training", request, values, assets, end_ts,
  serving artefact, serving version)``. ``("retrain_started",)`` restarts the shards' clocks.
- ``("stop",)`` — reply ``("bye",)`` and exit.

A worker forwards its log records to the main process (``("log", record dict)``), so the
service writes one stream in one format. It ignores SIGINT/SIGTERM (the main process drives a
graceful shutdown) and exits when the main process dies (the pipe closes; on Linux it also
asks the kernel for SIGKILL on its parent's death).

Example:
    >>> shard_of(b"pump-7", 4), shard_of(None, 4), shard_of(b"pump-7", 1)
    (3, 0, 0)
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import numpy as np

from streamvae.registry import version_number

__all__ = ["AlertOut", "WorkerError", "WorkerPool", "WorkerSpec", "shard_of"]

PartitionKey = tuple[str, int]
_log = logging.getLogger("streamvae.workers")


class WorkerError(RuntimeError):
    """A worker process failed or exited; the service stops (offsets stay checkpointed)."""


def shard_of(key: bytes | None, workers: int) -> int:
    """The worker that owns records with this Kafka key (stable across runs and hosts)."""
    if workers == 1 or key is None:
        return 0
    return zlib.crc32(key) % workers


class AlertOut(NamedTuple):
    """An alert as the main process produces it (already encoded by the worker)."""

    dedup_key: str
    value: bytes
    status: str
    asset: str
    summary: str
    id: str


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker needs to build its Detectors (picklable: it crosses a process spawn).

    Example:
        >>> import streamvae as sv
        >>> spec = WorkerSpec(0, 2, sv.DetectorConfig(window=sv.WindowConfig(channels=("t",))),
        ...                   sv.ReadingConfig(), None)
        >>> spec.index, spec.workers
        (0, 2)
    """

    index: int
    workers: int
    detector: Any  # streamvae.DetectorConfig
    readings: Any  # streamvae.ReadingConfig
    model: str | None  # an artefact path to start new shards from
    torch_threads: int = 1
    log_level: str = "INFO"
    scores: bool = False  # send every scored window's score (kafka.scores_topic is set)


# ---------------------------------------------------------------------------- main process


class WorkerPool:
    """``workers`` scoring processes and the threads that talk to them.

    ``handle(worker, message)`` is called for every reply, on that worker's reader thread (one
    per worker, so a worker's replies are handled in order). Sends never block the caller: each
    worker has a sender thread draining an unbounded queue (the service bounds what is in
    flight with its own backpressure).

    Example:
        >>> # pool = WorkerPool(specs, handle).start(); pool.send(0, ("stop",)); pool.join(5)
    """

    def __init__(self, specs: list[WorkerSpec], handle: Callable[[int, tuple[Any, ...]], None]):
        self.specs = specs
        self.workers = len(specs)
        self._handle = handle
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[Any] = []
        self._conns: list[Connection] = []
        self._queues: list[queue.SimpleQueue[Any]] = []
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._on_error: Callable[[BaseException], None] | None = None

    def start(self, on_error: Callable[[BaseException], None]) -> WorkerPool:
        self._on_error = on_error
        for spec in self.specs:
            mine, theirs = self._ctx.Pipe(duplex=True)
            proc = self._ctx.Process(
                target=worker_main,
                args=(theirs, spec),
                name=f"streamvae-worker-{spec.index}",
                daemon=True,
            )
            proc.start()
            theirs.close()  # the worker holds the only other end: its death closes the pipe
            self._procs.append(proc)
            self._conns.append(mine)
            q: queue.SimpleQueue[Any] = queue.SimpleQueue()
            self._queues.append(q)
            for target, kind in ((self._send_loop, "send"), (self._read_loop, "read")):
                t = threading.Thread(
                    target=target,
                    args=(spec.index,),
                    name=f"streamvae-worker-{spec.index}-{kind}",
                    daemon=True,
                )
                t.start()
                self._threads.append(t)
        return self

    def send(self, worker: int, message: tuple[Any, ...]) -> None:
        self._queues[worker].put(message)

    def broadcast(self, message: tuple[Any, ...]) -> None:
        for q in self._queues:
            q.put(message)

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def _fail(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(exc)

    def _send_loop(self, i: int) -> None:
        conn, q = self._conns[i], self._queues[i]
        while True:
            message = q.get()
            if message is None:
                return
            try:
                conn.send(message)
            except (OSError, ValueError) as exc:  # the worker is gone: the reader says why
                if not self._closing:
                    self._fail(WorkerError(f"worker {i} does not take work any more: {exc}"))
                return
            if message[0] == "stop":
                return

    def _read_loop(self, i: int) -> None:
        conn = self._conns[i]
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                if not self._closing:
                    proc = self._procs[i]
                    proc.join(1.0)
                    self._fail(
                        WorkerError(
                            f"worker {i} (pid {proc.pid}) exited unexpectedly with code "
                            f"{proc.exitcode} (killed for memory? see the log above)"
                        )
                    )
                return
            kind = message[0]
            if kind == "log":
                record = logging.makeLogRecord(message[1])
                logging.getLogger(record.name).handle(record)
                continue
            if kind == "error":
                self._fail(WorkerError(f"worker {i} failed:\n{message[1]}"))
                return
            if kind == "bye":
                return
            try:
                self._handle(i, message)
            except BaseException as exc:
                _log.exception("handling a reply of worker %d failed", i)
                self._fail(exc)
                return

    def join(self, timeout_s: float) -> None:
        """Ask every worker to stop, wait up to ``timeout_s`` in all, kill the ones left."""
        self._closing = True
        for q in self._queues:
            q.put(("stop",))
        deadline = time.monotonic() + timeout_s
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        for q in self._queues:
            q.put(None)
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()


# ---------------------------------------------------------------------------- worker process


class _PipeLogHandler(logging.Handler):
    """Sends log records to the main process, which formats and writes them."""

    def __init__(self, conn: Connection, index: int) -> None:
        super().__init__()
        self.conn = conn
        self.index = index

    def emit(self, record: logging.LogRecord) -> None:
        try:
            d = dict(record.__dict__)
            d["msg"] = record.getMessage()
            d["args"] = None
            d["exc_info"] = None
            if record.exc_info:
                d["exc_text"] = logging.Formatter().formatException(record.exc_info)
            d.setdefault("worker", self.index)
            for k, v in list(d.items()):  # extras must survive pickling
                if not isinstance(v, str | int | float | bool | type(None) | dict | list | tuple):
                    d[k] = repr(v)
            self.conn.send(("log", d))
        except Exception:
            self.handleError(record)


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """A worker process's life: build, then serve messages until ``stop`` or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from streamvae.continual import die_with_parent

    die_with_parent()
    logger = logging.getLogger("streamvae")
    logger.handlers[:] = [_PipeLogHandler(conn, spec.index)]
    logger.setLevel(spec.log_level)
    logger.propagate = False
    try:
        worker = _Worker(conn, spec)
        worker.serve()
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the main process is gone
    except BaseException:
        with contextlib.suppress(Exception):
            conn.send(("error", traceback.format_exc()))
        os._exit(1)


class _Worker:
    def __init__(self, conn: Connection, spec: WorkerSpec) -> None:
        import river.drift  # noqa: F401  (the retrain trigger's ADWIN: ~1 s of imports, paid
        import torch  # at spawn, beside the group join, not on the first assignment)

        import streamvae as sv
        from streamvae.detector import threshold_seeds_of

        torch.set_num_threads(spec.torch_threads)
        self.sv = sv
        self.conn = conn
        self.spec = spec
        self.artefact = sv.load_artefact(spec.model) if spec.model else None
        self.seeds = threshold_seeds_of(self.artefact) if self.artefact is not None else {}
        self.parts: dict[PartitionKey, tuple[Any, Any]] = {}  # tp → (detector, decoder)
        self.parked: dict[PartitionKey, tuple[Any, Any, int]] = {}
        self.latest: Any = None  # the newest group model announced (an Artefact)
        self.latest_version = ""

    def serve(self) -> None:
        conn = self.conn
        while True:
            message = conn.recv()
            kind = message[0]
            if kind == "records":
                self._records(*message[1:])
            elif kind == "assign":
                self._assign(*message[1:])
            elif kind == "snapshot":
                self._snapshot(*message[1:])
            elif kind == "swap":
                self._swap(*message[1:])
            elif kind == "training":
                self._training(*message[1:])
            elif kind == "retrain_started":
                for detector, _ in self.parts.values():
                    if detector.ready:
                        detector.retrain_started()
            elif kind == "stop":
                conn.send(("bye",))
                return
            else:
                raise ValueError(f"unknown message {kind!r}")

    def _fresh(self) -> tuple[Any, Any]:
        sv = self.sv
        if self.latest is not None:
            detector = sv.Detector.from_artefact(self.spec.detector, self.latest)
            detector.model_version = self.latest_version
        elif self.artefact is not None:
            detector = sv.Detector.from_artefact(self.spec.detector, self.artefact)
        else:
            detector = sv.Detector(self.spec.detector)
        return detector, sv.ReadingDecoder(self.spec.readings)

    def _epoch(self, report: Any) -> None:
        self.conn.send(("progress", report.epoch, report.epochs))

    def _assign(
        self, tp: PartitionKey, state: dict[str, Any] | None, offset: int | None, reuse: bool
    ) -> None:
        sv = self.sv
        parked = self.parked.pop(tp, None)
        if reuse and parked is not None and parked[2] == offset:
            self.parts[tp] = (parked[0], parked[1])
        elif state is not None:
            detector = sv.Detector.restore(
                self.spec.detector, state["detector"], threshold_seeds=self.seeds
            )
            decoder = sv.ReadingDecoder.restore(self.spec.readings, state["decoder"])
            self.parts[tp] = (detector, decoder)
        else:
            self.parts[tp] = self._fresh()
        detector = self.parts[tp][0]
        if not detector.ready:
            detector.progress = self._epoch
        self._catch_up(detector)
        self.conn.send(("assigned", tp, _ready(detector), detector.model_version))

    def _catch_up(self, detector: Any) -> bool:
        """Swap to the newest group model if this detector's is older (or it has none)."""
        if self.latest is None:
            return False
        serving, latest = (
            version_number(v, 0) for v in (detector.model_version, self.latest_version)
        )
        if detector.ready and serving >= latest:
            return False
        from streamvae.detector import _scalers_of

        detector.swap_model(self.latest.model, self.latest_version, _scalers_of(self.latest.scaler))
        return True

    def _swap(self, version: str, data: bytes) -> None:
        if version_number(version, 0) <= version_number(self.latest_version, 0):
            return
        previous = self.latest, self.latest_version
        try:
            self.latest = self.sv.loads_artefact(data, f"<model {version} from the models topic>")
            self.latest_version = version
            self.sv.check_model_fits(self.spec.detector.window, self.latest.model, version)
        except Exception as exc:  # a model that cannot serve here must not stop the worker
            self.latest, self.latest_version = previous
            logging.getLogger("streamvae.workers").error(
                "worker %d: refused model %s, the current one keeps serving: %s",
                self.spec.index,
                version,
                exc,
            )
            return
        swapped = sum(self._catch_up(d) for d, _ in self.parts.values())
        swapped += sum(self._catch_up(d) for d, _, _ in self.parked.values())
        logging.getLogger("streamvae.workers").info(
            "worker %d: %d shard(s) now score with model %s",
            self.spec.index,
            swapped,
            version,
            extra={"version": version, "shards": swapped},
        )
        self.conn.send(("swapped", version, swapped))

    def _training(self, request: int) -> None:
        from streamvae.continual import serving_artefact

        sets = []
        serving: bytes | None = None
        version = ""
        for detector, _ in self.parts.values():
            if not detector.ready:
                continue
            sets.append(detector.training_set())
            if serving is None:
                serving = serving_artefact(detector)
                version = detector.model_version
        if sets:
            values = np.concatenate([t.values for t in sets])
            assets = [a for t in sets for a in t.assets]
            end_ts = np.concatenate([t.end_ts for t in sets])
        else:
            values, assets, end_ts = None, [], None
        self.conn.send(("training", request, values, assets, end_ts, serving, version))

    def _records(
        self, tp: PartitionKey, seq: int, values: list[bytes | None], offsets: bytes
    ) -> None:
        sv = self.sv
        part = self.parts.get(tp)
        if part is None:  # dropped while queued: the partition's next owner replays it
            self.conn.send(("done", tp, seq, len(values), [], [], 0, 0.0, 0, "", [], 0.0))
            return
        detector, decoder = part
        topic, partition = tp
        offs = array("q")
        offs.frombytes(offsets)
        readings = []
        rejections = []
        decode, ref, reading_type = decoder.decode, sv.SourceRef, sv.Reading
        for i, (value, offset) in enumerate(zip(values, offs, strict=True)):
            item = decode(value, ref(topic, partition, offset))
            if type(item) is reading_type:
                readings.append(item)
            else:
                rejections.append((i, item.reason.value, item.message))
        before = detector.stats.windows_scored
        was_ready = detector.ready
        started = time.perf_counter()
        scores: list[tuple[bytes, bytes]] = []
        if self.spec.scores:
            result = detector.process_detailed(readings)
            alerts = result.alerts
            scores = [_score_record(w) for w in result.scored]
        else:
            alerts = detector.process(readings)
        seconds = time.perf_counter() - started
        fit = detector.last_fit
        if not was_ready and detector.ready and fit is not None:
            _log.info(
                "worker %d: first model %s of %s/%d trained on %d windows (%d epochs, %.1f s)",
                self.spec.index,
                detector.model_version,
                topic,
                partition,
                fit.n_train,
                fit.epochs_run,
                seconds,
                extra={"version": detector.model_version, "windows": fit.n_train},
            )
        out = [
            AlertOut(a.dedup_key, a.to_json(), a.status, a.asset, a.summary, a.id) for a in alerts
        ]
        self.conn.send(
            (
                "done",
                tp,
                seq,
                len(values),
                rejections,
                out,
                detector.stats.windows_scored - before,
                seconds,
                _ready(detector),
                detector.model_version,
                scores,
                detector.warmup_progress,
            )
        )

    def _snapshot(
        self, request: int, wanted: list[tuple[PartitionKey, int]], drop: list[PartitionKey]
    ) -> None:
        states: dict[PartitionKey, tuple[bytes, tuple[str, str] | None]] = {}
        for tp, _ in wanted:
            part = self.parts.get(tp)
            if part is None:
                continue
            detector, decoder = part
            snap = detector.snapshot(include_model=True)
            body = json.dumps(
                {"detector": snap, "decoder": decoder.snapshot()},
                separators=(",", ":"),
                allow_nan=False,
            ).encode()
            model = snap.get("model")
            info = (str(model["version"]), str(model["hash"])) if model else None
            states[tp] = (body, info)
        offsets = dict(wanted)
        for tp in drop:
            part = self.parts.pop(tp, None)
            if part is not None and tp in offsets:
                self.parked[tp] = (part[0], part[1], offsets[tp])
        active = 0
        thresholds: dict[str, float] = {}
        assets: set[str] = set()
        due: list[str] = []
        buffered = 0
        for detector, _ in self.parts.values():
            reason = detector.retrain_due()
            if reason is not None:
                due.append(reason)
            buffered += len(detector.training)
            active += len(detector.alerter.active())
            for asset in detector.thresholds.assets:
                thresholds[asset] = detector.thresholds.get(asset)
            if self.spec.workers > 1:  # the main process checks no asset is in two workers
                assets.update(detector.windower.assets)
        self.conn.send(("snapshot", request, states, (active, thresholds, assets, due, buffered)))


def _score_record(w: Any) -> tuple[bytes, bytes]:
    """A scored window as the scores topic carries it: keyed by asset, times in epoch s."""
    contributions = w.contributions
    top = max(contributions, key=contributions.get) if contributions else ""
    doc = {
        "asset": w.window.asset,
        "ts": w.window.end_ts,
        "score": _finite(w.score),
        "threshold": _finite(w.threshold),
        "anomalous": w.anomalous,
        "model_version": w.model_version,
        "top_channel": top,
    }
    return w.window.asset.encode(), json.dumps(doc, separators=(",", ":")).encode()


def _finite(x: float) -> float | None:
    return round(x, 4) if np.isfinite(x) else None  # JSON has no NaN or infinity


def _ready(detector: Any) -> int:
    """0: the shard has seen no reading (no key maps to it yet: it must not hold readiness
    back), 1: readings but no model yet (warming up), 2: a model to score with."""
    if detector.ready:
        return 2
    return 1 if detector.stats.readings else 0
