"""Helpers for driving ``streamvae run`` as users run it: a real subprocess on a real broker.

The plant: six pumps of the synthetic plant, two per partition of the sensor topic (a pump
always goes to the same partition, as a producer keyed by asset would send it), four of them
with one injected fault. A model is trained once per session on the pumps' first 2,000 steps
(a week of 5-minute readings) and saved as an artefact; the service starts from it, so a test
spends its time on Kafka, not on training.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import streamvae as sv
from streamvae.testing import Fault, SyntheticPlant, series_readings

PERIOD = 300.0
T0 = 1_699_999_800.0
TRAIN_STEPS = 2000
TEST_STEPS = 1000
PARTITIONS = 3
ASSETS = tuple(f"pump-{i}" for i in range(6))
FAULT_AT = TRAIN_STEPS + 450  # after the thresholds' grace period and a baseline
FAULTS: dict[str, Fault] = {
    "pump-0": Fault("level_shift", "pressure", FAULT_AT, 192),
    "pump-1": Fault("spike", "vibration", FAULT_AT + 40, 1, magnitude=8.0),
    "pump-2": Fault("noise_burst", "current", FAULT_AT + 80, 192),
    "pump-4": Fault("frequency_change", "vibration", FAULT_AT + 20, 192),
}
ROOT = Path(__file__).resolve().parents[2]


def partition_of(asset: str) -> int:
    return ASSETS.index(asset) % PARTITIONS


def plant_series(asset: str) -> sv.testing.PlantSeries:
    fault = FAULTS.get(asset)
    return SyntheticPlant(seed=40 + ASSETS.index(asset)).generate(
        TRAIN_STEPS + TEST_STEPS, [fault] if fault else []
    )


def detector_config() -> sv.DetectorConfig:
    return sv.DetectorConfig(
        window=sv.WindowConfig(
            channels=SyntheticPlant().channels, period_s=PERIOD, window=32, max_gap_s=900.0
        ),
        train=sv.TrainConfig(epochs=80),
        alert=sv.AlertConfig(site="it"),
        warmup_windows=1000,
        warmup_span_s=(TRAIN_STEPS - 1) * PERIOD,
    )


def train_model(path: Path) -> None:
    """Warm a Detector up on every pump's first TRAIN_STEPS and export its model."""
    streams = [series_readings(plant_series(a), a, T0, PERIOD)[:TRAIN_STEPS] for a in ASSETS]
    detector = sv.Detector(detector_config())
    readings = sv.testing.interleave(*streams)
    for start in range(0, len(readings), 5000):
        detector.process(readings[start : start + 5000])
    detector.flush()
    assert detector.ready, "the model did not train on the warm-up data"
    data, _ = detector.export_model()
    path.write_bytes(data)


def plant_payloads(asset: str, start: int = 0, stop: int = TEST_STEPS) -> list[bytes]:
    """JSON payloads of one pump's test steps (after the training steps)."""
    readings = series_readings(plant_series(asset), asset, T0, PERIOD)[TRAIN_STEPS:]
    return [sv.encode_reading(r) for r in readings[start:stop]]


def produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[int, bytes | None, bytes | None]],
    headers: Sequence[list[tuple[str, bytes]] | None] | None = None,
) -> None:
    """Send (partition, key, value) messages in order and wait for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = []
        for i, (partition, key, value) in enumerate(messages):
            h = headers[i] if headers is not None else None
            futures.append(
                producer.send(topic, key=key, value=value, partition=partition, headers=h)
            )
        producer.flush(timeout=60)
        for f in futures:
            f.get(timeout=60)
    finally:
        producer.close(timeout=10)


def plant_messages(start: int = 0, stop: int = TEST_STEPS) -> list[tuple[int, bytes, bytes]]:
    """Every pump's test steps [start, stop), interleaved by step, keyed by asset."""
    per_asset = {a: plant_payloads(a, start, stop) for a in ASSETS}
    out = []
    for step in range(stop - start):
        for a in ASSETS:
            out.append((partition_of(a), a.encode(), per_asset[a][step]))
    return out


def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[Any]:
    """Every record of ``topic`` now (no group: assign all partitions, read to the end)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        parts = None
        deadline = time.monotonic() + timeout_s
        while not parts and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                time.sleep(0.2)
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def alerts_of(bootstrap: str, topic: str) -> list[tuple[bytes, sv.AlertEvent, bytes]]:
    out = []
    for r in read_topic(bootstrap, topic):
        out.append((r.key, sv.AlertEvent.from_cloudevent(json.loads(r.value)), r.value))
    return out


def fault_alerts(events: Sequence[sv.AlertEvent], asset: str) -> list[sv.AlertEvent]:
    fault = FAULTS[asset]
    start = T0 + fault.start * PERIOD
    end = T0 + (fault.end + 32) * PERIOD
    return [e for e in events if e.asset == asset and start <= e.starts_at <= end]


def every_fault_fired_and_resolved(events: Sequence[sv.AlertEvent]) -> bool:
    for asset in FAULTS:
        statuses = {e.status for e in fault_alerts(events, asset)}
        if statuses != {"firing", "resolved"}:
            return False
    return True


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class Topics:
    sensors: str
    alerts: str
    dlq: str
    state: str
    group: str


def write_config(
    path: Path, bootstrap: str, topics: Topics, model: Path | None, **run: Any
) -> Path:
    cfg = detector_config()
    lines = [
        "[kafka]",
        f"bootstrap_servers = {json.dumps(bootstrap.split(','))}",
        f"topics = [{json.dumps(topics.sensors)}]",
        f"group_id = {json.dumps(topics.group)}",
        f"alert_topic = {json.dumps(topics.alerts)}",
        f"dlq_topic = {json.dumps(topics.dlq)}",
        f"state_topic = {json.dumps(topics.state)}",
        "session_timeout_ms = 6000",
        "heartbeat_interval_ms = 1000",
        "max_poll_interval_ms = 10000",
        "max_poll_records = 2000",
        "",
        "[run]",
        "metrics_port = 0",
        f"checkpoint_interval_s = {run.pop('checkpoint_interval_s', 1.0)}",
    ]
    if model is not None:
        lines.append(f"model = {json.dumps(str(model))}")
    for k, v in run.items():
        lines.append(f"{k} = {json.dumps(v)}")
    lines += [
        "",
        "[detector]",
        f"warmup_windows = {cfg.warmup_windows}",
        f"warmup_span_s = {cfg.warmup_span_s}",
        "",
        "[detector.window]",
        f"channels = {json.dumps(list(cfg.window.channels))}",
        f"period_s = {cfg.window.period_s}",
        f"window = {cfg.window.window}",
        f"max_gap_s = {cfg.window.max_gap_s}",
        "",
        "[detector.train]",
        f"epochs = {cfg.train.epochs}",
        "",
        "[detector.alert]",
        'site = "it"',
        "",
    ]
    path.write_text("\n".join(lines))
    return path


class ServiceProcess:
    """``python -m consumers.cli run --config ...`` in a child process, its log in a file."""

    def __init__(
        self,
        config: Path,
        log: Path,
        env: dict[str, str] | None = None,
        command: Sequence[str] = ("run",),
    ) -> None:
        self.config, self.log_path = config, log
        self.command = tuple(command)  # ("train", "--follow") runs the group's trainer
        self._env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    def start(self) -> ServiceProcess:
        self._log = self.log_path.open("ab")
        self._offset = self._log.tell()  # this run's lines start here
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "consumers.cli", *self.command, "--config", str(self.config)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env,
        )
        self._port = None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def port(self) -> int:
        if self._port is None:

            def found() -> bool:
                new = self.log_path.read_bytes()[self._offset :].decode(errors="replace")
                m = re.findall(r"http://127\.0\.0\.1:(\d+)", new)
                self._port = int(m[-1]) if m else None
                return self._port is not None or not self.alive

            wait_for(found, 60, "the service's metrics port in its log")
            if self._port is None:
                raise AssertionError(f"the service exited early:\n{self.log()[-4000:]}")
        return self._port

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name: str) -> float:
        """Sum of a metric's samples (all label sets) from /metrics."""
        _, text = self.get("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head = line.split(" ")[0]
                if head == name or head.startswith(name + "{"):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_ready(self, timeout_s: float = 60) -> None:
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout_s, "the service to be ready")

    def terminate(self, timeout_s: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            self._log.close()


@contextlib.contextmanager
def running(config: Path, log: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(config, log).start()
    try:
        yield service
    finally:
        service.close()


@contextlib.contextmanager
def fed_service(
    bootstrap: str, admin: Any, workdir: Path, readings_per_asset: int
) -> Iterator[tuple[ServiceProcess, int]]:
    """A model-less service (nothing trains: every metric family exists from the start) on a
    fresh sensor topic, running once it has processed ``readings_per_asset`` of every pump's
    readings; yields it and the number of readings. For tests that look at what it exports."""
    from kafka.admin import NewTopic

    u = uuid.uuid4().hex[:10]
    topics = Topics(f"sensors-{u}", f"alerts-{u}", f"dlq-{u}", f"state-{u}", f"group-{u}")
    admin.create_topics([NewTopic(topics.sensors, PARTITIONS, 1)])
    admin.wait_for_topics([topics.sensors], timeout_ms=10_000)
    config = write_config(workdir / "streamvae.toml", bootstrap, topics, None)
    messages = plant_messages(0, readings_per_asset)
    produce(bootstrap, topics.sensors, messages)
    with running(config, workdir / "service.log") as service:
        wait_for(
            lambda: service.metric("streamvae_records_processed_total") == len(messages),
            60,
            "every reading processed",
        )
        yield service, len(messages)
