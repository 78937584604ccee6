"""``streamvae run`` against a real Kafka-protocol broker, as a real subprocess.

Every test has its own topics and consumer group. The plant and the pre-trained model come
from ``harness.py``: six pumps on three partitions, four injected faults.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from pathlib import Path

import pytest

import streamvae as sv
from tests.integration import harness as h

pytestmark = pytest.mark.slow


@pytest.fixture
def config(tmp_path, kafka_bootstrap, topics, model_path) -> Path:
    return h.write_config(tmp_path / "streamvae.toml", kafka_bootstrap, topics, model_path)


def events(bootstrap: str, topics: h.Topics):
    return [e for _, e, _ in h.alerts_of(bootstrap, topics.alerts)]


def wait_for_every_fault(bootstrap: str, topics: h.Topics, timeout_s: float = 120) -> None:
    h.wait_for(
        lambda: h.every_fault_fired_and_resolved(events(bootstrap, topics)),
        timeout_s,
        "a firing and a resolved alert for every injected fault",
    )


# ----------------------------------------------------------------------------- end to end


def test_every_injected_fault_fires_and_resolves_on_its_asset(
    kafka_bootstrap, topics, config, tmp_path, validator
):
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages())
    with h.running(config, tmp_path / "service.log") as service:
        wait_for_every_fault(kafka_bootstrap, topics)
        assert service.get("/readyz")[0] == 200
        assert service.get("/healthz")[0] == 200
        records = h.read_topic(kafka_bootstrap, topics.alerts)
        for r in records:
            doc = json.loads(r.value)
            validator.validate(doc)
            assert r.key == doc["data"]["dedup_key"].encode()
            assert ("content-type", b"application/cloudevents+json; charset=UTF-8") in r.headers
        seen = events(kafka_bootstrap, topics)
        for asset in h.FAULTS:
            assert h.fault_alerts(seen, asset)[0].status == "firing"
        assert h.fault_alerts(seen, "pump-0")[0].top_channel == "pressure"  # the level shift
        assert service.metric("streamvae_records_consumed_total") == len(h.plant_messages())
        assert service.metric("streamvae_windows_scored_total") > 0
        h.wait_for(
            lambda: (
                service.metric("streamvae_checkpoints_total") > 0
                and service.metric("streamvae_commits_total") > 0
            ),
            10,
            "a checkpoint and a commit",
        )
        assert service.terminate() == 0


def test_a_librdkafka_client_reads_every_alert_as_our_schema(
    kafka_bootstrap, topics, config, tmp_path
):
    confluent_kafka = pytest.importorskip("confluent_kafka")  # a dev dependency: never skipped
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages())
    with h.running(config, tmp_path / "service.log") as service:
        wait_for_every_fault(kafka_bootstrap, topics)
        assert service.terminate() == 0
    expected = len(h.read_topic(kafka_bootstrap, topics.alerts))
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"librdkafka-{uuid.uuid4().hex}",  # required, unused: we assign
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topics.alerts, timeout=10)
        consumer.assign(
            [
                confluent_kafka.TopicPartition(topics.alerts, p, confluent_kafka.OFFSET_BEGINNING)
                for p in meta.topics[topics.alerts].partitions
            ]
        )
        parsed = []
        deadline = time.monotonic() + 60
        while len(parsed) < expected and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            event = sv.AlertEvent.from_cloudevent(json.loads(msg.value()))
            assert msg.key() == event.dedup_key.encode()
            parsed.append(event)
    finally:
        consumer.close()
    assert len(parsed) == expected
    assert h.every_fault_fired_and_resolved(parsed)


# ----------------------------------------------------------------------------- bad input

POISON: list[tuple[bytes | None, str, list[tuple[str, bytes]]]] = [
    (b"not json at all", "invalid_json", [("gateway", b"gw-7")]),
    (b'{"asset": "pump-3", "ts": 1700600000, "values": {"flow": NaN}}', "non_finite", []),
    (b'{"asset": "pump-3", "ts": 1700600000, "values": {"flow": "high"}}', "not_a_number", []),
    (b'{"asset": "pump-3", "values": {"flow": 1.0}}', "missing_field", [("gateway", b"gw-7")]),
    (
        b'{"asset": "pump-3", "ts": 1700600000, "values": {"flow": 1.0}, "pad": "'
        + b"x" * 70_000
        + b'"}',
        "oversized",
        [],
    ),
    (None, "invalid_json", []),  # a tombstone
]


def test_poison_messages_land_in_the_dlq_byte_identical_and_the_stream_keeps_flowing(
    kafka_bootstrap, topics, config, tmp_path
):
    messages = h.plant_messages()
    headers: list[list[tuple[str, bytes]] | None] = [None] * len(messages)
    partition = h.partition_of("pump-3")
    for i, (value, _, hdrs) in enumerate(POISON):  # spread through the stream
        at = (i + 1) * len(messages) // (len(POISON) + 1)
        messages.insert(at, (partition, b"pump-3", value))
        headers.insert(at, hdrs or None)
    h.produce(kafka_bootstrap, topics.sensors, messages, headers)
    with h.running(config, tmp_path / "service.log") as service:
        wait_for_every_fault(kafka_bootstrap, topics)  # the good readings were all scored
        h.wait_for(
            lambda: len(h.read_topic(kafka_bootstrap, topics.dlq)) >= len(POISON), 30, "the DLQ"
        )
        assert service.metric("streamvae_dlq_records_total") == len(POISON)
        assert service.terminate() == 0
    dead = h.read_topic(kafka_bootstrap, topics.dlq)
    assert len(dead) == len(POISON)
    by_value = {r.value: r for r in dead}
    for value, reason, hdrs in POISON:
        record = by_value[value]
        assert record.key == b"pump-3"
        got = dict(record.headers)
        assert record.headers[: len(hdrs)] == hdrs  # the original headers, first, unchanged
        assert got["streamvae.reject.reason"] == reason.encode()
        assert got["__connect.errors.topic"] == topics.sensors.encode()
        assert got["__connect.errors.partition"] == str(partition).encode()
        assert int(got["__connect.errors.offset"]) >= 0
        assert got["__connect.errors.exception.class.name"]
        assert got["__connect.errors.exception.message"]


# ----------------------------------------------------------------------------- crashes


# SIGKILL at random points (mid-stream and during start-up), every alert kept, replays
# byte-identical, lag back to 0: tests/integration/test_reliability_crash.py (the campaign's
# short crash scenario; it replaced the three fixed kill points that were here).


def _model_of(config: Path) -> str:
    for line in config.read_text().splitlines():
        if line.startswith("model = "):
            return str(json.loads(line.split("=", 1)[1]))
    raise AssertionError("no model in the config")


# SIGTERM under load exits 0 and the instance that takes the partitions over publishes no
# duplicate: tests/integration/test_reliability_restart.py (the campaign's short graceful
# scenario; it replaced a SIGTERM-and-restart test here that also timed the stop).


def test_two_instances_split_the_partitions_and_a_killed_ones_state_moves_to_the_other(
    kafka_bootstrap, topics, config, tmp_path
):
    half = h.TEST_STEPS // 2  # inside the faults: some alerts are open when A dies
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(0, half))
    a = h.ServiceProcess(config, tmp_path / "a.log").start()
    b = h.ServiceProcess(config, tmp_path / "b.log").start()
    try:
        h.wait_for(
            lambda: (
                a.metric("streamvae_assigned_partitions") >= 1
                and b.metric("streamvae_assigned_partitions") >= 1
                and a.metric("streamvae_assigned_partitions")
                + b.metric("streamvae_assigned_partitions")
                == h.PARTITIONS
            ),
            60,
            "both instances to own partitions",
        )
        h.wait_for(
            lambda: (
                a.metric("streamvae_records_consumed_total")
                + b.metric("streamvae_records_consumed_total")
                >= half * len(h.ASSETS)
            ),
            60,
            "the first half to be consumed",
        )
        time.sleep(2)  # a checkpoint interval: A's state is in the state topic
        a.kill()
        h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(half, h.TEST_STEPS))
        h.wait_for(
            lambda: b.metric("streamvae_assigned_partitions") == h.PARTITIONS,
            60,
            "B to take over A's partitions",
        )
        wait_for_every_fault(kafka_bootstrap, topics)
        assert re.search(r"\(([1-9]\d*) with a checkpoint\)", b.log()), b.log()[-3000:]
        assert b.terminate() == 0
    finally:
        a.close()
        b.close()
    unique = {e.id: e for e in events(kafka_bootstrap, topics)}.values()
    for asset in h.FAULTS:
        assert [e.status for e in h.fault_alerts(list(unique), asset)][:2] == [
            "firing",
            "resolved",
        ]


# ----------------------------------------------------------------------------- settings


def test_secrets_never_reach_the_log(kafka_bootstrap, topics, tmp_path, model_path):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    config = h.write_config(tmp_path / "sasl.toml", "127.0.0.1:1", topics, model_path)
    text = config.read_text().replace(
        "[run]",
        '[kafka.security]\nprotocol = "SASL_PLAINTEXT"\nsasl_mechanism = "PLAIN"\n'
        'username = "streamvae"\n\n[run]',
    )
    config.write_text(text)
    service = h.ServiceProcess(
        config, tmp_path / "sasl.log", env={"STREAMVAE_KAFKA_SECURITY_PASSWORD": secret}
    ).start()
    try:
        time.sleep(6)  # start-up, the settings log line, connection attempts and their errors
    finally:
        service.close()
    log = service.log()
    assert "SASL_PLAINTEXT" in log  # the settings were logged ...
    assert secret not in log  # ... without the password


def test_backpressure_pauses_and_resumes_and_nothing_is_lost(
    kafka_bootstrap, topics, tmp_path, model_path
):
    config = h.write_config(
        tmp_path / "bp.toml", kafka_bootstrap, topics, model_path, max_in_flight_records=200
    )
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages())
    with h.running(config, tmp_path / "service.log") as service:
        wait_for_every_fault(kafka_bootstrap, topics)
        assert service.metric("streamvae_backpressure_pauses_total") >= 1
        assert service.metric("streamvae_records_consumed_total") == len(h.plant_messages())
        assert math.isfinite(service.metric("streamvae_in_flight_records"))
        assert service.terminate() == 0


def test_a_topic_pattern_subscribes_to_the_matching_sensor_topics(
    kafka_bootstrap, topics, config, tmp_path
):
    text = config.read_text().replace(
        f"topics = [{json.dumps(topics.sensors)}]",
        f"topic_pattern = {json.dumps(re.escape(topics.sensors) + '$')}",
    )
    assert "topic_pattern" in text
    config.write_text(text)
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages())
    with h.running(config, tmp_path / "service.log") as service:
        wait_for_every_fault(kafka_bootstrap, topics)
        assert service.terminate() == 0
