"""The Kafka service's throughput against the raw consume+decode ceiling, and its latency.

On one broker (``KAFKA_BOOTSTRAP_SERVERS``, else an embedded Tansu broker on loopback), one
sensor topic, in one run:

1. **Ceiling**: a plain kafka-python consumer reads every record of the topic and decodes it
   with ``ReadingDecoder`` (no scoring, no producing): records/s.
2. **Service**: ``streamvae run`` (a real subprocess, the default model shape started from an
   artefact, the default config) consumes the same records from the start; readings/s from its
   first consumed record to the last processed one (``/metrics``), and the ratio to (1).
3. **Latency**: a fresh topic fed at half the service's rate for ``--latency-s`` seconds, with a
   one asset in eight whose readings jump by 50 standard deviations for 20 steps out of every 60 (an
   alert rule of k = m = 1): for every alert, the time from producing the reading that made its
   window final to the alert's arrival on the alert topic (both broker timestamps: CreateTime
   of the producer and of the service's producer), p50 / p99.

    python benchmarks/bench_service.py                        # 500 assets × 200 steps
    python benchmarks/bench_service.py --assets 1000 --steps 100 --latency-s 30

Targets (issue 4): service ≥ 0.8 × ceiling; p99 produce→alert ≤ 250 ms at half rate.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import confluent_kafka
import numpy as np
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

import streamvae as sv
from consumers.broker import EmbeddedBroker
from streamvae.testing import SyntheticPlant

PERIOD = 1.0  # one reading per asset per second of event time
T0 = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU of a process (and its descendants) so far (Linux /proc; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, frontier = {pid}, [pid] if descendants else []
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _) in stats.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(stats[p][1] for p in tree if p in stats)


def make_model(path: Path, config: sv.DetectorConfig, values: np.ndarray) -> None:
    """The default model shape (untrained: cost does not depend on weights) with a group
    scaler fitted on the data, exported as an artefact the service starts from."""
    scaler = sv.StandardScaler.fit(values.reshape(-1, values.shape[-1]))
    detector = sv.Detector(config, sv.RecurrentVAE(config.vae()), scalers=scaler)
    path.write_bytes(detector.export_model()[0])


def payloads(
    values: np.ndarray, channels: tuple[str, ...], first_step: int = 0
) -> list[tuple[bytes, bytes]]:
    out = []
    n_assets, steps, _ = values.shape
    for t in range(steps):
        for a in range(n_assets):
            reading = sv.Reading(
                f"pump-{a:04d}",
                T0 + (first_step + t) * PERIOD,
                dict(zip(channels, values[a, t].tolist(), strict=True)),
            )
            out.append((reading.asset.encode(), sv.encode_reading(reading)))
    return out


def write_config(
    path: Path,
    bootstrap: str,
    names: dict[str, str],
    model: Path,
    channels: tuple[str, ...],
    k: int,
    workers: int,
) -> None:
    path.write_text(
        "\n".join(
            [
                "[kafka]",
                f"bootstrap_servers = {json.dumps(bootstrap.split(','))}",
                f"topics = [{json.dumps(names['sensors'])}]",
                f"group_id = {json.dumps(names['group'])}",
                f"alert_topic = {json.dumps(names['alerts'])}",
                f"dlq_topic = {json.dumps(names['dlq'])}",
                f"state_topic = {json.dumps(names['state'])}",
                "session_timeout_ms = 6000",
                "heartbeat_interval_ms = 1000",
                "max_poll_interval_ms = 20000",
                "poll_timeout_ms = 20",
                "",
                "[run]",
                "metrics_port = 0",
                f"workers = {workers}",
                # scoring is measured here, retraining by bench_retrain.py: the untrained
                # model's scores drift and would start a retrain mid-measurement
                'trainer = "off"',
                f"model = {json.dumps(str(model))}",
                "",
                "[detector.window]",
                f"channels = {json.dumps(list(channels))}",
                f"period_s = {PERIOD}",
                "max_gap_s = 5.0",
                "",
                "[detector.alert]",
                f"k = {k}",
                f"m = {k}",
                "",
            ]
        )
    )


class Service:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "consumers.cli", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.port = 0
        deadline = time.monotonic() + 60
        while not self.port and time.monotonic() < deadline:
            m = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                raise SystemExit(f"the service exited:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and (line.split(" ")[0] == name or line.startswith(name + "{"))
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024
    )
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=120)
    producer.close()


def ceiling(bootstrap: str, topic: str, n: int) -> float:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, max_poll_records=5000
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    decoder = sv.ReadingDecoder()
    got = 0
    start = None
    while got < n:
        for records in consumer.poll(timeout_ms=500, max_records=5000).values():
            if start is None:
                start = time.perf_counter()
            for r in records:
                decoder.decode(r.value, sv.SourceRef(r.topic, r.partition, r.offset))
            got += len(records)
    assert start is not None
    seconds = time.perf_counter() - start
    consumer.close()
    return n / seconds


def latency_run(
    bootstrap: str,
    admin: KafkaAdminClient,
    workdir: Path,
    model: Path,
    config: sv.DetectorConfig,
    values: np.ndarray,
    args: argparse.Namespace,
    rate: float,
    broker_pid: int | None,
) -> list[float]:
    """Feed a fresh topic at ``rate`` readings/s; produce→alert latencies in seconds."""
    channels = config.window.channels
    u = uuid.uuid4().hex[:8]
    names = {k: f"bench-{k}-{u}" for k in ("sensors", "alerts", "dlq", "state", "group")}
    admin.create_topics([NewTopic(names["sensors"], 1, 1), NewTopic(names["alerts"], 1, 1)])
    cfg = workdir / f"latency-{rate:.0f}.toml"
    write_config(cfg, bootstrap, names, model, channels, k=1, workers=args.workers)
    service = Service(cfg, workdir / f"latency-{rate:.0f}.log")
    steps = int(args.latency_s * rate / args.assets)
    warm = config.window.window + config.threshold.grace + 10
    sent: dict[tuple[str, float], float] = {}
    lock = threading.Lock()
    try:
        time.sleep(4)  # group join
        total_steps = warm + steps
        series = np.stack(
            [SyntheticPlant(seed=1000 + i).generate(total_steps).values for i in range(args.assets)]
        )
        jumpers = set(range(0, args.assets, 8))  # one asset in eight
        sd = values.reshape(-1, len(channels)).std(axis=0)
        # Encoded before the clock starts: the load generator must not compete for the CPU
        # (librdkafka's producer sends from C threads: ~1 µs of Python per message).
        steps_payloads = []
        for t in range(total_steps):
            row_payloads = []
            for a in range(args.assets):
                row = series[a, t].copy()
                if t >= warm and a in jumpers and (t - warm) % 60 < 20:
                    row += 50 * sd
                asset = f"pump-{a:04d}"
                ts = T0 + t * PERIOD
                reading = sv.Reading(asset, ts, dict(zip(channels, row.tolist(), strict=True)))
                row_payloads.append((asset, ts, sv.encode_reading(reading)))
            steps_payloads.append(row_payloads)
        producer = confluent_kafka.Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": 1}
        )

        def delivered(key: tuple[str, float], err: object, msg: Any) -> None:
            if err is None:  # CreateTime: set by the producer when produce() was called
                with lock:
                    sent[key] = msg.timestamp()[1] / 1000.0

        pids = {"service": service.proc.pid, "load generator": os.getpid()}
        if broker_pid is not None:
            pids["broker"] = broker_pid
        own = {"load generator"}  # the service and the broker are children of this process
        cpu_start = {name: cpu_seconds(pid, name not in own) for name, pid in pids.items()}
        t_start = time.perf_counter()
        for t, row_payloads in enumerate(steps_payloads):
            for asset, ts, payload in row_payloads:
                producer.produce(
                    names["sensors"],
                    value=payload,
                    key=asset.encode(),
                    on_delivery=functools.partial(delivered, (asset, ts)),
                )
            producer.poll(0)
            # pace: step t is due at (t+1) × assets / rate seconds after the start
            pause = t_start + (t + 1) * args.assets / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        producer.flush(30)
        wall = time.perf_counter() - t_start
        used = ", ".join(
            f"{name} {(cpu_seconds(pid, name not in own) - cpu_start[name]) / wall:.2f}"
            for name, pid in pids.items()
        )
        print(f"   CPU while feeding {rate:,.0f} readings/s (cores): {used}", flush=True)
        time.sleep(3)
    finally:
        service.stop()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(names["alerts"], 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    latencies = []
    while consumer.position(tp) < end:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                event = sv.AlertEvent.from_cloudevent(json.loads(r.value))
                if event.status != "firing":
                    continue
                # the window ending at window_end became final with the next step's reading
                key = (event.asset, round(event.window_end + PERIOD, 3))
                produced = sent.get(key)
                if produced is not None:
                    latencies.append(r.timestamp / 1000.0 - produced)
    consumer.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--latency-s", type=float, default=20.0)
    parser.add_argument(
        "--workers", type=int, default=2, help="the service's run.workers (default 2)"
    )
    parser.add_argument(
        "--latency-rate", type=float, default=0.0, help="readings/s (default: half the service's)"
    )
    args = parser.parse_args()
    channels = SyntheticPlant().channels
    config = sv.DetectorConfig(
        window=sv.WindowConfig(channels=channels, period_s=PERIOD, max_gap_s=5.0)
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-service-"))
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not bootstrap:
        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap_servers
    try:
        print(
            f"broker {bootstrap}; {os.cpu_count()} cores; {args.assets} assets × "
            f"{args.steps} steps × {len(channels)} channels",
            flush=True,
        )
        values = np.stack(
            [SyntheticPlant(seed=i).generate(args.steps).values for i in range(args.assets)]
        )
        model = workdir / "model.safetensors"
        make_model(model, config, values)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        u = uuid.uuid4().hex[:8]
        names = {k: f"bench-{k}-{u}" for k in ("sensors", "alerts", "dlq", "state", "group")}
        admin.create_topics([NewTopic(names["sensors"], 1, 1)])
        messages = payloads(values, channels)
        print(f"producing {len(messages):,} readings ...", flush=True)
        produce(bootstrap, names["sensors"], messages)

        rate_ceiling = ceiling(bootstrap, names["sensors"], len(messages))
        print(
            f"1. ceiling, kafka-python consume + decode: {rate_ceiling:,.0f} records/s", flush=True
        )

        cfg = workdir / "throughput.toml"
        write_config(cfg, bootstrap, names, model, channels, k=16, workers=args.workers)
        service = Service(cfg, workdir / "throughput.log")
        try:
            start = None
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                consumed = service.metric("streamvae_records_consumed_total")
                if start is None and consumed > 0:
                    start = time.perf_counter()
                if service.metric("streamvae_records_processed_total") >= len(messages):
                    break
                time.sleep(0.02)
            assert start is not None
            seconds = time.perf_counter() - start
        finally:
            service.stop()
        rate_service = len(messages) / seconds
        print(
            f"2. service, end to end: {rate_service:,.0f} readings/s "
            f"(ratio {rate_service / rate_ceiling:.2f}, target ≥ 0.8)",
            flush=True,
        )

        # 3. latency, at half the service's rate and at a third of it
        rates = [args.latency_rate] if args.latency_rate else [rate_service / 2, rate_service / 3]
        for share, rate in zip(("half", "a third of"), rates, strict=False):
            latencies = latency_run(
                bootstrap,
                admin,
                workdir,
                model,
                config,
                values,
                args,
                rate,
                broker.pid if broker is not None else None,
            )
            if not latencies:
                print(f"3. latency: no alerts arrived (see the service log in {workdir})")
                return 1
            ms = np.array(latencies) * 1000
            label = f"{share} the service's rate" if not args.latency_rate else "as asked"
            print(
                f"3. produce→alert latency at {rate:,.0f} readings/s ({label}), {len(ms)} "
                f"alerts: p50 {np.percentile(ms, 50):.0f} ms, p99 {np.percentile(ms, 99):.0f} ms"
                f", max {ms.max():.0f} ms (target p99 ≤ 250 ms at half the rate)",
                flush=True,
            )
        admin.close()
        return 0
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    raise SystemExit(main())
