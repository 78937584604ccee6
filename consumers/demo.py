"""``streamvae demo``: the whole product on one machine, in minutes, with nothing to set up.

Why it exists: a new user should watch readings stream in, a model learn what normal looks
like, faults get paged and resolved, and then read a report that says what was caught — before
deciding whether to point streamvae at their own plant. So the demo runs the *real* parts and
only the plant is simulated:

- a broker: an embedded Tansu (in memory, loopback, a free port) unless ``--bootstrap`` names
  one (then every topic and the group carry a fresh run id, so runs never mix);
- the plant (``consumers/simulate.py``): pumps, compressors and motors with labelled faults,
  produced into the sensor topic at an event-time speed chosen so the plant's days fit the
  ``--duration``;
- the detector service, ``streamvae run`` in a child process with a generated settings file
  (``<report>/demo.toml``) and its log in ``<report>/service.log``, publishing alerts and
  per-window scores;
- a tap on the alert, scores and models topics, and the service's ``/metrics``, feeding the
  live view (``consumers/live.py``) and, at the end, the report (``consumers/report.py``).

It stops after ``--duration`` or once the plant is done and the service has caught up, or on
Ctrl-C: the plant stops, the service gets SIGTERM (it finishes, checkpoints and commits), the
broker is stopped; every child also dies with the demo if the demo itself is killed.

Example:
    >>> DemoOptions(duration_s=30).plant_seconds()
    15.5
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import streamvae as sv
from consumers.broker import free_loopback_port, kill_with_parent
from consumers.live import LiveState, LiveView, alert_line
from consumers.replay import replay
from consumers.simulate import (
    FaultLabel,
    PlantPlan,
    asset_names,
    demo_detector_config,
    plan_plant,
    write_labels,
)

__all__ = ["DemoError", "DemoOptions", "DemoResult", "run_demo"]

_STEPS_PER_DAY = 288
_PERIOD_S = 300.0


class DemoError(RuntimeError):
    """The demo could not run (no broker binary, the service died, a bad option)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How the demo runs; validated here so a bad flag fails before anything starts.

    The plant's ``days`` of event time are paced to fill ``plant_seconds()`` of wall time:
    the rest of the duration is the service's start (~5 s), the first training and a tail in
    which the last alerts resolve.

    Example:
        >>> DemoOptions(duration_s=180).plant_seconds()
        150.0
    """

    duration_s: float = 180.0
    bootstrap: str | None = None
    assets: int = 9
    days: float = 8.0
    healthy_days: float = 3.0
    faults: int = 6
    seed: int = 0
    report_dir: Path = field(default_factory=lambda: Path("streamvae-report"))
    workers: int = 1
    live: bool | None = None  # None: a rich view on a terminal, plain lines otherwise
    retrain_every_days: float = 3.0
    start_ts: float | None = None  # the plant's first event time (default: a midnight, days ago)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s >= 10):
            raise DemoError(f"--duration must be at least 10 s, got {self.duration_s:g} s")
        if self.assets < 3:
            raise DemoError(
                f"--assets must be at least 3 (a pump, a compressor, a motor), got {self.assets}"
            )
        if not (0 < self.healthy_days < self.days):
            raise DemoError(
                f"--healthy-days must be between 0 and --days ({self.days:g}), got "
                f"{self.healthy_days:g}"
            )
        if self.healthy_days < 2.5:
            raise DemoError(
                f"--healthy-days must be at least 2.5: the first model learns from 2 days and "
                f"each asset's threshold calibrates after it, got {self.healthy_days:g}"
            )
        if self.faults < 0 or self.workers < 1:
            raise DemoError("--faults must be >= 0 and --workers >= 1")

    def plant_seconds(self) -> float:
        """Wall seconds the plant's readings are spread over."""
        return max(5.0, self.duration_s - 10.0 - min(20.0, 0.15 * self.duration_s))


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo run measured; ``summary.json`` in the report directory holds the same.

    Example:
        >>> DemoResult({"faults": 0}, Path("r"), 0).exit_code
        0
    """

    summary: Mapping[str, Any]
    report: Path
    exit_code: int


# ---------------------------------------------------------------------------- children


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        if isinstance(v, float) and not math.isfinite(v):
            raise DemoError(f"cannot write {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise DemoError(f"cannot write {type(v).__name__} to TOML")


def _toml(doc: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for the settings file: scalars and lists first, then sub-tables;
    None leaves the key out (TOML has no null)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for k, v in doc.items():
        if v is None:
            continue
        if isinstance(v, Mapping):
            tables.append((f"{prefix}.{k}" if prefix else k, v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    out = ""
    if prefix:
        out += f"[{prefix}]\n"
    out += "".join(line + "\n" for line in lines)
    for name, table in tables:
        out += "\n" + _toml(table, name)
    return out


@dataclass(frozen=True, slots=True)
class _Names:
    sensors: str
    alerts: str
    dlq: str
    state: str
    models: str
    scores: str
    group: str

    @classmethod
    def fresh(cls, run_id: str) -> _Names:
        base = f"streamvae-demo.{run_id}"
        return cls(
            f"{base}.readings",
            f"{base}.alerts",
            f"{base}.dlq",
            f"{base}.state",
            f"{base}.models",
            f"{base}.scores",
            f"streamvae-demo-{run_id}",
        )


def _settings(
    opts: DemoOptions, bootstrap: str, names: _Names, metrics_port: int, registry: Path
) -> dict[str, Any]:
    detector = demo_detector_config(_PERIOD_S)
    detector = dataclasses.replace(
        detector,
        retrain=dataclasses.replace(
            detector.retrain,
            every_s=opts.retrain_every_days * 86_400.0,
            min_windows=min(detector.retrain.min_windows, 1000),
        ),
        alert=dataclasses.replace(detector.alert, site="demo"),
    )
    return {
        "kafka": {
            "bootstrap_servers": bootstrap.split(","),
            "topics": [names.sensors],
            "group_id": names.group,
            "alert_topic": names.alerts,
            "dlq_topic": names.dlq,
            "state_topic": names.state,
            "models_topic": names.models,
            "scores_topic": names.scores,
            # a group forms in ~3 s on Tansu with these (docs/service.md)
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
            "max_poll_interval_ms": 10000,
            "max_poll_records": 2000,
        },
        "run": {
            "metrics_port": metrics_port,
            "checkpoint_interval_s": 2.0,
            "workers": opts.workers,
            "registry": str(registry),
            "log_format": "json",
        },
        "detector": detector.to_dict(),
    }


def _create_topics(bootstrap: str, names: _Names) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="streamvae-demo")
    try:
        admin.create_topics(
            [
                NewTopic(names.sensors, 1, 1),
                NewTopic(names.alerts, 1, 1),
                NewTopic(names.dlq, 1, 1),
                NewTopic(names.scores, 1, 1),
                NewTopic(names.state, 1, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(names.models, 1, 1, topic_configs={"cleanup.policy": "compact"}),
            ]
        )
    finally:
        admin.close()


class _Halted(Exception):
    """Raised inside the replay loop when the demo stops the plant."""


class _Plant(threading.Thread):
    """Produces the plan's readings, paced in event time; stops when asked."""

    def __init__(self, bootstrap: str, topic: str, plan: PlantPlan, speed: float) -> None:
        super().__init__(name="demo-plant", daemon=True)
        self.bootstrap, self.topic, self.plan, self.speed = bootstrap, topic, plan, speed
        self.sent = 0
        self.event_ts: float | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        from kafka import KafkaProducer

        try:
            producer = KafkaProducer(
                bootstrap_servers=self.bootstrap.split(","),
                acks="all",
                linger_ms=5,
                enable_idempotence=True,
                client_id="streamvae-demo-plant",
            )
            failures: list[BaseException] = []
            readings = self.plan.readings

            def send(key: bytes, value: bytes) -> None:
                if self._halt.is_set():
                    raise _Halted
                producer.send(self.topic, key=key, value=value).add_errback(failures.append)
                self.event_ts = readings[self.sent].ts
                self.sent += 1

            def sleep(seconds: float) -> None:
                if self._halt.wait(seconds):
                    raise _Halted

            try:
                with contextlib.suppress(_Halted):
                    replay(readings, send, speed=self.speed, sleep=sleep)
                producer.flush(timeout=30)
            finally:
                producer.close(timeout=10)
            if failures:
                raise DemoError(f"the broker refused {len(failures)} reading(s): {failures[0]!r}")
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished.set()


class _Tap(threading.Thread):
    """Reads the alert, scores and models topics from their start (no group: no join wait)."""

    def __init__(self, bootstrap: str, names: _Names) -> None:
        super().__init__(name="demo-tap", daemon=True)
        self.bootstrap, self.names = bootstrap, names
        self.lock = threading.Lock()
        self.alerts: list[bytes] = []
        self.scores: list[dict[str, Any]] = []
        self.models: list[str] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self.idle = threading.Event()  # set when a poll returned nothing new

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap.split(","),
                enable_auto_commit=False,
                client_id="streamvae-demo-tap",
                fetch_max_wait_ms=100,
            )
            tps = [
                TopicPartition(t, 0)
                for t in (self.names.alerts, self.names.scores, self.names.models)
            ]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            try:
                while not self._halt.is_set():
                    batches = consumer.poll(timeout_ms=200, max_records=5000)
                    got = 0
                    with self.lock:
                        for tp, records in batches.items():
                            got += len(records)
                            for rec in records:
                                if tp.topic == self.names.alerts:
                                    self.alerts.append(rec.value)
                                elif tp.topic == self.names.scores:
                                    self.scores.append(json.loads(rec.value))
                                elif rec.value is not None:
                                    self.models.append(_model_version(rec))
                    if got:
                        self.idle.clear()
                    else:
                        self.idle.set()
            finally:
                consumer.close()
        except BaseException as exc:
            self.error = exc
            self.idle.set()


def _model_version(rec: Any) -> str:
    """The version of a model published on the models topic (from its artefact)."""
    try:
        art = sv.loads_artefact(bytes(rec.value), "<model from the models topic>")
    except sv.StreamVAEError:
        return "?"
    return str(art.metadata.get("model_version", "?"))


def _scrape(port: int) -> dict[str, float]:
    """The service's /metrics as ``{name{labels}: value}``, summing nothing."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[head] = float(value)
    return out


def _total(metrics: Mapping[str, float], name: str, label: str = "") -> float:
    return sum(
        v
        for k, v in metrics.items()
        if (k == name or k.startswith(name + "{")) and (not label or label in k)
    )


def _info_label(metrics: Mapping[str, float], name: str, label: str) -> str:
    for k in metrics:
        if k.startswith(name + "{"):
            for part in k[len(name) + 1 : -1].split(","):
                key, _, value = part.partition("=")
                if key == label:
                    return value.strip('"')
    return ""


class _Service:
    """``streamvae run`` as a child process: its own session (Ctrl-C reaches only the demo,
    which then stops it in order) and killed by the kernel if the demo dies."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        self._log = log.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "consumers.cli", "run", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=kill_with_parent,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout_s: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return int(self.proc.returncode)


# ---------------------------------------------------------------------------- the run


@contextlib.contextmanager
def _broker(opts: DemoOptions, view: LiveView) -> Iterator[tuple[str, str]]:
    if opts.bootstrap:
        yield opts.bootstrap, "the given cluster"
        return
    from consumers.broker import BrokerError, EmbeddedBroker

    broker = EmbeddedBroker(die_with_parent=True)
    try:
        broker.start()
    except BrokerError as exc:
        raise DemoError(f"could not start the embedded broker: {exc}") from None
    try:
        view.print(f"Started an embedded Tansu broker on {broker.bootstrap_servers} (in memory)")
        yield broker.bootstrap_servers, "embedded Tansu"
    finally:
        broker.stop()


def _truth(labels: list[FaultLabel], asset: str, ts: float, tolerance_s: float) -> str:
    for x in labels:
        if x.asset == asset and x.start_ts <= ts <= x.end_ts + tolerance_s:
            return f"{x.kind} on {x.channel}"
    return ""


def run_demo(opts: DemoOptions, out: TextIO) -> DemoResult:
    """Run the demo end to end; returns its summary (also in ``<report>/summary.json``)."""
    report_dir = opts.report_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    view = LiveView(out, rich=opts.live)
    steps = round(opts.days * _STEPS_PER_DAY)
    start_ts = opts.start_ts
    if start_ts is None:  # a midnight (UTC): the same plant whenever the demo runs
        start_ts = (math.floor(time.time() / 86_400.0) - math.ceil(opts.days)) * 86_400.0
    try:
        plan = plan_plant(
            assets=opts.assets,
            steps=steps,
            faults=opts.faults,
            period_s=_PERIOD_S,
            start_ts=start_ts,
            healthy_steps=round(opts.healthy_days * _STEPS_PER_DAY),
            seed=opts.seed,
        )
    except ValueError as exc:
        raise DemoError(str(exc)) from None
    run_id = uuid.uuid4().hex[:8]
    names = _Names.fresh(run_id)
    labels_path = write_labels(
        report_dir / "labels.json",
        plan,
        topic=names.sensors,
        assets=opts.assets,
        period_s=_PERIOD_S,
        start_ts=start_ts,
        seed=opts.seed,
    )
    span_s = steps * _PERIOD_S
    speed = span_s / opts.plant_seconds()
    fleet = [k for _, k in asset_names(opts.assets)]
    kinds = [f"{fleet.count(k)} {k}s" for k in dict.fromkeys(fleet)]
    view.print(
        f"streamvae demo: {opts.assets} assets ({', '.join(kinds)}), {opts.days:g} days of "
        f"5-minute readings ({len(plan.readings):,} readings, {plan.missing} missing, "
        f"{plan.late} late) with {len(plan.labels)} injected faults after {opts.healthy_days:g} "
        f"healthy days, streamed at {speed:,.0f}x event time over {opts.plant_seconds():.0f} s; "
        f"labels in {labels_path}"
    )
    detector_cfg = demo_detector_config(_PERIOD_S)
    tolerance_s = detector_cfg.window.window * _PERIOD_S
    state = LiveState(elapsed_s=0.0, duration_s=opts.duration_s, sent=0, total=len(plan.readings))
    started = time.monotonic()
    events: list[sv.AlertEvent] = []
    service_rc: int | None = None
    interrupted = False
    metrics: dict[str, float] = {}
    processed_history: list[tuple[float, float]] = []
    with _broker(opts, view) as (bootstrap, broker_kind):
        state.broker = f"{bootstrap} ({broker_kind})"
        _create_topics(bootstrap, names)
        metrics_port = free_loopback_port()
        config_path = report_dir / "demo.toml"
        config_path.write_text(
            "# Generated by `streamvae demo`: the settings the demo's service ran with.\n"
            + _toml(_settings(opts, bootstrap, names, metrics_port, report_dir / "registry"))
        )
        log_path = report_dir / "service.log"
        log_path.write_bytes(b"")
        service = _Service(config_path, log_path)
        tap = _Tap(bootstrap, names)
        plant = _Plant(bootstrap, names.sensors, plan, speed)
        view.print(
            f"Started the detector service (pid {service.proc.pid}; settings {config_path}, "
            f"log {log_path}, metrics http://127.0.0.1:{metrics_port}/metrics)"
        )
        tap.start()
        plant.start()
        view.start()
        seen_alerts = 0
        last_scrape = 0.0
        drained_since: float | None = None
        try:
            while True:
                time.sleep(0.25)
                now = time.monotonic()
                state.elapsed_s = now - started
                state.sent, state.event_ts = plant.sent, plant.event_ts
                if plant.error is not None:
                    raise DemoError(f"the plant's producer failed: {plant.error!r}")
                if tap.error is not None:
                    raise DemoError(f"reading the alert topic failed: {tap.error!r}")
                if not service.alive:
                    raise DemoError(
                        f"the detector service exited ({service.proc.returncode}); the end of "
                        f"its log ({log_path}):\n{service.log_tail()}"
                    )
                if now - last_scrape >= 1.0:
                    last_scrape = now
                    with contextlib.suppress(OSError):
                        metrics = _scrape(metrics_port)
                        _apply_metrics(state, metrics, processed_history, now)
                with tap.lock:
                    new = tap.alerts[seen_alerts:]
                    seen_alerts = len(tap.alerts)
                    if tap.scores:
                        state.model_version = str(tap.scores[-1].get("model_version", ""))
                        state.assets = max(state.assets, _assets_scored(tap.scores))
                for value in new:
                    event = sv.AlertEvent.from_cloudevent(json.loads(value))
                    if any(e.id == event.id for e in events[-50:]):
                        continue  # at-least-once: a replayed duplicate
                    events.append(event)
                    truth = _truth(plan.labels, event.asset, event.window_end, tolerance_s)
                    line = alert_line(event, truth)
                    state.recent.append(line)
                    state.alerts_total += 1
                    if event.status == "firing":
                        state.firing_now += 1
                        state.false_alerts += not truth
                    else:
                        state.firing_now = max(0, state.firing_now - 1)
                    view.note_alert(line)
                state.phase = _phase(state, plant)
                view.update(state)
                if state.elapsed_s >= opts.duration_s:
                    break
                processed = _total(metrics, "streamvae_records_processed_total")
                caught_up = (
                    plant.finished.is_set()
                    and processed >= plant.sent
                    and state.firing_now == 0
                    and tap.idle.is_set()
                )
                if caught_up:
                    drained_since = drained_since or now
                    if now - drained_since >= 3.0:
                        state.phase = "done: the plant's days are over and every reading scored"
                        break
                else:
                    drained_since = None
        except KeyboardInterrupt:
            interrupted = True
            state.phase = "interrupted (Ctrl-C): stopping"
        finally:
            plant.stop()
            plant.join(timeout=15)
            view.stop(state)
            view.print("Stopping the detector service (SIGTERM: finish, checkpoint, commit) ...")
            service_rc = service.stop()
            # the alerts published before the service exited
            deadline = time.monotonic() + 5.0
            tap.idle.clear()
            while time.monotonic() < deadline and not tap.idle.wait(0.5):
                pass
            tap.stop()
            tap.join(timeout=10)
        with tap.lock:
            docs = list(tap.alerts)
            scores = list(tap.scores)
            models = list(tap.models)
    elapsed = time.monotonic() - started
    summary = _summarise(
        opts,
        plan,
        docs,
        scores,
        models,
        metrics,
        elapsed,
        service_rc,
        interrupted,
        tolerance_s,
        speed,
    )
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    # the data behind the report, as the topics carried it
    (report_dir / "alerts.jsonl").write_bytes(b"".join(d + b"\n" for d in docs))
    with (report_dir / "scores.jsonl").open("w") as f:
        for s in scores:
            f.write(json.dumps(s, separators=(",", ":")) + "\n")
    report = _write_report(report_dir, plan, labels_path, docs, scores, summary)
    _print_summary(out, summary, report)
    code = 0 if service_rc == 0 else 1
    if interrupted:
        code = 130
    return DemoResult(summary, report, code)


def _assets_scored(scores: list[dict[str, Any]]) -> int:
    return len({s["asset"] for s in scores[-2000:]})


def _apply_metrics(
    state: LiveState,
    metrics: Mapping[str, float],
    history: list[tuple[float, float]],
    now: float,
) -> None:
    processed = _total(metrics, "streamvae_records_processed_total")
    history.append((now, processed))
    while len(history) > 2 and now - history[0][0] > 5.0:
        history.pop(0)
    (t0, p0), (t1, p1) = history[0], history[-1]
    state.readings_per_s = (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0
    state.lag = _total(metrics, "streamvae_consumer_lag_records")
    state.warmup = _total(metrics, "streamvae_warmup_progress_ratio")
    state.training = _total(metrics, "streamvae_first_training_progress_ratio")
    state.retrains_promoted = int(_total(metrics, "streamvae_retrains_total", 'result="promoted"'))
    state.retrains_rejected = int(_total(metrics, "streamvae_retrains_total", 'result="rejected"'))
    version = _info_label(metrics, "streamvae_model_info", "version")
    if version and not state.model_version:
        state.model_version = version


def _phase(state: LiveState, plant: _Plant) -> str:
    if state.sent == 0:
        return "starting the service"
    if not state.model_version:
        if state.training > 0:
            return "training the first model"
        return "warm-up: learning what normal looks like"
    if plant.finished.is_set():
        return "the plant is done: scoring what is left"
    return "scoring live: alerts fire and resolve"


def _summarise(
    opts: DemoOptions,
    plan: PlantPlan,
    docs: list[bytes],
    scores: list[dict[str, Any]],
    models: list[str],
    metrics: Mapping[str, float],
    elapsed_s: float,
    service_rc: int | None,
    interrupted: bool,
    tolerance_s: float,
    speed: float,
) -> dict[str, Any]:
    from streamvae.evaluation import FaultSpan, alert_spans, match_alerts, scored_asset_hours

    decoded = [json.loads(d) for d in docs]
    spans = alert_spans(decoded)
    faults = [FaultSpan(x.asset, x.kind, x.channel, x.start_ts, x.end_ts) for x in plan.labels]
    asset_hours = scored_asset_hours((str(s["asset"]), float(s["ts"])) for s in scores)
    result = match_alerts(faults, spans, tolerance_s=tolerance_s, asset_hours=asset_hours)
    processed = _total(metrics, "streamvae_records_processed_total")
    return {
        "duration_s": round(elapsed_s, 1),
        "interrupted": interrupted,
        "service_exit_code": service_rc,
        "assets": opts.assets,
        "readings_planned": len(plan.readings),
        "readings_processed": int(processed),
        "readings_missing": plan.missing,
        "readings_late": plan.late,
        "windows_scored": len(scores),
        "throughput_readings_per_s": round(processed / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "speed": round(speed, 1),
        "model_versions": sorted({str(s.get("model_version", "")) for s in scores} - {""}),
        "models_published": len(models),
        "retrains_promoted": int(_total(metrics, "streamvae_retrains_total", 'result="promoted"')),
        "retrains_rejected": int(_total(metrics, "streamvae_retrains_total", 'result="rejected"')),
        "alert_events": len(decoded),
        "faults": len(faults),
        "faults_detected": result.detected,
        "detection_rate": result.detection_rate or 0.0,
        "median_time_to_detect_min": None
        if result.median_time_to_detect_s is None
        else round(result.median_time_to_detect_s / 60.0, 1),
        "tolerance_s": tolerance_s,
        "false_alerts": len(result.false_alerts),
        "scored_asset_hours": round(asset_hours, 1),
        "false_alerts_per_asset_hour": result.false_alerts_per_asset_hour or 0.0,
        "per_fault": [
            {
                "asset": o.fault.asset,
                "kind": o.fault.kind,
                "channel": o.fault.channel,
                "detected": o.detected,
                "time_to_detect_min": None
                if o.time_to_detect_s is None
                else round(o.time_to_detect_s / 60.0, 1),
                "top_channel": o.top_channel,
            }
            for o in result.outcomes
        ],
    }


def _write_report(
    report_dir: Path,
    plan: PlantPlan,
    labels_path: Path,
    docs: list[bytes],
    scores: list[dict[str, Any]],
    summary: Mapping[str, Any],
) -> Path:
    from consumers.report import write_report
    from streamvae.plant import CHANNEL_UNITS

    facts = {
        "duration": f"{summary['duration_s']:.0f} s of wall time",
        "assets": f"{summary['assets']}",
        "readings": f"{summary['readings_processed']:,} processed of "
        f"{summary['readings_planned']:,} sent ({summary['readings_missing']} missing, "
        f"{summary['readings_late']} late)",
        "throughput": f"{summary['throughput_readings_per_s']:,.0f} readings/s",
        "pace": f"the plant streamed at {summary['speed']:,.0f}x event time (a paced demo, not "
        "a benchmark: benchmarks/bench_service.py measures the ceiling)",
        "windows scored": f"{summary['windows_scored']:,}",
        "models": f"{', '.join(summary['model_versions']) or 'none'}; retrains "
        f"{summary['retrains_promoted']} promoted, {summary['retrains_rejected']} rejected",
        "scored time": f"{summary['scored_asset_hours']:,.1f} asset-hours of event time",
    }
    return write_report(
        report_dir,
        readings=plan.readings,
        labels_path=labels_path,
        alert_documents=[json.loads(d) for d in docs],
        scores=scores,
        facts=facts,
        asset_units={a: CHANNEL_UNITS[k] for a, k in asset_names(int(summary["assets"]))},
        asset_kinds=dict(asset_names(int(summary["assets"]))),
        tolerance_s=float(summary["tolerance_s"]),
        asset_hours=float(summary["scored_asset_hours"]) or None,
    )


def _print_summary(out: TextIO, s: Mapping[str, Any], report: Path) -> None:
    w = out.write
    w(
        f"\nSummary: {s['faults_detected']}/{s['faults']} injected faults detected "
        f"({100 * s['detection_rate']:.0f} %); {s['false_alerts']} false alert(s) in "
        f"{s['scored_asset_hours']:,.1f} asset-hours of event time "
        f"({s['false_alerts_per_asset_hour']:.3f} per asset-hour)\n"
    )
    w(f"  {'asset':<15}{'fault':<14}{'channel':<13}{'detected':<10}{'after':>10}  top channel\n")
    for f in s["per_fault"]:
        after = "-" if f["time_to_detect_min"] is None else f"{f['time_to_detect_min']:.0f} min"
        w(
            f"  {f['asset']:<15}{f['kind']:<14}{f['channel']:<13}"
            f"{'yes' if f['detected'] else 'no':<10}{after:>10}  {f['top_channel'] or '-'}\n"
        )
    w(
        f"  {s['readings_processed']:,} readings in {s['duration_s']:.0f} s; models "
        f"{', '.join(s['model_versions']) or 'none'} ({s['retrains_promoted']} retrain(s) "
        f"promoted); service exit code {s['service_exit_code']}\n"
    )
    w(f"Report: {report} (open it in a browser; it works offline)\n")
    out.flush()
