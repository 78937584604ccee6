"""The Kafka service: a consumer group in, alerts out, dead letters aside, state checkpointed.

Two threads, one job each (DESIGN §5):

- The **consumer thread** owns the ``KafkaConsumer`` (it is not thread-safe): it polls, hands
  each partition's records to the worker through a bounded queue, pauses every assigned
  partition when more than ``run.max_in_flight_records`` records wait (and resumes at half),
  commits offsets the worker has made safe, and runs the rebalance callbacks. It keeps polling
  while the worker is busy (a first model training takes seconds), so the group never drops
  the instance for exceeding ``max.poll.interval.ms``.
- The **worker thread** owns the state: one ``Detector`` and one ``ReadingDecoder`` per input
  partition. For each batch it decodes, sends rejected records to the dead-letter topic,
  runs the detector, and sends alerts keyed by ``dedup_key``. Every
  ``run.checkpoint_interval_s`` it flushes the producer (idempotent, acks=all), writes the
  state of every partition that moved to the state topic together with the offset of the
  next record, and only then asks the consumer thread to commit those offsets.

At-least-once, end to end: an offset is committed only after the alerts of every record before
it are acknowledged by the broker and the state that produced them is durable. A crash replays
from the last checkpoint with that checkpoint's state, so replayed alerts carry identical ids.

On assignment the consumer thread reads the partitions' checkpoints and seeks each partition
to its checkpoint's offset (the checkpoint, not the committed offset, is the truth: it is the
offset the state belongs to). On revocation it waits for the worker to finish what is queued,
checkpoint and commit the revoked partitions. SIGTERM/SIGINT (``Service.stop``) do the same for
every partition, then the consumer leaves the group.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka.admin import NewTopic

import streamvae as sv
from consumers.checkpoint import Checkpoint, KafkaCheckpointStore
from consumers.metrics import HealthServer, ServiceMetrics
from consumers.settings import Settings
from streamvae.detector import threshold_seeds_of

__all__ = ["STATE_FORMAT", "Service", "ServiceError", "dlq_headers"]

STATE_FORMAT = 1
_log = logging.getLogger("streamvae.service")
_CLOUDEVENTS = ("content-type", b"application/cloudevents+json; charset=UTF-8")


class ServiceError(RuntimeError):
    """The service cannot go on (the worker failed, the broker refused a write)."""


def dlq_headers(record: Any, rejection: sv.Rejection) -> list[tuple[str, bytes]]:
    """The original headers plus Kafka Connect's error headers and our reason code."""
    headers = list(record.headers or [])
    headers += [
        ("__connect.errors.topic", record.topic.encode()),
        ("__connect.errors.partition", str(record.partition).encode()),
        ("__connect.errors.offset", str(record.offset).encode()),
        ("__connect.errors.exception.class.name", b"streamvae.RejectedReading"),
        ("__connect.errors.exception.message", rejection.message.encode("utf-8", "replace")),
        ("streamvae.reject.reason", rejection.reason.value.encode()),
    ]
    return headers


@dataclass(slots=True)
class _Partition:
    """What the worker keeps per input partition."""

    tp: TopicPartition
    detector: sv.Detector
    decoder: sv.ReadingDecoder
    next_offset: int | None = None  # offset after the last processed record
    checkpointed: int | None = None  # next_offset of the last durable checkpoint

    @property
    def dirty(self) -> bool:
        return self.next_offset is not None and self.next_offset != self.checkpointed


@dataclass(slots=True)
class _Barrier:
    """Ask the worker to finish queued work, checkpoint ``tps`` (None: all) and, when
    ``drop``, forget them; ``offsets`` is filled for the consumer thread to commit."""

    tps: frozenset[TopicPartition] | None
    drop: bool
    done: threading.Event = field(default_factory=threading.Event)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    error: BaseException | None = None


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

    def __init__(self, settings: Settings, metrics: ServiceMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ServiceMetrics()
        k = settings.kafka
        self._kwargs: dict[str, Any] = dict(settings.kafka.security.kafka_kwargs())
        self._bootstrap = list(k.bootstrap_servers)
        self._artefact: sv.Artefact | None = None
        self._seeds: dict[str, Any] = {}
        if settings.run.model:
            self._artefact = sv.load_artefact(settings.run.model)
            self._seeds = threshold_seeds_of(self._artefact)
        self._stopping = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._commits: queue.Queue[dict[TopicPartition, int]] = queue.Queue()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._paused = False
        self._parts: dict[TopicPartition, _Partition] = {}  # worker-owned
        self._parked: dict[TopicPartition, _Partition] = {}  # revoked, kept for a re-assignment
        self._assigned: set[TopicPartition] = set()  # consumer-thread view
        self._to_assign: list[TopicPartition] = []  # assigned by the group, state not loaded
        self._closing = False
        self._restored: set[TopicPartition] = set()  # worker has the partition's state
        self._worker_error: BaseException | None = None
        self._pending: list[Any] = []  # producer futures since the last checkpoint
        self._last_checkpoint = time.monotonic()
        self._cp_thread: threading.Thread | None = None
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._store: KafkaCheckpointStore | None = None
        self.health: HealthServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the service to shut down gracefully (safe from a signal handler)."""
        self._stopping.set()

    def ready(self) -> tuple[bool, str]:
        """Readiness: partitions assigned, their state restored, a model to score with."""
        assigned = set(self._assigned)
        if not assigned:
            return False, "no partitions assigned yet"
        missing = assigned - self._restored
        if missing:
            return False, f"restoring state of {len(missing)} partition(s)"
        warming = [
            f"{tp.topic}/{tp.partition}"
            for tp, p in list(self._parts.items())
            if tp in assigned and not p.detector.ready
        ]
        if warming:
            return False, f"warming up (no model yet): {', '.join(sorted(warming))}"
        return True, f"ok: {len(assigned)} partition(s)"

    def run(self) -> int:
        """Run until :meth:`stop`; returns the process exit status (0: clean shutdown)."""
        s = self.settings
        self._ensure_topics()
        self._producer = KafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=f"{s.kafka.client_id}-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=s.kafka.request_timeout_ms,
            **self._kwargs,
        )
        self._store = KafkaCheckpointStore(
            self._bootstrap,
            s.kafka.state_topic,
            s.kafka.group_id,
            kafka_kwargs=self._kwargs,
            producer=self._producer,
        )
        if s.run.metrics_port >= 0:
            self.health = HealthServer(
                self.metrics, self.ready, host=s.run.metrics_host, port=s.run.metrics_port
            ).start()
            _log.info("metrics and health on %s", self.health.url, extra={"url": self.health.url})
        worker = threading.Thread(target=self._work, name="streamvae-worker", daemon=True)
        worker.start()
        self._consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=s.kafka.group_id,
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
            s.kafka.group_id,
        )
        code = 0
        try:
            while not self._stopping.is_set():
                if self._worker_error is not None:
                    raise ServiceError(f"the worker failed: {self._worker_error!r}") from (
                        self._worker_error
                    )
                if self.health is not None:
                    self.health.beat()
                self._poll_once()
            code = self._shutdown()
        except Exception:
            _log.exception("the service stops on an error; offsets stay at the last checkpoint")
            code = 1
            self._close(commit=False)
        return code

    def _poll_once(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        s = self.settings
        batches = consumer.poll(
            timeout_ms=s.kafka.poll_timeout_ms, max_records=s.kafka.max_poll_records
        )
        if self._to_assign:
            self._finish_assignment()
        for tp, records in batches.items():
            if not records:
                continue
            with self._lock:
                self._in_flight += len(records)
            self.metrics.records_consumed.labels(topic=tp.topic, partition=str(tp.partition)).inc(
                len(records)
            )
            self._queue.put(("records", tp, records))
        self._backpressure()
        self._apply_commits()
        self._update_lag()

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
            if high is None or part is None or part.next_offset is None:
                continue
            self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                max(0, high - part.next_offset)
            )

    def _shutdown(self) -> int:
        _log.info("stopping: finishing the batch in hand, checkpointing, committing")
        barrier = _Barrier(None, drop=True)
        self._queue.put(("barrier", barrier))
        timeout = self.settings.run.shutdown_timeout_s
        deadline = time.monotonic() + timeout
        consumer = self._consumer
        assert consumer is not None
        while not barrier.done.wait(0.1):
            if time.monotonic() > deadline or self._worker_error is not None:
                _log.warning(
                    "shutdown: the worker did not finish within %.0f s; leaving the group without"
                    " a last checkpoint (the records since the last one will be replayed)",
                    timeout,
                )
                self._close(commit=False)
                return 0
        if barrier.error is not None:
            _log.error("shutdown: the last checkpoint failed: %s", barrier.error)
            self._close(commit=False)
            return 1
        self._apply_commits()
        self._commit(barrier.offsets)
        self._close(commit=True)
        _log.info("stopped cleanly")
        return 0

    def _close(self, commit: bool) -> None:
        self._closing = True  # the consumer's close() revokes: everything is settled by now
        self._queue.put(("stop",))
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
            ):
                if name not in existing:
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
    # state after poll() returns; the revocation callback waits for the worker to checkpoint
    # the revoked partitions (the fence: nobody writes their state after this returns) but
    # commits nothing — the checkpoint already holds the offset the next owner will seek to.

    def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        if self._closing:
            return
        self.metrics.rebalances.labels(kind="revoked").inc()
        gone = set(revoked)
        self._to_assign = [tp for tp in self._to_assign if tp not in gone]
        mine = [tp for tp in revoked if tp in self._assigned]
        if not mine:
            return
        barrier = _Barrier(frozenset(mine), drop=True)
        self._queue.put(("barrier", barrier))
        barrier.done.wait()
        for tp in mine:
            self._assigned.discard(tp)
            self._restored.discard(tp)
        self.metrics.assigned_partitions.set(len(self._assigned))
        _log.info("revoked %s", _names(mine))

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels(kind="assigned").inc()
        consumer = self._consumer
        assert consumer is not None
        new = [tp for tp in assigned if tp not in self._assigned and tp not in self._to_assign]
        if new:
            consumer.pause(*new)  # nothing is fetched before its state is loaded
            self._to_assign.extend(new)

    def _finish_assignment(self) -> None:
        consumer, store = self._consumer, self._store
        assert consumer is not None
        assert store is not None
        pending, self._to_assign = self._to_assign, []
        found = store.load([(tp.topic, tp.partition) for tp in pending])
        for tp in pending:
            cp = found.get((tp.topic, tp.partition))
            if cp is not None:
                consumer.seek(tp, cp.next_offset)
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
            self._assigned.add(tp)
            self._queue.put(("assign", tp, cp))
        if not self._paused:
            consumer.resume(*pending)
        self.metrics.assigned_partitions.set(len(self._assigned))
        _log.info("assigned %s (%d with a checkpoint)", _names(pending), len(found))

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        interval = self.settings.run.checkpoint_interval_s
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                item = None
            try:
                if item is None:
                    pass
                elif item[0] == "records":
                    self._process(item[1], item[2])
                elif item[0] == "assign":
                    self._assign(item[1], item[2])
                elif item[0] == "barrier":
                    self._barrier(item[1])
                elif item[0] == "stop":
                    return
                if time.monotonic() - self._last_checkpoint >= interval:
                    busy = self._cp_thread is not None and self._cp_thread.is_alive()
                    if not busy:
                        dirty = [p for p in self._parts.values() if p.dirty]
                        self._checkpoint(dirty, background=True)
            except BaseException as exc:  # the consumer thread stops the service
                self._worker_error = exc
                _log.exception("worker failed")
                if item is not None and item[0] == "barrier":
                    item[1].error = exc
                    item[1].done.set()
                return

    def _new_detector(self) -> sv.Detector:
        if self._artefact is not None:
            return sv.Detector.from_artefact(self.settings.detector, self._artefact)
        return sv.Detector(self.settings.detector)

    def _assign(self, tp: TopicPartition, cp: Checkpoint | None) -> None:
        parked = self._parked.pop(tp, None)
        if parked is not None and cp is not None and parked.checkpointed == cp.next_offset:
            self._parts[tp] = parked  # our own last checkpoint: no need to read it back
        elif cp is not None:
            state = cp.state
            if state.get("format") != STATE_FORMAT:
                raise ServiceError(
                    f"checkpoint of {tp.topic}/{tp.partition} has state format "
                    f"{state.get('format')!r}, expected {STATE_FORMAT}"
                )
            detector = sv.Detector.restore(
                self.settings.detector, state["detector"], threshold_seeds=self._seeds
            )
            decoder = sv.ReadingDecoder.restore(self.settings.readings, state["decoder"])
            self._parts[tp] = _Partition(tp, detector, decoder, cp.next_offset, cp.next_offset)
            _log.info(
                "restored %s/%d at offset %d (model %s)",
                tp.topic,
                tp.partition,
                cp.next_offset,
                detector.model_version or "none yet",
            )
        else:
            self._parts[tp] = _Partition(
                tp, self._new_detector(), sv.ReadingDecoder(self.settings.readings)
            )
        self._restored.add(tp)

    def _process(self, tp: TopicPartition, records: Sequence[Any]) -> None:
        started = time.perf_counter()
        try:
            part = self._parts.get(tp)
            if part is None:
                return  # revoked while queued: the new owner replays from the checkpoint
            if part.next_offset is not None and records[0].offset < part.next_offset:
                # fetched before the seek to the checkpoint took effect: already processed
                records = [r for r in records if r.offset >= part.next_offset]
                if not records:
                    return
            producer = self._producer
            assert producer is not None
            k = self.settings.kafka
            readings: list[sv.Reading] = []
            for r in records:
                item = part.decoder.decode(r.value, sv.SourceRef(r.topic, r.partition, r.offset))
                if isinstance(item, sv.Rejection):
                    self.metrics.records_invalid.labels(reason=item.reason.value).inc()
                    self.metrics.dlq_records.inc()
                    self._pending.append(
                        producer.send(
                            k.dlq_topic, key=r.key, value=r.value, headers=dlq_headers(r, item)
                        )
                    )
                else:
                    readings.append(item)
            scored_before = part.detector.stats.windows_scored
            t0 = time.perf_counter()
            alerts = part.detector.process(readings)
            self.metrics.inference_seconds.observe(time.perf_counter() - t0)
            self.metrics.windows_scored.inc(part.detector.stats.windows_scored - scored_before)
            for alert in alerts:
                self.metrics.alerts.labels(status=alert.status).inc()
                self._pending.append(
                    producer.send(
                        k.alert_topic,
                        key=alert.dedup_key.encode(),
                        value=alert.to_json(),
                        headers=[_CLOUDEVENTS],
                    )
                )
                _log.info(
                    "alert %s %s: %s",
                    alert.status,
                    alert.asset,
                    alert.summary,
                    extra={"asset": alert.asset, "status": alert.status, "id": alert.id},
                )
            part.next_offset = records[-1].offset + 1
            self.metrics.records_processed.inc(len(records))
            newest = max((r.timestamp for r in records if r.timestamp is not None), default=None)
            if newest is not None and newest > 0:
                self.metrics.end_to_end_seconds.observe(max(0.0, time.time() - newest / 1000))
        finally:
            with self._lock:
                self._in_flight -= len(records)
            self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _barrier(self, barrier: _Barrier) -> None:
        try:
            parts = [p for tp, p in self._parts.items() if barrier.tps is None or tp in barrier.tps]
            barrier.offsets = self._checkpoint([p for p in parts if p.dirty])
            if barrier.drop:
                for p in parts:
                    self._parts.pop(p.tp, None)
                    self._parked[p.tp] = p
        except BaseException as exc:
            barrier.error = exc
            raise
        finally:
            barrier.done.set()

    def _checkpoint(
        self, parts: list[_Partition], background: bool = False
    ) -> dict[TopicPartition, int]:
        """Capture the state of ``parts`` now, then make it durable: flush alerts and dead
        letters, check the broker acknowledged every one, write the checkpoints. Returns the
        offsets to commit (synchronous), or queues them for the consumer thread once the write
        is done (``background``: encoding, compression and the broker round trips run beside
        the worker, so a checkpoint never stalls scoring for long)."""
        self._last_checkpoint = time.monotonic()
        self._join_checkpoint()
        self._export_gauges()
        pending, self._pending = self._pending, []
        captured = []
        for p in parts:
            assert p.next_offset is not None
            snapshot = p.detector.snapshot(include_model=True)
            state = {"format": STATE_FORMAT, "detector": snapshot, "decoder": p.decoder.snapshot()}
            model = snapshot["model"]
            if model is not None:
                self.metrics.set_model(str(model["version"]), str(model["hash"]))
            captured.append((p, Checkpoint(p.tp.topic, p.tp.partition, p.next_offset, state)))
        if not background:
            return self._write(pending, captured)

        def write() -> None:
            try:
                offsets = self._write(pending, captured)
            except BaseException as exc:
                self._worker_error = exc
                _log.exception("background checkpoint failed")
            else:
                if offsets:
                    self._commits.put(offsets)

        self._cp_thread = threading.Thread(target=write, name="streamvae-checkpoint", daemon=True)
        self._cp_thread.start()
        return {}

    def _join_checkpoint(self) -> None:
        """Wait for a background checkpoint in flight (one at a time)."""
        thread, self._cp_thread = self._cp_thread, None
        if thread is not None:
            thread.join()
        if self._worker_error is not None:
            raise ServiceError(f"a checkpoint failed: {self._worker_error!r}")

    def _write(
        self, pending: list[Any], captured: list[tuple[_Partition, Checkpoint]]
    ) -> dict[TopicPartition, int]:
        producer, store = self._producer, self._store
        assert producer is not None
        assert store is not None
        timeout = self.settings.kafka.request_timeout_ms / 1000
        producer.flush(timeout=timeout)
        for f in pending:
            try:
                f.get(timeout=timeout)
            except Exception as exc:
                self.metrics.checkpoints.labels(result="error").inc()
                raise ServiceError(
                    f"the broker did not acknowledge an alert or dead letter: {exc}"
                ) from exc
        if not captured:
            return {}
        try:
            size = store.save([cp for _, cp in captured])
        except Exception:
            self.metrics.checkpoints.labels(result="error").inc()
            raise
        self.metrics.checkpoints.labels(result="ok").inc(len(captured))
        for p, cp in captured:
            p.checkpointed = cp.next_offset
        _log.debug("checkpointed %d partition(s), %d bytes", len(captured), size)
        return {cp_tp(cp): cp.next_offset for _, cp in captured}

    def _export_gauges(self) -> None:
        active = 0
        thresholds: dict[str, float] = {}
        for p in list(self._parts.values()):
            d = p.detector
            active += len(d.alerter.active())
            for asset in d.thresholds.assets:
                thresholds[asset] = d.thresholds.get(asset)

        self.metrics.active_alerts.set(active)
        self.metrics.set_thresholds(thresholds)


def cp_tp(cp: Checkpoint) -> TopicPartition:
    return TopicPartition(cp.topic, cp.partition)


def _names(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(tps))
