"""What every reliability scenario receives and returns.

A scenario drives real processes (the broker, ``streamvae run``) and judges the outcome with an
oracle — the simulator's labelled faults and the service's deterministic alert ids — so its
result is a count of trials and a verdict, never a timing assertion.

Example::

    ctx = Context(bootstrap="127.0.0.1:9092", workdir=Path("/tmp/chaos"))
    result = crash.run(ctx, trials=3)
    print(result.row())
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Context:
    """Where a scenario runs: the broker it talks to and a scratch directory it owns.

    Example::

        Context(bootstrap="127.0.0.1:9092", workdir=Path("/tmp/chaos"), seed=0)
    """

    bootstrap: str
    workdir: Path
    seed: int = 0
    model: Path | None = None  # the plant's model artefact; None: trained into workdir once

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ValueError("Context.bootstrap is empty: give host:port of a Kafka broker")
        if self.model is not None and not Path(self.model).is_file():
            raise ValueError(
                f"Context.model {self.model} is not a file: give a model artefact (from "
                "Detector.export_model) or None to train the plant's model into the workdir"
            )


@dataclasses.dataclass(frozen=True)
class ScenarioResult:
    """One row of the campaign's table.

    ``figures`` carries the measured numbers behind the verdict, each key naming its unit
    (``peak_rss_mib``, ``lag_records``, ``duplicates``) so the table prints without guessing.

    Example::

        ScenarioResult("crash", trials=20, passed=20, ok=True, result="0 lost, 0 id mismatches",
                       figures={"duplicates": 14})
    """

    scenario: str
    trials: int
    passed: int
    ok: bool
    result: str
    figures: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def row(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return f"{self.scenario:<24} {self.passed:>4}/{self.trials:<4} {verdict:<5} {self.result}"


# ----------------------------------------------------------------------------- shared parts
#
# The scenarios drive the integration tests' plant (tests/integration/harness.py: six pumps on
# three partitions, four labelled faults, deterministic alert ids) so that the campaign and
# the default suite judge the same thing the same way.

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `python benchmarks/reliability.py` puts benchmarks/ first
    sys.path.insert(0, str(ROOT))

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

from tests.integration import harness as h  # noqa: E402


class Progress:
    """Prints a scenario's steps with the seconds since it started (long runs show progress).

    Example::

        say = Progress("crash")
        say("trial 1/20: SIGKILL after 812 records")   # "  [crash   3.2 s] trial 1/20: ..."
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"  [{self.name} {time.monotonic() - self.started:6.1f} s] {message}", flush=True)


def model_of(ctx: Context) -> Path:
    """The plant's model: ``ctx.model`` when given, else trained once into the workdir
    (about a minute of CPU; a later run with the same workdir reuses it)."""
    if ctx.model is not None:
        return ctx.model
    path = ctx.workdir / "model.safetensors"
    if not path.exists():
        print("  training the plant's model once (a few minutes on 2 busy cores) ...", flush=True)
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        h.train_model(tmp)
        tmp.replace(path)
    return path


def fresh_topics(bootstrap: str, partitions: int = h.PARTITIONS) -> h.Topics:
    """New sensor (``partitions``), alert, dead-letter and state topic names and a group;
    the sensor topic is created, the others are left to the service."""
    u = uuid.uuid4().hex[:10]
    names = h.Topics(
        f"chaos-sensors-{u}",
        f"chaos-alerts-{u}",
        f"chaos-dlq-{u}",
        f"chaos-state-{u}",
        f"chaos-group-{u}",
    )
    create_topic(bootstrap, names.sensors, partitions)
    return names


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="streamvae-chaos")
    try:
        # already there when a client's metadata request auto-created it
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(name, partitions, 1)])
        admin.wait_for_topics([name], timeout_ms=10_000)
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        found = len(consumer.partitions_for_topic(name) or ())
    finally:
        consumer.close()
    if found != partitions:
        raise RuntimeError(
            f"topic {name} has {found} partition(s), the scenario needs {partitions}"
        )


def group_lag(bootstrap: str, group: str, topic: str) -> int | None:
    """Records of ``topic`` not yet committed by ``group`` (None: the group committed nothing
    on some partition that holds records)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            end = ends.get(tp, 0)
            done = consumer.committed(tp)
            if done is None:
                if end:
                    return None
                continue
            lag += max(0, end - done)
        return lag
    finally:
        consumer.close(autocommit=False)


def wait_lag_zero(bootstrap: str, group: str, topic: str, timeout_s: float) -> int | None:
    """Wait for the group's committed lag to reach 0; returns the last lag seen."""
    deadline = time.monotonic() + timeout_s
    lag = group_lag(bootstrap, group, topic)
    while lag != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        lag = group_lag(bootstrap, group, topic)
    return lag


@dataclasses.dataclass(frozen=True)
class AlertVerdict:
    """The oracle's reading of an alert topic against the plant's labelled faults.

    Example::

        v = judge_alerts(bootstrap, topics.alerts)
        v.ok, v.missed, v.mismatched_ids, v.duplicates
    """

    events: int  # alert records on the topic
    unique: int  # distinct ids
    duplicates: int  # records beyond the first of their id
    mismatched_ids: int  # ids whose copies differ byte for byte
    missed: tuple[str, ...]  # faulted assets without a firing and a resolved alert
    unresolved: tuple[str, ...]  # faulted assets whose last alert is not "resolved"

    @property
    def ok(self) -> bool:
        return not self.mismatched_ids and not self.missed and not self.unresolved

    def summary(self) -> str:
        return (
            f"{len(h.FAULTS) - len(self.missed)}/{len(h.FAULTS)} faults fired+resolved, "
            f"{self.duplicates} duplicate(s), {self.mismatched_ids} id mismatch(es)"
        )


def judge_alerts(bootstrap: str, alert_topic: str) -> AlertVerdict:
    records = h.alerts_of(bootstrap, alert_topic)
    by_id: dict[str, set[bytes]] = {}
    for _, event, raw in records:
        by_id.setdefault(event.id, set()).add(raw)
    unique = list({e.id: e for _, e, _ in records}.values())
    missed = tuple(
        a
        for a in h.FAULTS
        if {e.status for e in h.fault_alerts(unique, a)} != {"firing", "resolved"}
    )
    unresolved = tuple(
        a
        for a in h.FAULTS
        if not [e for e in unique if e.asset == a]
        or [e for e in unique if e.asset == a][-1].status != "resolved"
    )
    return AlertVerdict(
        events=len(records),
        unique=len(by_id),
        duplicates=len(records) - len(by_id),
        mismatched_ids=sum(1 for v in by_id.values() if len(v) > 1),
        missed=missed,
        unresolved=unresolved,
    )


def wait_every_fault(bootstrap: str, alert_topic: str, timeout_s: float) -> AlertVerdict:
    """Wait until every fault fired and resolved (or the time is up); the last verdict."""
    deadline = time.monotonic() + timeout_s
    verdict = judge_alerts(bootstrap, alert_topic)
    while not verdict.ok and time.monotonic() < deadline:
        time.sleep(1.0)
        verdict = judge_alerts(bootstrap, alert_topic)
    return verdict


class PacedProducer:
    """Sends (partition, key, value) messages at ``rate`` per second from a thread, as a plant
    gateway would while the service is being hurt; ``join()`` waits for every ack.

    Example::

        feed = PacedProducer(bootstrap, topics.sensors, h.plant_messages(), rate=1500).start()
        ...
        feed.join(timeout_s=60)
    """

    def __init__(
        self, bootstrap: str, topic: str, messages: Sequence[tuple[int, bytes, bytes]], rate: float
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0 messages/s, got {rate!r}")
        self.bootstrap, self.topic, self.messages, self.rate = bootstrap, topic, messages, rate
        self.sent = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-feed", daemon=True)

    def start(self) -> PacedProducer:
        self._thread.start()
        return self

    def _run(self) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=5,
            retries=2**31 - 1,
            delivery_timeout_ms=600_000,
            request_timeout_ms=3_000,  # a request lost in an outage is retried soon
        )
        try:
            started = time.monotonic()
            futures = []
            for i, (partition, key, value) in enumerate(self.messages):
                ahead = started + i / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                futures.append(producer.send(self.topic, key=key, value=value, partition=partition))
                self.sent = i + 1
            producer.flush(timeout=600)
            for f in futures:
                f.get(timeout=600)
        except BaseException as exc:
            self.error = exc
        finally:
            producer.close(timeout=10)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"the feed did not finish in {timeout_s:.0f} s ({self.sent} sent)")
        if self.error is not None:
            raise RuntimeError(f"the feed failed after {self.sent} messages: {self.error!r}")


def process_tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants now (Linux /proc; 0 if gone)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[1])
        rss[int(entry.name)] = int(statm[1]) * page
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(p, 0) for p in tree)


# Group timings for scenarios that restart instances: Tansu completes a join after about half
# the session timeout, and a SIGKILLed member holds its partitions until its session expires;
# 3 s sessions (heartbeats every 0.5 s) halve both against the harness's 6 s.
FAST_GROUP = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 500}
# For outages: kafka-python's producer holds a batch that was in flight on a connection that
# died until request_timeout_ms expires (30 s by default), and every later batch waits behind
# it — alerts are late by that much after a blip. 5 s is what a latency-minded operator sets.
OUTAGE = {**FAST_GROUP, "request_timeout_ms": 5000}


def service_config(
    ctx: Context,
    topics: h.Topics,
    bootstrap: str | None = None,
    name: str = "streamvae.toml",
    kafka: Mapping[str, Any] | None = None,
    **run: Any,
) -> Path:
    """A settings file for the plant (the harness's), in the scenario's workdir; ``kafka``
    sets or overrides ``[kafka]`` keys, ``run`` adds ``[run]`` keys."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    path = h.write_config(
        ctx.workdir / name, bootstrap or ctx.bootstrap, topics, model_of(ctx), **run
    )
    if kafka:
        lines = path.read_text().splitlines()
        for key, value in kafka.items():
            line = f"{key} = {json.dumps(value)}"
            at = [i for i, x in enumerate(lines) if x.split("=")[0].strip() == key]
            if at:
                lines[at[0]] = line
            else:
                lines.insert(lines.index("[kafka]") + 1, line)
        path.write_text("\n".join(lines) + "\n")
    return path


def stopped_on_error(log: str) -> bool:
    """Whether a service log shows the service stopping on an error (a crash, not a kill)."""
    return "the service stops on an error" in log or "Traceback" in log
