"""The Kafka service: a consumer group in, alerts out, dead letters aside, state checkpointed.

The main process talks to Kafka; ``run.workers`` worker processes decode and detect
(``consumers/workers.py``: everything but torch's kernels holds the GIL, so one process could
never score as fast as kafka-python fetches). Threads of the main process, one job each
(DESIGN §5):

- The **consumer thread** owns the ``KafkaConsumer`` (it is not thread-safe): it polls, drops
  records already processed (fetched before a seek took effect), splits each partition's batch
  by Kafka key over the workers (an asset's readings always go to the same worker), pauses
  every assigned partition when more than ``run.max_in_flight_records`` records wait (and
  resumes at half), asks the workers for their state every ``run.checkpoint_interval_s``,
  commits offsets made safe, and runs the rebalance callbacks. It never waits on scoring (a
  first model training takes seconds), so the group never drops the instance for exceeding
  ``max.poll.interval.ms``.
- A **sender** and a **reader thread per worker**: the sender pickles work down the worker's
  pipe; the reader handles its replies in order — dead letters and alerts (keyed by
  ``dedup_key``) go to the idempotent acks=all producer, metrics are counted, a batch is
  complete once every worker that got part of it has replied.
- The **checkpoint thread**: once every worker has answered a snapshot request, it flushes
  the producer, checks that the broker acknowledged every alert and dead letter sent before,
  writes the partitions' state (every worker's shard, at the offset of the next record) to the
  state topic, and only then hands the offsets to the consumer thread to commit.

At-least-once, end to end: an offset is committed only after the alerts of every record before
it are acknowledged by the broker and the state that produced them is durable. A crash replays
from the last checkpoint with that checkpoint's state, so replayed alerts carry identical ids.

On assignment the consumer thread reads the partitions' checkpoints and seeks each partition
to its checkpoint's offset (the checkpoint, not the committed offset, is the truth: it is the
offset the state belongs to). On revocation it has the workers snapshot and drop the revoked
partitions, writes their checkpoints and commits. SIGTERM/SIGINT (``Service.stop``) do the
same for every partition, then the consumer leaves the group and the workers exit.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import multiprocessing
import queue
import threading
import time
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka.admin import NewTopic
from kafka.errors import KafkaError

import streamvae as sv
from consumers.checkpoint import Checkpoint, CheckpointError, KafkaCheckpointStore
from consumers.metrics import HealthServer, ServiceMetrics
from consumers.settings import Settings
from consumers.workers import AlertOut, WorkerPool, WorkerSpec, shard_of
from streamvae.continual import promoted_artefact, train_job, training_payload
from streamvae.registry import version_name, version_number

__all__ = ["STATE_FORMAT", "Service", "ServiceError", "dlq_headers", "shards_of_state"]

STATE_FORMAT = 2  # {"format": 2, "workers": N, "shards": [{"detector": …, "decoder": …}, …]}
_log = logging.getLogger("streamvae.service")
_CLOUDEVENTS = ("content-type", b"application/cloudevents+json; charset=UTF-8")
# a worker's shard of a partition: no reading yet / readings but no model yet / a model
_EMPTY, _WARMING, _SCORING = 0, 1, 2


class ServiceError(RuntimeError):
    """The service cannot go on (a worker failed, the broker refused a write)."""


class _Postponed(RuntimeError):
    """A checkpoint that could not be made durable yet (the broker did not answer in time):
    nothing is committed, and the next checkpoint tries again."""


def dlq_headers(record: Any, reason: str, message: str) -> list[tuple[str, bytes]]:
    """The original headers plus Kafka Connect's error headers and our reason code."""
    headers = list(record.headers or [])
    headers += [
        ("__connect.errors.topic", record.topic.encode()),
        ("__connect.errors.partition", str(record.partition).encode()),
        ("__connect.errors.offset", str(record.offset).encode()),
        ("__connect.errors.exception.class.name", b"streamvae.RejectedReading"),
        ("__connect.errors.exception.message", message.encode("utf-8", "replace")),
        ("streamvae.reject.reason", reason.encode()),
    ]
    return headers


def shards_of_state(where: str, state: Mapping[str, Any], workers: int) -> list[Any]:
    """The per-worker shards of a checkpoint's state, checked against this run's worker count.

    Format 1 (one detector per partition, before worker processes) is one shard.

    Example:
        >>> shards_of_state("t/0", {"format": 2, "workers": 1, "shards": [{}]}, 1)
        [{}]
    """
    fmt = state.get("format")
    if fmt == 1:
        shards = [{"detector": state["detector"], "decoder": state["decoder"]}]
    elif fmt == STATE_FORMAT:
        shards = list(state["shards"])
    else:
        raise ServiceError(
            f"checkpoint of {where} has state format {fmt!r}, expected 1 or {STATE_FORMAT}: it "
            "was written by a newer streamvae; run that version (or a newer one)"
        )
    if len(shards) != workers:
        raise ServiceError(
            f"checkpoint of {where} was written with run.workers = {len(shards)} and this "
            f"instance runs {workers}: each worker owns the assets whose keys hash to it, so "
            f"the state cannot be split another way. Run with run.workers = {len(shards)} "
            "(every instance of the group alike), or start cold under a new kafka.group_id "
            "(the state and open alerts of the old group are not carried over)"
        )
    return shards


@dataclass(slots=True, eq=False)
class _Partition:
    """What the main process knows of an input partition (the workers hold its state)."""

    tp: TopicPartition
    workers: int
    dispatched: int | None = None  # offset after the last record sent to the workers
    completed: int | None = None  # offset after the last record every worker has finished
    checkpointed: int | None = None  # the offset of the last durable checkpoint
    seq: int = 0
    restoring: int = 0  # workers that have not confirmed the assignment yet
    shards: list[int] = field(default_factory=list)  # _EMPTY / _WARMING / _SCORING per worker

    def __post_init__(self) -> None:
        self.shards = [_EMPTY] * self.workers

    @property
    def key(self) -> tuple[str, int]:
        return (self.tp.topic, self.tp.partition)

    @property
    def dirty(self) -> bool:
        return self.dispatched is not None and self.dispatched != self.checkpointed

    @property
    def scoring(self) -> bool:
        return _SCORING in self.shards and _WARMING not in self.shards


@dataclass(slots=True, eq=False)
class _Batch:
    """One polled batch of a partition, out at the workers."""

    part: _Partition
    end: int  # offset after its last record
    newest_ms: int | None  # the newest record timestamp (end-to-end latency)
    started: float
    remaining: int  # workers yet to reply
    records: dict[int, list[Any]]  # worker → its records (for dead letters)


@dataclass(slots=True, eq=False)
class _Snapshot:
    """A snapshot request to every worker; complete when all of them replied."""

    id: int
    wanted: list[tuple[_Partition, int]]  # partition, the offset the state belongs to
    remaining: int
    background: bool
    states: dict[int, dict[tuple[str, int], tuple[bytes, Any]]] = field(default_factory=dict)
    gauges: dict[int, tuple[int, dict[str, float], set[str], list[str], int]] = field(
        default_factory=dict
    )
    pending: list[_Sent] = field(default_factory=list)  # sends to check first
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(slots=True, eq=False)
class _Sent:
    """A record handed to the producer, kept until a checkpoint has seen it acknowledged: a
    broker that lost the producer's id (restarted without its data) fails such sends for good,
    and they are sent once more, in order, rather than lost or turned into a restart."""

    future: Any
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None
    resent: bool = False

    @property
    def is_done(self) -> bool:
        return bool(self.future.is_done)

    @property
    def acked(self) -> bool:
        return bool(self.future.is_done and self.future.succeeded())

    def resend(self, producer: KafkaProducer) -> None:
        self.future = producer.send(
            self.topic, key=self.key, value=self.value, headers=self.headers
        )
        self.resent = True


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: Service) -> None:
        self.service = service

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.service._on_revoked(list(revoked))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.service._on_assigned(list(assigned))


class Service:
    """``streamvae run``: the Detector behind a Kafka consumer group (see module docstring).

    Example:
        >>> # settings = Settings.load("streamvae.toml")
        >>> # raise SystemExit(Service(settings).run())   # blocks; stop() from a signal handler
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics | None = None,
        role: Literal["serve", "train"] = "serve",
    ) -> None:
        if role not in ("serve", "train"):
            raise ValueError(f"role must be 'serve' or 'train', got {role!r}")
        self.settings = settings
        self.metrics = metrics or ServiceMetrics()
        # "train" (`streamvae train --follow`): the same pipeline in its own consumer group
        # (``<group_id>.trainer``), publishing nothing but models for the serving group
        self.role = role
        self._group = settings.kafka.group_id + (".trainer" if role == "train" else "")
        k = settings.kafka
        # kafka-python backs reconnects off exponentially up to 30 s (the Java client: 1 s),
        # so after a long outage the service stayed unready for up to 30 s more than the
        # outage lasted (measured: 53 s after a 30 s cut); 2 s caps that cost
        self._kwargs: dict[str, Any] = {
            "reconnect_backoff_max_ms": 2000,
            **settings.kafka.security.kafka_kwargs(),
        }
        self._bootstrap = list(k.bootstrap_servers)
        self._workers = settings.run.workers
        if settings.run.model:
            sv.load_artefact(settings.run.model)  # a bad artefact fails here, not in a worker
        self._stopping = threading.Event()
        self._commits: queue.Queue[dict[TopicPartition, int]] = queue.Queue()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._paused = False
        self._parts: dict[TopicPartition, _Partition] = {}  # assigned, state at the workers
        self._parked: dict[TopicPartition, int | None] = {}  # dropped → offset checkpointed
        self._assigned: set[TopicPartition] = set()
        self._to_assign: list[TopicPartition] = []  # assigned by the group, state not loaded
        self._closing = False
        self._restored: set[TopicPartition] = set()  # every worker has the partition's state
        self._worker_error: BaseException | None = None
        self._batches: dict[tuple[tuple[str, int], int], _Batch] = {}
        self._warmup: dict[tuple[tuple[str, int], int], float] = {}  # (tp, worker) → 0..1
        self._snapshots: dict[int, _Snapshot] = {}
        self._snapshot_ids = itertools.count(1)
        self._pending: list[_Sent] = []  # records sent since the last snapshot
        self._last_checkpoint = time.monotonic()
        self._cp_busy = threading.Event()  # a background checkpoint is being taken
        self._split_warned = -1e9  # when assets split over workers were last reported
        # a broker outage: since when poll() has failed (or the coordinator is unknown), and why
        self._broker_down_since: float | None = None
        self._broker_down_reason = ""
        self._broker_warned = -1e9
        self._stalls = 0  # background checkpoints postponed in a row
        # continual learning (docs/continual.md): the group's model version, the trainer
        self._group_version = 0  # the newest version number seen on the models topic
        self._due: list[str] = []  # retrain reasons the workers' shards reported last
        self._buffered = 0
        self._training: _TrainingRequest | None = None
        self._trainer: cf.ProcessPoolExecutor | None = None
        self._train_future: cf.Future[dict[str, Any]] | None = None
        self._train_reason = ""
        self._serving_number = 0  # the version the running retrain started from
        self._models_thread: threading.Thread | None = None
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._store: KafkaCheckpointStore | None = None
        self._pool: WorkerPool | None = None
        self.health: HealthServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the service to shut down gracefully (safe from a signal handler)."""
        self._stopping.set()

    def ready(self) -> tuple[bool, str]:
        """Readiness: partitions assigned, their state restored, a model to score with."""
        down = self._broker_down_since
        if down is not None:
            return False, (
                f"broker unreachable for {time.monotonic() - down:.0f} s "
                f"({self._broker_down_reason}): alerts cannot be delivered"
            )
        assigned = set(self._assigned)
        if not assigned:
            return False, "no partitions assigned yet"
        missing = assigned - self._restored
        if missing:
            return False, f"restoring state of {len(missing)} partition(s)"
        warming = [
            f"{tp.topic}/{tp.partition}"
            for tp, p in list(self._parts.items())
            if tp in assigned and not p.scoring
        ]
        if warming:
            return False, f"warming up (no model yet): {', '.join(sorted(warming))}"
        return True, f"ok: {len(assigned)} partition(s)"

    def run(self) -> int:
        """Run until :meth:`stop`; returns the process exit status (0: clean shutdown)."""
        s = self.settings
        specs = [
            WorkerSpec(
                index=i,
                workers=self._workers,
                detector=s.detector,
                readings=s.readings,
                model=s.run.model,
                torch_threads=s.run.torch_threads,
                log_level=s.run.log_level,
                scores=bool(s.kafka.scores_topic),
            )
            for i in range(self._workers)
        ]
        # the workers import torch and load the model while the topics and clients come up
        self._pool = WorkerPool(specs, self._on_reply).start(self._on_worker_error)
        _log.info("started %d worker process(es): pids %s", self._workers, self._pool.pids())
        try:
            self._start_clients()
        except Exception as exc:
            # without this the worker processes (which ignore SIGTERM) kept the process alive
            # after a traceback: a wrong address or SASL setting hung `streamvae run` for good
            _log.error(
                "cannot reach the brokers at %s: %s: %s; check kafka.bootstrap_servers and "
                "[kafka.security]",
                ",".join(self._bootstrap),
                type(exc).__name__,
                exc,
            )
            self._close(commit=False)
            return 1
        code = 0
        try:
            while not self._stopping.is_set():
                self._raise_worker_error()
                if self.health is not None:
                    self.health.beat()
                self._poll_once()
            code = self._shutdown()
        except Exception:
            _log.exception("the service stops on an error; offsets stay at the last checkpoint")
            code = 1
            self._close(commit=False)
        return code

    def _start_clients(self) -> None:
        """Topics, producer, checkpoint store, the models follower, health, the consumer."""
        s = self.settings
        self._ensure_topics()
        self._producer = self._new_producer()
        self._store = KafkaCheckpointStore(
            self._bootstrap,
            s.kafka.state_topic,
            self._group,
            kafka_kwargs=self._kwargs,
            producer=self._producer,
        )
        self._follow_models()
        if s.run.metrics_port >= 0:
            self.health = HealthServer(
                self.metrics, self.ready, host=s.run.metrics_host, port=s.run.metrics_port
            ).start()
            _log.info("metrics and health on %s", self.health.url, extra={"url": self.health.url})
        self._consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            client_id=s.kafka.client_id,
            enable_auto_commit=False,
            auto_offset_reset=s.kafka.auto_offset_reset,
            max_poll_records=s.kafka.max_poll_records,
            session_timeout_ms=s.kafka.session_timeout_ms,
            heartbeat_interval_ms=s.kafka.heartbeat_interval_ms,
            max_poll_interval_ms=s.kafka.max_poll_interval_ms,
            request_timeout_ms=s.kafka.request_timeout_ms,
            fetch_max_wait_ms=s.kafka.fetch_max_wait_ms,
            **self._kwargs,
        )
        listener = _Listener(self)
        if s.kafka.topic_pattern:
            self._consumer.subscribe(pattern=s.kafka.topic_pattern, listener=listener)
        else:
            self._consumer.subscribe(list(s.kafka.topics), listener=listener)
        _log.info(
            "consuming %s as group %s",
            s.kafka.topic_pattern or ",".join(s.kafka.topics),
            self._group,
        )
        if self.role == "train":
            _log.info(
                "trainer role: no alerts or dead letters; models for group %s go to %s",
                s.kafka.group_id,
                s.kafka.models_topic,
            )

    def _new_producer(self) -> KafkaProducer:
        k = self.settings.kafka
        return KafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=f"{k.client_id}-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=k.request_timeout_ms,
            **self._kwargs,
        )

    def _renew_producer(self, reason: BaseException) -> KafkaProducer:
        """Replace a producer the broker has put in a fatal state (e.g. a restarted broker
        that lost its data refuses the idempotent producer's id for good)."""
        old, new = self._producer, self._new_producer()
        self._producer = new
        self._stalls = 0
        if self._store is not None:
            self._store.use_producer(new)
        _log.warning("replaced the producer after a fatal error: %s", reason)
        if old is not None:
            threading.Thread(target=old.close, kwargs={"timeout": 1}, daemon=True).start()
        return new

    def _raise_worker_error(self) -> None:
        if self._worker_error is not None:
            raise ServiceError(f"the service cannot go on: {self._worker_error}") from (
                self._worker_error
            )

    def _on_worker_error(self, exc: BaseException) -> None:
        if self._worker_error is None:
            self._worker_error = exc
        for snap in list(self._snapshots.values()):
            snap.done.set()  # nobody waits forever on a worker that is gone

    def _poll_once(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        s = self.settings
        try:
            batches = consumer.poll(
                timeout_ms=s.kafka.poll_timeout_ms, max_records=s.kafka.max_poll_records
            )
        except KafkaError as exc:
            # kafka-python 3 lets a failed metadata refresh or coordinator lookup (the broker
            # is unreachable) escape poll(); the client reconnects on the next one, so an
            # outage is waited out (not ready meanwhile), not a reason to stop
            if not exc.retriable:
                raise
            self._broker_unreachable(f"{type(exc).__name__}: {exc}")
            time.sleep(s.kafka.poll_timeout_ms / 1000)
            return
        self._watch_broker(consumer)
        if self._to_assign:
            self._finish_assignment()
        for tp, records in batches.items():
            if records:
                self._dispatch(tp, records)
        self._backpressure()
        self._apply_commits()
        self._maybe_checkpoint()
        self._maybe_retrain()
        self._update_lag()

    def _broker_unreachable(self, reason: str) -> None:
        now = time.monotonic()
        if self._broker_down_since is None:
            self._broker_down_since = now
        self._broker_down_reason = reason
        if now - self._broker_warned >= 10:
            self._broker_warned = now
            _log.warning(
                "the broker is unreachable (%s); not ready, retrying (offsets stay at the last"
                " checkpoint)",
                reason,
            )

    def _watch_broker(self, consumer: KafkaConsumer) -> None:
        # poll() returns quietly through much of an outage: the group coordinator being
        # unknown (dropped when its connection fails) is what says the broker is gone
        coordinator = getattr(consumer, "_coordinator", None)
        if coordinator is not None and getattr(coordinator, "coordinator_id", 0) is None:
            self._broker_unreachable("the group coordinator is unknown")
        elif self._broker_down_since is not None:
            _log.info(
                "the broker is reachable again after %.0f s",
                time.monotonic() - self._broker_down_since,
            )
            self._broker_down_since = None
            self._broker_warned = -1e9
            # a broker that lost its data (an in-memory one restarted, a wiped cluster) has
            # lost our output topics too, and the producer would wait on them forever
            threading.Thread(
                target=self._ensure_topics, name="streamvae-topics", daemon=True
            ).start()

    def _dispatch(self, tp: TopicPartition, records: list[Any]) -> None:
        """Split a polled batch by key over the workers (consumer thread)."""
        self.metrics.records_consumed.labels(topic=tp.topic, partition=str(tp.partition)).inc(
            len(records)
        )
        part = self._parts.get(tp)
        pool = self._pool
        assert pool is not None
        if part is None:
            return  # revoked since the fetch: its next owner reads it from the checkpoint
        if part.dispatched is not None and records[0].offset < part.dispatched:
            # fetched before the seek to the checkpoint took effect: already processed
            records = [r for r in records if r.offset >= part.dispatched]
            if not records:
                return
        workers = self._workers
        split: dict[int, list[Any]]
        if workers == 1:
            split = {0: records}
        else:
            split = {}
            for r in records:
                split.setdefault(shard_of(r.key, workers), []).append(r)
        newest = max((r.timestamp for r in records if r.timestamp is not None), default=None)
        batch = _Batch(part, records[-1].offset + 1, newest, time.perf_counter(), len(split), split)
        seq = part.seq
        part.seq += 1
        with self._lock:
            self._in_flight += len(records)
            self._batches[(part.key, seq)] = batch
        for w, mine in list(split.items()):  # a reader pops its part as soon as it replies
            offsets = array("q", [r.offset for r in mine]).tobytes()
            pool.send(w, ("records", part.key, seq, [r.value for r in mine], offsets))
        part.dispatched = batch.end

    def _backpressure(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        limit = self.settings.run.max_in_flight_records
        with self._lock:
            in_flight = self._in_flight
        self.metrics.in_flight_records.set(in_flight)
        if not self._paused and in_flight >= limit:
            parts = list(consumer.assignment())
            if parts:
                consumer.pause(*parts)
                self._paused = True
                self.metrics.partitions_paused.inc()
                _log.info("paused %d partition(s): %d records in flight", len(parts), in_flight)
        elif self._paused and in_flight <= limit // 2:
            waiting = set(self._to_assign)
            consumer.resume(*[tp for tp in consumer.paused() if tp not in waiting])
            self._paused = False
            _log.info("resumed: %d records in flight", in_flight)

    def _apply_commits(self) -> None:
        while True:
            try:
                offsets = self._commits.get_nowait()
            except queue.Empty:
                return
            self._commit(offsets)

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        consumer = self._consumer
        assert consumer is not None
        owned = {tp: o for tp, o in offsets.items() if tp in self._assigned}
        if not owned:
            return
        try:
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in owned.items()})
        except Exception as exc:
            # The checkpoint already holds these offsets; a failed commit only delays lag metrics
            # and, after a crash, is corrected by the seek to the checkpoint's offset.
            self.metrics.commits.labels(result="error").inc()
            _log.warning("offset commit failed: %s", exc)
        else:
            self.metrics.commits.labels(result="ok").inc()

    def _update_lag(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        for tp in list(self._assigned):
            high = consumer.highwater(tp)
            part = self._parts.get(tp)
            if high is None or part is None or part.completed is None:
                continue
            self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                max(0, high - part.completed)
            )

    def _shutdown(self) -> int:
        _log.info("stopping: finishing the batches in hand, checkpointing, committing")
        deadline = time.monotonic() + self.settings.run.shutdown_timeout_s
        try:
            offsets = self._settle(list(self._parts.values()), drop=True, deadline=deadline)
        except TimeoutError:
            _log.warning(
                "shutdown: the workers did not finish within %.0f s; leaving the group without"
                " a last checkpoint (the records since the last one will be replayed)",
                self.settings.run.shutdown_timeout_s,
            )
            self._close(commit=False)
            return 0
        except Exception as exc:
            _log.error("shutdown: the last checkpoint failed: %s", exc)
            self._close(commit=False)
            return 1
        self._apply_commits()
        self._commit(offsets)
        self._close(commit=True)
        _log.info("stopped cleanly")
        return 0

    def _close(self, commit: bool) -> None:
        self._closing = True  # the consumer's close() revokes: everything is settled by now
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception as exc:
                _log.warning("closing the consumer: %s", exc)
        if self._producer is not None:
            try:
                self._producer.flush(timeout=5)
                self._producer.close(timeout=5)
            except Exception as exc:
                _log.warning("closing the producer: %s", exc)
        if self._trainer is not None:
            self._trainer.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            self._pool.join(timeout_s=3.0)
        if self.health is not None:
            self.health.stop()

    def _ensure_topics(self) -> None:
        """Create the alert, dead-letter and state topics when missing (best effort: a cluster
        that forbids it logs a warning and relies on auto-creation or an operator)."""
        k = self.settings.kafka
        try:
            admin = KafkaAdminClient(bootstrap_servers=self._bootstrap, **self._kwargs)
        except Exception as exc:
            _log.warning("could not reach the cluster to create topics: %s", exc)
            return
        try:
            existing = set(admin.list_topics())
            new = []
            for name, configs in (
                (k.alert_topic, {}),
                (k.dlq_topic, {}),
                (k.state_topic, {"cleanup.policy": "compact"}),
                (k.models_topic, {"cleanup.policy": "compact"}),
                (k.scores_topic, {}),
            ):
                if name and name not in existing:
                    new.append(NewTopic(name, 1, 1, topic_configs=configs))
            if new:
                admin.create_topics(new)
                _log.info("created topics %s", ", ".join(t.name for t in new))
        except Exception as exc:
            _log.warning("could not create topics: %s", exc)
        finally:
            admin.close()

    # ------------------------------------------------------------------ rebalance (consumer)
    #
    # kafka-python 3 runs these callbacks on its network loop, where a blocking client call
    # (a commit, a read of the state topic) would wait on the very loop it blocks. So the
    # assignment callback only pauses the new partitions and the consumer thread loads their
    # state after poll() returns; the revocation callback has the workers checkpoint and drop
    # the revoked partitions (the fence: nobody writes their state after this returns) but
    # commits nothing — the checkpoint already holds the offset the next owner will seek to.

    def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        if self._closing:
            return
        self.metrics.rebalances.labels(kind="revoked").inc()
        gone = set(revoked)
        self._to_assign = [tp for tp in self._to_assign if tp not in gone]
        mine = [self._parts[tp] for tp in revoked if tp in self._parts]
        if mine:
            try:
                self._settle(mine, drop=True, deadline=None)
            except Exception as exc:  # the poll loop stops the service on a worker error
                _log.error("checkpointing the revoked partitions failed: %s", exc)
        for tp in revoked:
            self._assigned.discard(tp)
            self._restored.discard(tp)
            self._parts.pop(tp, None)
        with self._lock:
            for key in [k for k in self._warmup if TopicPartition(*k[0]) in gone]:
                del self._warmup[key]
        self.metrics.assigned_partitions.set(len(self._assigned))
        if mine:
            _log.info("revoked %s", _names(p.tp for p in mine))

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels(kind="assigned").inc()
        consumer = self._consumer
        assert consumer is not None
        new = [tp for tp in assigned if tp not in self._assigned and tp not in self._to_assign]
        if new:
            consumer.pause(*new)  # nothing is fetched before its state is loaded
            self._to_assign.extend(new)

    def _finish_assignment(self) -> None:
        consumer, store, pool = self._consumer, self._store, self._pool
        assert consumer is not None
        assert store is not None
        assert pool is not None
        pending, self._to_assign = self._to_assign, []
        found = store.load([(tp.topic, tp.partition) for tp in pending])
        workers = self._workers
        for tp in pending:
            cp = found.get((tp.topic, tp.partition))
            part = _Partition(tp, workers, restoring=workers)
            parked = self._parked.pop(tp, None)
            shards: list[Any] | None = None
            reuse = False
            offset: int | None = None
            if cp is not None:
                offset = cp.next_offset
                reuse = parked is not None and parked == offset  # our own last checkpoint
                if not reuse:
                    assert isinstance(cp.state, Mapping)
                    shards = shards_of_state(f"{tp.topic}/{tp.partition}", cp.state, workers)
                consumer.seek(tp, offset)
                part.dispatched = part.completed = part.checkpointed = offset
            else:
                committed = consumer.committed(tp)
                if committed is not None:
                    _log.warning(
                        "%s/%d has a committed offset (%d) but no checkpoint in %s: its state "
                        "starts cold (the state topic lost data?)",
                        tp.topic,
                        tp.partition,
                        committed,
                        self.settings.kafka.state_topic,
                    )
            self._parts[tp] = part
            self._assigned.add(tp)
            for w in range(workers):
                shard = shards[w] if shards is not None else None
                pool.send(w, ("assign", part.key, shard, offset, reuse))
            if cp is not None and not reuse:
                _log.info("restoring %s/%d at offset %d", tp.topic, tp.partition, offset)
        if not self._paused:
            consumer.resume(*pending)
        # The previous owner checkpointed on revocation but committed nothing (no blocking
        # call in a rebalance callback): commit the checkpoints' offsets now, or the committed
        # lag (what dashboards and a KEDA lag scaler read) stays behind until new records come
        restored = {
            tp: found[(tp.topic, tp.partition)].next_offset
            for tp in pending
            if (tp.topic, tp.partition) in found
        }
        if restored:
            self._commits.put(restored)
        self.metrics.assigned_partitions.set(len(self._assigned))
        _log.info("assigned %s (%d with a checkpoint)", _names(pending), len(found))

    # ------------------------------------------------------------------ replies (readers)

    def _on_reply(self, worker: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "done":
            self._on_done(worker, *message[1:])
        elif kind == "assigned":
            _, key, shard, _version = message
            part = self._parts.get(TopicPartition(*key))
            if part is not None:
                part.shards[worker] = shard
                with self._lock:
                    part.restoring -= 1
                    if part.restoring == 0:
                        self._restored.add(part.tp)
        elif kind == "snapshot":
            self._on_snapshot(worker, *message[1:])
        elif kind == "training":
            req = self._training
            if req is not None and req.id == message[1]:
                req.replies[worker] = message[2:]
                if len(req.replies) == self._workers:
                    req.done.set()
        elif kind == "progress":
            self.metrics.training_progress.set(message[1] / max(1, message[2]))
        elif kind == "swapped":
            if message[2]:
                self.metrics.model_swaps.inc()
        else:
            raise ServiceError(f"unknown reply {kind!r} from worker {worker}")

    def _on_done(
        self,
        worker: int,
        key: tuple[str, int],
        seq: int,
        n: int,
        rejections: list[tuple[int, str, str]],
        alerts: list[AlertOut],
        scored: int,
        seconds: float,
        shard: int,
        _version: str,
        scores: list[tuple[bytes, bytes]],
        warmup: float,
    ) -> None:
        with self._lock:
            batch = self._batches[(key, seq)]
            if shard:  # a shard without readings holds nobody's warm-up back
                self._warmup[(key, worker)] = warmup
            progress = min(self._warmup.values(), default=0.0)
        records = batch.records.pop(worker)
        producer = self._producer
        assert producer is not None
        k = self.settings.kafka
        m = self.metrics
        futures: list[_Sent] = []
        if self.role == "train":  # the serving group alerts; the trainer only learns
            rejections, alerts = [], []
        for i, reason, message in rejections:
            r = records[i]
            m.records_invalid.labels(reason=reason).inc()
            m.dlq_records.inc()
            headers = dlq_headers(r, reason, message)
            futures.append(
                _Sent(
                    producer.send(k.dlq_topic, key=r.key, value=r.value, headers=headers),
                    k.dlq_topic,
                    r.key,
                    r.value,
                    headers,
                )
            )
        m.inference_seconds.observe(seconds)
        m.windows_scored.inc(scored)
        m.warmup_progress.set(progress)
        if shard == 2:
            m.training_progress.set(1.0)
        if scores and self.role == "serve" and k.scores_topic:
            m.scores_published.inc(len(scores))
            for asset_key, value in scores:
                futures.append(
                    _Sent(
                        producer.send(k.scores_topic, key=asset_key, value=value),
                        k.scores_topic,
                        asset_key,
                        value,
                    )
                )
        for alert in alerts:
            m.alerts.labels(status=alert.status).inc()
            dedup = alert.dedup_key.encode()
            futures.append(
                _Sent(
                    producer.send(
                        k.alert_topic, key=dedup, value=alert.value, headers=[_CLOUDEVENTS]
                    ),
                    k.alert_topic,
                    dedup,
                    alert.value,
                    [_CLOUDEVENTS],
                )
            )
            _log.info(
                "alert %s %s: %s",
                alert.status,
                alert.asset,
                alert.summary,
                extra={"asset": alert.asset, "status": alert.status, "id": alert.id},
            )
        batch.part.shards[worker] = shard
        m.records_processed.inc(n)
        with self._lock:
            self._pending.extend(futures)
            self._in_flight -= n
            batch.remaining -= 1
            finished = batch.remaining == 0
            if finished:
                del self._batches[(key, seq)]
        if finished:
            batch.part.completed = batch.end
            if batch.newest_ms is not None and batch.newest_ms > 0:
                m.end_to_end_seconds.observe(max(0.0, time.time() - batch.newest_ms / 1000))
            m.batch_seconds.observe(time.perf_counter() - batch.started)

    def _on_snapshot(
        self,
        worker: int,
        request: int,
        states: dict[tuple[str, int], tuple[bytes, Any]],
        gauges: tuple[int, dict[str, float], set[str], list[str], int],
    ) -> None:
        snap = self._snapshots[request]
        snap.states[worker] = states
        snap.gauges[worker] = gauges
        for _, model in states.values():
            if model is not None:
                self.metrics.set_model(*model)
                break
        with self._lock:
            snap.remaining -= 1
            complete = snap.remaining == 0
            if complete:
                # every alert of the batches before this snapshot was sent before its reply
                snap.pending, self._pending = self._pending, []
        if not complete:
            return
        self._export_gauges(snap)
        del self._snapshots[request]
        snap.done.set()
        if snap.background:
            threading.Thread(
                target=self._write_background, args=(snap,), name="streamvae-checkpoint"
            ).start()

    # ------------------------------------------------------------------ checkpoints

    def _request(
        self, parts: list[_Partition], drop: list[_Partition], background: bool
    ) -> _Snapshot:
        """Ask every worker for the state of the dirty ``parts`` (and to drop ``drop``)."""
        pool = self._pool
        assert pool is not None
        wanted = [(p, p.dispatched) for p in parts if p.dirty and p.dispatched is not None]
        snap = _Snapshot(next(self._snapshot_ids), wanted, self._workers, background)
        self._snapshots[snap.id] = snap
        pool.broadcast(
            ("snapshot", snap.id, [(p.key, o) for p, o in wanted], [p.key for p in drop])
        )
        return snap

    def _maybe_checkpoint(self) -> None:
        """Every ``run.checkpoint_interval_s``, one background checkpoint at a time."""
        now = time.monotonic()
        if (
            self._cp_busy.is_set()
            or now - self._last_checkpoint < self.settings.run.checkpoint_interval_s
        ):
            return
        self._last_checkpoint = now
        dirty = [p for p in self._parts.values() if p.dirty and p.restoring == 0]
        if dirty:
            self._cp_busy.set()
            self._request(dirty, [], background=True)

    def _settle(
        self, parts: list[_Partition], drop: bool, deadline: float | None
    ) -> dict[TopicPartition, int]:
        """Checkpoint ``parts`` now (after any background checkpoint), optionally dropping
        them at the workers; returns the offsets to commit."""

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        while self._cp_busy.is_set():
            self._raise_worker_error()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("a background checkpoint did not finish in time")
            time.sleep(0.01)
        snap = self._request(parts, parts if drop else [], background=False)
        if not snap.done.wait(left()):
            raise TimeoutError("the workers did not answer the snapshot request in time")
        self._raise_worker_error()
        offsets = self._write(snap)
        if drop:
            # A worker parks (keeps in memory) only the shards it was asked to snapshot, i.e.
            # the dirty ones; a clean one is dropped, and its next assignment must load the
            # checkpoint from the state topic, not ask for a parked shard that is not there
            # (the worker would start it fresh: an open alert would never resolve).
            snapshotted = {p.tp for p, _ in snap.wanted}
            for p in parts:
                if p.tp in snapshotted:
                    self._parked[p.tp] = p.checkpointed
                else:
                    self._parked.pop(p.tp, None)
        self._last_checkpoint = time.monotonic()
        return offsets

    def _write_background(self, snap: _Snapshot) -> None:
        try:
            offsets = self._write(snap)
        except (_Postponed, CheckpointError, KafkaError) as exc:
            if isinstance(exc, KafkaError) and not exc.retriable:
                self._on_worker_error(exc)
                _log.exception("background checkpoint failed")
                return
            # A broker outage (or its aftermath): no alert was lost — the futures not yet
            # acknowledged are checked again by the next checkpoint, and no offset moves
            # until they are. Stopping here would only turn a network blip into a restart.
            self.metrics.checkpoints.labels(result="error").inc()
            with self._lock:
                self._pending = [f for f in snap.pending if not f.acked] + self._pending
            _log.warning("checkpoint postponed, nothing committed: %s", exc)
            self._ensure_topics()  # e.g. the broker lost the state or alert topic
            self._stalls += 1
            if self._stalls >= 2:
                # Two checkpoints in a row without the producer getting through: after a
                # broker that lost its data, kafka-python's idempotent producer can stay
                # stuck for good. A fresh producer, with everything unacknowledged sent again
                # in order (a duplicate has the same id), gets the stream moving.
                self._stalls = 0
                producer = self._renew_producer(exc)
                with self._lock:
                    unacked = [f for f in self._pending if not f.acked]
                for sent in unacked:
                    sent.resend(producer)
        except BaseException as exc:
            self._on_worker_error(exc)
            _log.exception("background checkpoint failed")
        else:
            self._stalls = 0
            if offsets:
                self._commits.put(offsets)
        finally:
            self._cp_busy.clear()

    def _write(self, snap: _Snapshot) -> dict[TopicPartition, int]:
        """Make a completed snapshot durable: flush alerts and dead letters, check the broker
        acknowledged every one, write the checkpoints; returns the offsets to commit."""
        producer, store = self._producer, self._store
        assert producer is not None
        assert store is not None
        timeout = self.settings.kafka.request_timeout_ms / 1000
        try:
            producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise _Postponed(f"the producer did not flush within {timeout:g} s: {exc}") from exc
        failed = []
        for sent in snap.pending:
            try:
                sent.future.get(timeout=timeout)
            except Exception as exc:
                if not sent.is_done:
                    raise _Postponed(
                        f"an alert or dead letter is not acknowledged after {timeout:g} s"
                    ) from exc
                if sent.resent or not isinstance(exc, KafkaError):
                    self.metrics.checkpoints.labels(result="error").inc()
                    raise ServiceError(
                        f"the broker did not acknowledge an alert or dead letter: {exc}"
                    ) from exc
                failed.append((sent, exc))
        if failed:
            _log.warning(
                "the broker refused %d alert(s)/dead letter(s) (%s): sending them again",
                len(failed),
                failed[0][1],
            )
            if any(not exc.retriable for _, exc in failed if isinstance(exc, KafkaError)):
                producer = self._renew_producer(failed[0][1])
            for sent, _ in failed:  # in their original order
                sent.resend(producer)
            raise _Postponed(f"{len(failed)} record(s) sent again after: {failed[0][1]}")
        if not snap.wanted:
            return {}
        head = b'{"format":%d,"workers":%d,"shards":[' % (STATE_FORMAT, self._workers)
        captured = []
        for p, offset in snap.wanted:
            bodies = [snap.states.get(w, {}).get(p.key) for w in range(self._workers)]
            missing = [w for w, b in enumerate(bodies) if b is None]
            if missing:
                raise ServiceError(
                    f"worker(s) {missing} had no state for {p.tp.topic}/{p.tp.partition}"
                )
            state = head + b",".join(b[0] for b in bodies if b is not None) + b"]}"
            captured.append((p, Checkpoint(p.tp.topic, p.tp.partition, offset, state)))
        try:
            size = store.save([cp for _, cp in captured], timeout_s=timeout)
        except Exception:
            self.metrics.checkpoints.labels(result="error").inc()
            raise
        self.metrics.checkpoints.labels(result="ok").inc(len(captured))
        for p, cp in captured:
            p.checkpointed = cp.next_offset
        _log.debug("checkpointed %d partition(s), %d bytes", len(captured), size)
        return {p.tp: cp.next_offset for p, cp in captured}

    def _export_gauges(self, snap: _Snapshot) -> None:
        active = 0
        thresholds: dict[str, float] = {}
        owner: dict[str, int] = {}
        split: set[str] = set()
        due: list[str] = []
        buffered = 0
        for worker, (count, values, assets, reasons, n) in sorted(snap.gauges.items()):
            due += reasons
            buffered += n
            active += count
            thresholds.update(values)
            for asset in assets:
                if owner.setdefault(asset, worker) != worker:
                    split.add(asset)
        self.metrics.active_alerts.set(active)
        self.metrics.set_thresholds(thresholds)
        self._due, self._buffered = due, buffered
        now = time.monotonic()
        if split and now - self._split_warned >= 600:
            self._split_warned = now
            _log.error(
                "%d asset(s) have readings in more than one worker (%s): their readings carry "
                "different Kafka keys, so each worker sees part of the asset. Key every reading "
                "of an asset alike (the asset id), or set run.workers = 1",
                len(split),
                ", ".join(sorted(split)[:5]),
            )

    # ------------------------------------------------------------------ continual learning
    #
    # One model per group. The leader (the instance owning partition 0 of the first input
    # topic) asks its workers for their buffered normal windows when a shard says a retrain is
    # due, trains and gates a candidate in a background process, and publishes a promoted one
    # to the models topic (key: the group id). Every instance follows that topic and has its
    # workers swap to each newer version between two batches.

    def _follow_models(self) -> None:
        """Read the models topic to its end now (new shards start from the newest model), then
        follow it in a thread."""
        k = self.settings.kafka
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=200,
            **self._kwargs,
        )
        tp = TopicPartition(k.models_topic, 0)
        try:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp]).get(tp, 0)
            deadline = time.monotonic() + 30
            while consumer.position(tp) < end and time.monotonic() < deadline:
                self._take_models(consumer.poll(timeout_ms=500))
        except Exception as exc:
            _log.warning("could not read the models topic %s: %s", k.models_topic, exc)
            consumer.close()
            return

        def follow() -> None:
            try:
                while not self._stopping.is_set() and not self._closing:
                    self._take_models(consumer.poll(timeout_ms=500))
            except Exception as exc:
                _log.warning("stopped following the models topic: %s", exc)
            finally:
                consumer.close()

        self._models_thread = threading.Thread(target=follow, name="streamvae-models", daemon=True)
        self._models_thread.start()

    def _take_models(self, batches: Mapping[Any, list[Any]]) -> None:
        group = self.settings.kafka.group_id.encode()
        pool = self._pool
        assert pool is not None
        for records in batches.values():
            for r in records:
                if r.key != group or not r.value:
                    continue
                try:
                    art = sv.loads_artefact(r.value, f"<{self.settings.kafka.models_topic}>")
                    version = str(art.metadata.get("model_version", ""))
                    number = version_number(version)
                    sv.check_model_fits(self.settings.detector.window, art.model, version)
                except Exception as exc:
                    self.metrics.models_refused.labels(reason=type(exc).__name__).inc()
                    _log.error("skipping an unreadable model on the models topic: %s", exc)
                    continue
                if number <= self._group_version:
                    continue
                self._group_version = number
                self.metrics.set_model(version, art.content_hash)
                _log.info(
                    "the group's model is now %s (%s): the workers swap to it",
                    version,
                    art.metadata.get("reason", "?"),
                    extra={"version": version, "gate": art.metadata.get("gate")},
                )
                pool.broadcast(("swap", version, bytes(r.value)))

    def _is_leader(self) -> bool:
        consumer = self._consumer
        if consumer is None or not self._assigned:
            return False
        topics = sorted(consumer.subscription() or ())
        return bool(topics) and TopicPartition(topics[0], 0) in self._assigned

    def _maybe_retrain(self) -> None:
        """Consumer thread: start, feed or finish the group's retrain (leader only)."""
        if self.settings.run.trainer == "off" and self.role != "train":
            return
        future = self._train_future
        if future is not None:
            if future.done():
                self._train_future = None
                self._finish_retrain(future)
            return
        req = self._training
        if req is not None:
            if req.done.is_set():
                self._training = None
                self._submit_retrain(req)
            return
        if not self._due or not self._is_leader():
            return
        pool = self._pool
        assert pool is not None
        self._train_reason = sorted(set(self._due))[0]
        self._due = []
        self._training = _TrainingRequest(next(self._snapshot_ids))
        pool.broadcast(("training", self._training.id))

    def _submit_retrain(self, req: _TrainingRequest) -> None:
        pool = self._pool
        assert pool is not None
        parts = [r for r in req.replies.values() if r[0] is not None and r[3] is not None]
        if not parts:
            return
        cfg = self.settings.detector
        values = np.concatenate([r[0] for r in parts])
        assets = [a for r in parts for a in r[1]]
        end_ts = np.concatenate([r[2] for r in parts])
        order = np.array(sorted(range(len(assets)), key=lambda i: (end_ts[i], assets[i])))
        cap = cfg.retrain.capacity
        if len(order) > cap:  # every shard's buffer together: keep an even spread of it
            order = order[np.linspace(0, len(order) - 1, cap).round().astype(int)]
        data = sv.TrainingSet(values[order], tuple(assets[i] for i in order), end_ts[order])
        payload = training_payload(cfg, data, parts[0][3], self._train_reason)
        pool.broadcast(("retrain_started",))
        if self._trainer is None:
            self._trainer = cf.ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_trainer,
                initargs=(self.settings.run.torch_threads,),
            )
        versions = [version_number(str(r[4]), 0) for r in parts]
        self._serving_number = max([self._group_version, *versions])
        _log.info(
            "retraining the group's model (%s) on %d buffered normal windows",
            self._train_reason,
            len(order),
            extra={"reason": self._train_reason, "windows": len(order)},
        )
        self._train_future = self._trainer.submit(train_job, payload)

    def _finish_retrain(self, future: cf.Future[dict[str, Any]]) -> None:
        try:
            result = future.result()
        except Exception as exc:
            self.metrics.retrains.labels(result="rejected").inc()
            _log.error("the retrain failed: %r; the serving model stays", exc)
            return
        decision = result["decision"]
        if not decision.promote or result["artefact"] is None:
            self.metrics.retrains.labels(result="rejected").inc()
            _log.info("retrain (%s): %s", self._train_reason, decision.reason)
            return
        if not self._is_leader():
            _log.info(
                "retrain (%s) promoted, but this instance is no longer the leader: dropped",
                self._train_reason,
            )
            return
        version = version_name(max(self._serving_number, self._group_version) + 1)
        registry = None
        if self.settings.run.registry:
            registry = sv.ModelRegistry(self.settings.run.registry)
            version = max(version, registry.next_version(), key=version_number)
        art = sv.loads_artefact(result["artefact"], "<candidate>")
        data = promoted_artefact(
            art,
            {
                "model_version": version,
                "created": time.time(),
                "reason": self._train_reason,
                "group": self.settings.kafka.group_id,
                "gate": decision.to_dict(),
                "n_train": result["n_train"],
            },
        )
        if registry is not None:
            registry.save(data, version)
        producer = self._producer
        assert producer is not None
        k = self.settings.kafka
        producer.send(k.models_topic, key=k.group_id.encode(), value=data).get(
            timeout=k.request_timeout_ms / 1000
        )
        self.metrics.retrains.labels(result="promoted").inc()
        _log.info(
            "retrain (%s): %s; published %s to %s",
            self._train_reason,
            decision.reason,
            version,
            k.models_topic,
            extra={"version": version, "decision": decision.to_dict()},
        )


@dataclass(slots=True, eq=False)
class _TrainingRequest:
    """The leader's request for every worker's buffered windows."""

    id: int
    replies: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def _init_trainer(threads: int) -> None:
    from streamvae.continual import _init_process

    _init_process(threads)  # bounded torch threads; dies with the service


def _names(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(tps))
