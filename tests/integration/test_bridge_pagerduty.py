"""``streamvae bridge pagerduty`` against a real broker and a local Events API v2 endpoint.

PagerDuty itself cannot be reached from here, so :class:`EventsAPI` is a real HTTP server on
loopback that checks every request against the published Events API v2 rules (routing key of
32 characters, an event action PagerDuty knows, dedup_key at most 255 characters, a trigger's
payload with summary ≤ 1024, source and one of the four severities) and answers as PagerDuty
does (202 with status, message and dedup_key; 400 with the errors). Tests can script
failures (503, 429 with Retry-After, 400) per dedup_key and event action.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import NewTopic

import streamvae as sv
from consumers.bridge import Bridge, BridgeOptions, PagerDutyTarget, RetryPolicy
from consumers.settings import Secret, Settings
from tests.integration import harness as h

pytestmark = pytest.mark.slow

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


def events_v2_problems(body: Any) -> list[str]:
    """What the Events API v2 would refuse in ``body`` (empty when valid)."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    problems = []
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        problems.append("routing_key must be a 32-character string")
    action = body.get("event_action")
    if action not in ACTIONS:
        problems.append(f"event_action must be one of {ACTIONS}")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not 0 < len(dedup) <= 255):
        problems.append("dedup_key must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        problems.append(f"{action} needs a dedup_key")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "a trigger needs a payload object"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not 0 < len(summary) <= 1024:
            problems.append("payload.summary must be 1 to 1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            problems.append("payload.source is required")
        if payload.get("severity") not in SEVERITIES:
            problems.append(f"payload.severity must be one of {SEVERITIES}")
        stamp = payload.get("timestamp")
        if stamp is not None:
            try:
                time.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
            except (TypeError, ValueError):
                problems.append("payload.timestamp must be ISO 8601")
    return problems


@dataclass(frozen=True)
class Request:
    """One request as the server saw it, with the status it answered."""

    body: dict[str, Any]
    status: int
    at: float  # time.monotonic() when it arrived

    @property
    def step(self) -> tuple[str, str]:
        return (self.body.get("dedup_key", ""), self.body.get("event_action", ""))


class EventsAPI:
    """``POST /v2/enqueue`` on 127.0.0.1 in a daemon thread (it dies with the test process)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: dict[tuple[str, str], collections.deque[tuple[int, dict[str, str]]]] = {}
        self.refuse: dict[tuple[str, str], int] = {}  # answered until removed
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                status, headers, answer = api._answer(self.path, self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _answer(
        self, path: str, headers: Any, body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        problems = [] if path == "/v2/enqueue" else [f"no such path {path}"]
        if "application/json" not in headers.get("Content-Type", ""):
            problems.append("Content-Type must be application/json")
        problems += events_v2_problems(body)
        with self._lock:
            status, extra = 202, {}
            if problems:
                status = 400
            else:
                step = (body.get("dedup_key", ""), body["event_action"])
                queued = self.script.get(step)
                if queued:
                    status, extra = queued.popleft()
                elif step in self.refuse:
                    status = self.refuse[step]
            self.requests.append(
                Request(body if isinstance(body, dict) else {}, status, time.monotonic())
            )
        if status == 202:
            return (
                status,
                {},
                {
                    "status": "success",
                    "message": "Event processed",
                    "dedup_key": body.get("dedup_key"),
                },
            )
        if status == 400:
            errors = problems or ["Event object is invalid"]
            return (
                status,
                {},
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            )
        return status, extra, {"status": "unavailable", "message": "try again"}

    def accepted(self, dedup_key: str | None = None) -> list[str]:
        """``event_action`` of every request answered 202 (for one dedup_key), in order."""
        with self._lock:
            return [
                r.body["event_action"]
                for r in self.requests
                if r.status == 202 and dedup_key in (None, r.body.get("dedup_key"))
            ]

    def seen(self, dedup_key: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.body.get("dedup_key") == dedup_key]

    def __enter__(self) -> EventsAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[EventsAPI]:
    with EventsAPI() as api:
        yield api


def bridge_settings(path: Path, bootstrap: str, alert_topic: str) -> Settings:
    """The service's settings file as a bridge shares it, with our alert topic; sessions of
    3 s, so that a group forms in about 1.5 s on the test broker."""
    u = uuid.uuid4().hex[:10]
    topics = h.Topics(f"sensors-{u}", alert_topic, f"dlq-{u}", f"state-{u}", f"group-{u}")
    h.write_config(path, bootstrap, topics, None)
    path.write_text(
        path.read_text().replace("session_timeout_ms = 6000", "session_timeout_ms = 3000")
    )
    return Settings.load(path)


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, kafka_admin: Any
) -> Settings:
    """Settings with the module's alert topic (three partitions), shared by one bridge."""
    topic = f"alerts-pd-{uuid.uuid4().hex[:10]}"
    kafka_admin.create_topics([NewTopic(topic, 3, 1)])
    kafka_admin.wait_for_topics([topic], timeout_ms=10_000)
    return bridge_settings(tmp_path_factory.mktemp("pd") / "streamvae.toml", kafka_bootstrap, topic)


def until(check: Any, what: str) -> None:
    h.wait_for(check, 30, what, every_s=0.05)


def alert(asset: str, status: str = "firing", summary: str | None = None) -> sv.AlertEvent:
    starts = 1_764_000_000.0
    return sv.AlertEvent(
        status=status,
        site="it",
        asset=asset,
        severity="critical",
        summary=summary or f"{asset} anomalous: score 9.7 > threshold 4.1; top channel flow",
        starts_at=starts,
        ends_at=starts + 1800.0 if status == "resolved" else None,
        score=9.7,
        threshold=4.1,
        contributions={"flow": 1.0},
        window_start=starts - 300.0,
        window_end=starts,
        model_version="v0001",
        reason="recovered" if status == "resolved" else None,
    )


def publish(bootstrap: str, topic: str, *events: sv.AlertEvent) -> None:
    # Keyed by dedup_key, as the service publishes; all on partition 0 so their order holds.
    h.produce(bootstrap, topic, [(0, e.dedup_key.encode(), e.to_json()) for e in events])


class RunningBridge(Bridge):
    exit_code: int | None = None


@contextlib.contextmanager
def running(
    settings: Settings, api: EventsAPI, group: str, metrics_port: int = -1
) -> Iterator[RunningBridge]:
    """The bridge loop in a thread of this process, short retries; stop() on the way out."""
    target = PagerDutyTarget(Secret(ROUTING_KEY), url=api.url)
    options = BridgeOptions(
        group=group, retry=RetryPolicy(0.2, 1.0), poll_ms=100, metrics_port=metrics_port
    )
    bridge = RunningBridge(settings, target, options)

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
        assert not thread.is_alive(), "the bridge did not stop within 30 s"


@pytest.fixture(scope="module")
def bridge(settings: Settings, pagerduty: EventsAPI) -> Iterator[RunningBridge]:
    """One bridge for the tests below (each has its own assets): one group join, not five."""
    with running(settings, pagerduty, f"bridge-{uuid.uuid4().hex[:8]}", metrics_port=0) as b:
        yield b


def test_a_firing_then_resolved_alert_triggers_and_resolves_one_incident(
    kafka_bootstrap, settings, pagerduty, bridge
):
    fired = alert(f"pump-{uuid.uuid4().hex[:6]}")
    publish(kafka_bootstrap, settings.kafka.alert_topic, fired, alert(fired.asset, "resolved"))
    until(lambda: len(pagerduty.accepted(fired.dedup_key)) == 2, "trigger and resolve")
    assert pagerduty.accepted(fired.dedup_key) == ["trigger", "resolve"]
    trigger = pagerduty.seen(fired.dedup_key)[0].body
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["payload"]["source"] == fired.asset
    assert trigger["payload"]["custom_details"]["event_id"] == fired.id


def test_a_duplicate_event_id_on_the_topic_pages_once(kafka_bootstrap, settings, pagerduty, bridge):
    fired = alert(f"pump-{uuid.uuid4().hex[:6]}")
    done = alert(fired.asset, "resolved")
    before = bridge.stats.duplicates
    publish(kafka_bootstrap, settings.kafka.alert_topic, fired, fired, done, fired, done)
    until(lambda: bridge.stats.duplicates == before + 3, "the three repeats to be read")
    assert pagerduty.accepted(fired.dedup_key) == ["trigger", "resolve"]
    assert len(pagerduty.seen(fired.dedup_key)) == 2


def test_a_summary_over_1024_characters_reaches_pagerduty_cut_to_1024(
    kafka_bootstrap, settings, pagerduty, bridge
):
    fired = alert(f"pump-{uuid.uuid4().hex[:6]}", summary="very long " * 200)
    publish(kafka_bootstrap, settings.kafka.alert_topic, fired)
    until(lambda: pagerduty.accepted(fired.dedup_key) == ["trigger"], "the trigger")
    assert len(pagerduty.seen(fired.dedup_key)[0].body["payload"]["summary"]) == 1024


def test_a_400_rejection_is_counted_and_the_next_alert_still_goes_out(
    kafka_bootstrap, settings, pagerduty, bridge
):
    refused, fine = alert(f"pump-{uuid.uuid4().hex[:6]}"), alert(f"pump-{uuid.uuid4().hex[:6]}")
    pagerduty.refuse[(refused.dedup_key, "trigger")] = 400
    before = bridge.stats.rejected
    publish(kafka_bootstrap, settings.kafka.alert_topic, refused, fine)
    until(lambda: pagerduty.accepted(fine.dedup_key) == ["trigger"], "the next alert")
    assert bridge.stats.rejected == before + 1
    assert len(pagerduty.seen(refused.dedup_key)) == 1  # never retried


def test_a_429_is_retried_no_sooner_than_its_retry_after(
    kafka_bootstrap, settings, pagerduty, bridge
):
    fired = alert(f"pump-{uuid.uuid4().hex[:6]}")
    pagerduty.script[(fired.dedup_key, "trigger")] = collections.deque(
        [(429, {"Retry-After": "1"})]
    )
    publish(kafka_bootstrap, settings.kafka.alert_topic, fired)
    until(lambda: pagerduty.accepted(fired.dedup_key) == ["trigger"], "the retry")
    first, second = pagerduty.seen(fired.dedup_key)
    assert (first.status, second.status) == (429, 202)
    assert second.at - first.at >= 0.95  # the bridge's own backoff would be 0.1-0.2 s


def test_offsets_are_committed_only_after_pagerduty_accepted(
    kafka_bootstrap, unique_topic, pagerduty, tmp_path
):
    settings = bridge_settings(tmp_path / "streamvae.toml", kafka_bootstrap, unique_topic)
    group = f"bridge-{uuid.uuid4().hex[:8]}"
    retried, stuck = alert(f"pump-{uuid.uuid4().hex[:6]}"), alert(f"pump-{uuid.uuid4().hex[:6]}")
    pagerduty.script[(retried.dedup_key, "trigger")] = collections.deque([(503, {})])
    pagerduty.refuse[(stuck.dedup_key, "trigger")] = 503
    with running(settings, pagerduty, group) as first:
        publish(kafka_bootstrap, settings.kafka.alert_topic, retried, stuck)
        until(lambda: len(pagerduty.seen(stuck.dedup_key)) >= 2, "retries of the stuck one")
        assert [r.status for r in pagerduty.seen(retried.dedup_key)] == [503, 202]
    assert first.exit_code == 0  # stopped while retrying: a clean stop, nothing lost
    del pagerduty.refuse[(stuck.dedup_key, "trigger")]  # PagerDuty is back
    with running(settings, pagerduty, group):
        until(lambda: pagerduty.accepted(stuck.dedup_key) == ["trigger"], "the resend")
    assert pagerduty.accepted(retried.dedup_key) == ["trigger"]  # accepted once, not resent
    assert all(r.body and not events_v2_problems(r.body) for r in pagerduty.requests)


def test_a_record_that_is_not_an_alert_event_is_counted_and_skipped(
    kafka_bootstrap, settings, pagerduty, bridge
):
    fired = alert(f"pump-{uuid.uuid4().hex[:6]}")
    before = bridge.stats.undecodable
    h.produce(
        kafka_bootstrap,
        settings.kafka.alert_topic,
        [(0, b"junk", b"not json"), (0, fired.dedup_key.encode(), fired.to_json())],
    )
    until(lambda: pagerduty.accepted(fired.dedup_key) == ["trigger"], "the alert after the junk")
    assert bridge.stats.undecodable == before + 1


def test_the_outcomes_are_exported_as_prometheus_counters(bridge):
    assert bridge.metrics_url is not None
    with urllib.request.urlopen(bridge.metrics_url, timeout=5) as r:
        text = r.read().decode()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("streamvae_bridge_")
    }
    stats = bridge.stats
    key = 'streamvae_bridge_events_total{outcome="%s",receiver="pagerduty"}'
    assert samples[key % "delivered"] == stats.delivered
    assert samples[key % "rejected"] == stats.rejected
    assert samples[key % "duplicate"] == stats.duplicates
    assert samples['streamvae_bridge_retries_total{receiver="pagerduty"}'] == stats.retries
    assert 'streamvae_bridge_firing_alerts{receiver="pagerduty"}' in samples


def test_a_new_bridge_group_pages_what_fires_now_not_the_past(
    kafka_bootstrap, unique_topic, pagerduty, tmp_path
):
    settings = bridge_settings(tmp_path / "streamvae.toml", kafka_bootstrap, unique_topic)
    over, ongoing = alert(f"pump-{uuid.uuid4().hex[:6]}"), alert(f"pump-{uuid.uuid4().hex[:6]}")
    publish(kafka_bootstrap, unique_topic, over, alert(over.asset, "resolved"), ongoing)
    with running(settings, pagerduty, f"bridge-{uuid.uuid4().hex[:8]}"):
        until(lambda: pagerduty.accepted(ongoing.dedup_key) == ["trigger"], "the ongoing alert")
    assert pagerduty.seen(over.dedup_key) == []  # an episode that ended before it started


def test_the_routing_key_never_reaches_a_log_line(
    kafka_bootstrap, settings, pagerduty, bridge, caplog
):
    log = logging.getLogger("streamvae.bridge")  # "streamvae" may not propagate to the root
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="streamvae.bridge"):
            retried, refused = (
                alert(f"pump-{uuid.uuid4().hex[:6]}"),
                alert(f"pump-{uuid.uuid4().hex[:6]}"),
            )
            pagerduty.script[(retried.dedup_key, "trigger")] = collections.deque([(503, {})])
            pagerduty.refuse[(refused.dedup_key, "trigger")] = 400
            publish(kafka_bootstrap, settings.kafka.alert_topic, retried, refused)
            until(lambda: len(pagerduty.seen(refused.dedup_key)) == 1, "both answered")
            until(lambda: "rejected" in caplog.text, "the rejection's log line")
    finally:
        log.removeHandler(caplog.handler)
    assert "did not accept" in caplog.text  # the 503's line, with PagerDuty's answer
    assert ROUTING_KEY not in caplog.text
