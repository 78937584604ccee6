"""``streamvae bridge alertmanager`` against a real Alertmanager (Debian's
``prometheus-alertmanager``, installed by ``scripts/setup.sh``) and a real broker.

What Alertmanager itself reports (``GET /api/v2/alerts``) is the evidence: the alert goes
active with our labels, is re-sent while firing, disappears once resolved, and a restarted
bridge re-sends what is still firing from the topic's history, not from a re-delivery.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import NewTopic

import streamvae as sv
from consumers.bridge import AlertmanagerTarget, Bridge, BridgeOptions, RetryPolicy
from consumers.broker import free_loopback_port, kill_with_parent
from consumers.settings import Settings
from tests.integration import harness as h

pytestmark = pytest.mark.slow

AM_CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on a free loopback port, clustering off, state in a temp dir."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail(
            "prometheus-alertmanager is not installed: run `bash scripts/setup.sh` as root (it "
            "installs Debian's prometheus-alertmanager) or put alertmanager on PATH",
            pytrace=False,
        )
    work = tmp_path_factory.mktemp("alertmanager")
    (work / "alertmanager.yml").write_text(AM_CONFIG)
    port = free_loopback_port()
    log = (work / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=kill_with_parent,  # dies with the test process
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"alertmanager exited: {(work / 'alertmanager.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        h.wait_for(ready, 30, "alertmanager to be ready", every_s=0.1)
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def alert_topic(kafka_admin: Any) -> str:
    name = f"alerts-am-{uuid.uuid4().hex[:10]}"
    kafka_admin.create_topics([NewTopic(name, 3, 1)])
    kafka_admin.wait_for_topics([name], timeout_ms=10_000)
    return name


def bridge_config(path: Path, bootstrap: str, alert_topic: str) -> Path:
    """The service's settings file as a bridge shares it, with our alert topic; sessions of
    3 s, so that a group forms in about 1.5 s on the test broker."""
    u = uuid.uuid4().hex[:10]
    topics = h.Topics(f"sensors-{u}", alert_topic, f"dlq-{u}", f"state-{u}", f"group-{u}")
    h.write_config(path, bootstrap, topics, None)
    path.write_text(
        path.read_text().replace("session_timeout_ms = 6000", "session_timeout_ms = 3000")
    )
    return path


def until(check: Any, what: str) -> None:
    h.wait_for(check, 30, what, every_s=0.05)


@pytest.fixture(scope="module")
def config(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, alert_topic: str
) -> Path:
    path = tmp_path_factory.mktemp("bridge") / "streamvae.toml"
    return bridge_config(path, kafka_bootstrap, alert_topic)


@pytest.fixture(scope="module")
def cli_bridge(
    config: Path, alertmanager: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[h.ServiceProcess]:
    """``streamvae bridge alertmanager`` as a user runs it, re-sending every 0.5 s."""
    log = tmp_path_factory.mktemp("bridge-log") / "bridge.log"
    command = ("bridge", "alertmanager", "--url", alertmanager, "--resend-interval", "0.5s")
    process = h.ServiceProcess(config, log, command=command).start()
    try:
        h.wait_for(
            lambda: "assigned" in process.log() or not process.alive,
            60,
            "the bridge's partitions",
            0.05,
        )
        assert process.alive, process.log()
        yield process
    finally:
        process.close()


def firing(asset: str, ahead_s: float = 0.0) -> sv.AlertEvent:
    now = round(time.time() - 600.0 + ahead_s, 3)
    return sv.AlertEvent(
        status="firing",
        site="it",
        asset=asset,
        severity="critical",
        summary=f"{asset} anomalous: score 9.7 > threshold 4.1 (p99.5); top channel vibration",
        starts_at=now,
        ends_at=None,
        score=9.7,
        threshold=4.1,
        contributions={"vibration": 0.8, "flow": 0.2},
        window_start=now - 300.0,
        window_end=now,
        model_version="v0001",
    )


def resolved(event: sv.AlertEvent) -> sv.AlertEvent:
    return sv.AlertEvent(
        **{
            **{f: getattr(event, f) for f in event.__dataclass_fields__},
            "status": "resolved",
            "severity": "warning",  # the episode's peak: not the firing event's severity
            "summary": f"{event.asset} recovered",
            "ends_at": round(time.time() - 60.0, 3),
            "reason": "recovered",
        }
    )


def publish(bootstrap: str, topic: str, *events: sv.AlertEvent) -> None:
    h.produce(bootstrap, topic, [(0, e.dedup_key.encode(), e.to_json()) for e in events])


def active(url: str) -> dict[str, dict[str, Any]]:
    """Alertmanager's own view: active alerts by our dedup_key label."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts?active=true", timeout=5) as r:
        alerts = json.load(r)
    return {a["labels"].get("dedup_key", ""): a for a in alerts}


def test_a_firing_alert_goes_active_in_alertmanager_with_our_labels(
    kafka_bootstrap, alert_topic, alertmanager, cli_bridge
):
    event = firing(f"pump-{uuid.uuid4().hex[:6]}")
    publish(kafka_bootstrap, alert_topic, event)
    until(lambda: event.dedup_key in active(alertmanager), "the alert in alertmanager")
    alert = active(alertmanager)[event.dedup_key]
    assert alert["labels"] == {
        "alertname": "SensorAnomaly",
        "asset": event.asset,
        "site": "it",
        "severity": "critical",
        "dedup_key": event.dedup_key,
    }
    assert alert["status"]["state"] == "active"
    assert alert["startsAt"] == sv.types.format_event_time(event.starts_at)
    assert alert["annotations"]["summary"] == event.summary
    assert alert["annotations"]["event_id"] == event.id


def test_a_firing_alert_is_re_sent_to_alertmanager_while_it_fires(
    kafka_bootstrap, alert_topic, alertmanager, cli_bridge
):
    event = firing(f"pump-{uuid.uuid4().hex[:6]}")
    publish(kafka_bootstrap, alert_topic, event)
    until(lambda: event.dedup_key in active(alertmanager), "the alert in alertmanager")
    first = active(alertmanager)[event.dedup_key]["updatedAt"]
    until(
        lambda: active(alertmanager)[event.dedup_key]["updatedAt"] > first,
        "a re-send (updatedAt moves on)",
    )


def test_an_alert_whose_event_time_runs_a_day_ahead_of_the_clock_still_goes_active(
    kafka_bootstrap, alert_topic, alertmanager, cli_bridge
):
    event = firing(f"pump-{uuid.uuid4().hex[:6]}", ahead_s=86_400.0)  # e.g. a fast replay
    publish(kafka_bootstrap, alert_topic, event)
    until(lambda: event.dedup_key in active(alertmanager), "the alert in alertmanager")
    alert = active(alertmanager)[event.dedup_key]
    assert alert["annotations"]["starts_at"] == sv.types.format_event_time(event.starts_at)


def test_a_resolved_alert_leaves_alertmanagers_active_alerts(
    kafka_bootstrap, alert_topic, alertmanager, cli_bridge
):
    event = firing(f"pump-{uuid.uuid4().hex[:6]}")
    publish(kafka_bootstrap, alert_topic, event)
    until(lambda: event.dedup_key in active(alertmanager), "the alert in alertmanager")
    publish(kafka_bootstrap, alert_topic, resolved(event))
    until(lambda: event.dedup_key not in active(alertmanager), "the alert to be resolved")
    assert "delivered resolved" in cli_bridge.log()


def test_sigterm_stops_the_bridge_command_with_exit_code_0(cli_bridge):
    assert cli_bridge.terminate() == 0
    assert "stopped after" in cli_bridge.log()


def test_a_restarted_bridge_re_sends_what_still_fires_from_the_topics_history(
    kafka_bootstrap, unique_topic, alertmanager, tmp_path
):
    alert_topic = unique_topic  # its own: no other bridge re-sends this alert
    settings = Settings.load(bridge_config(tmp_path / "s.toml", kafka_bootstrap, alert_topic))
    group = f"bridge-restart-{uuid.uuid4().hex[:8]}"
    target = AlertmanagerTarget(alertmanager, resend_interval_s=0.5)
    event = firing(f"pump-{uuid.uuid4().hex[:6]}")
    with running(settings, target, group) as first:
        publish(kafka_bootstrap, alert_topic, event)
        until(lambda: first.stats.delivered == 1, "the first bridge to deliver it")
    assert first.exit_code == 0
    before = active(alertmanager)[event.dedup_key]["updatedAt"]
    with running(settings, target, group) as second:
        until(
            lambda: active(alertmanager)[event.dedup_key]["updatedAt"] > before,
            "the restarted bridge to re-send the firing alert",
        )
        assert [e.dedup_key for e in second.ledger.firing()] == [event.dedup_key]
        assert second.stats.delivered == 0  # committed: rebuilt from history, not re-consumed


class RunningBridge(Bridge):
    exit_code: int | None = None


@contextlib.contextmanager
def running(settings: Settings, target: AlertmanagerTarget, group: str) -> Iterator[RunningBridge]:
    """A bridge in a thread of this process (the CLI path is the module's fixture)."""
    bridge = RunningBridge(
        settings, target, BridgeOptions(group=group, retry=RetryPolicy(0.2, 1.0), poll_ms=100)
    )

    def run() -> None:
        bridge.exit_code = bridge.run()

    thread = threading.Thread(target=run, name=f"bridge-{group}", daemon=True)
    thread.start()
    try:
        h.wait_for(
            lambda: bridge.ready.is_set() or not thread.is_alive(), 60, "the partitions", 0.05
        )
        assert thread.is_alive(), "the bridge stopped before its partitions were assigned"
        yield bridge
    finally:
        bridge.stop()
        thread.join(timeout=30)
