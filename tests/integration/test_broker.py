"""The broker the integration tests run against: it carries records faithfully and cleans up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from consumers.broker import BrokerError, EmbeddedBroker

CONSUME_TIMEOUT_S = 12.0


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_record_comes_back_through_a_consumer_group_with_key_value_and_headers(
    kafka_bootstrap: str,
    unique_topic: str,
    unique_group: str,
    fast_group_config: dict[str, int],
) -> None:
    key = b"pump-7"
    value = b'{"flow": 12.5, "temp": 71.0}'
    headers = [("schema", b"reading/v1"), ("source", b"plc-3"), ("empty", b"")]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(unique_topic, key=key, value=value, headers=headers).get(timeout=10)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        unique_topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **fast_group_config,
    )
    try:
        received: list[Any] = []
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while not received and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                received.extend(records)
    finally:
        consumer.close()

    assert [(r.key, r.value, r.headers) for r in received] == [(key, value, headers)]


def test_stop_leaves_no_broker_process_behind() -> None:
    broker = EmbeddedBroker().start()
    pid = broker.pid

    broker.stop()

    assert not _process_exists(pid)
    assert not _group_exists(pid)  # the broker leads its own process group


def test_stop_releases_the_port() -> None:
    broker = EmbeddedBroker().start()
    port = broker.port

    broker.stop()

    # SO_REUSEADDR, like any server: connections the broker closed may linger in TIME_WAIT,
    # but nothing may still be listening.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


def test_leaving_the_context_stops_the_broker() -> None:
    with EmbeddedBroker() as broker:
        pid = broker.pid
        assert broker.running

    assert not _process_exists(pid)


def test_two_brokers_listen_on_different_ports() -> None:
    with EmbeddedBroker() as first, EmbeddedBroker() as second:
        assert first.port != second.port
        assert first.bootstrap_servers != second.bootstrap_servers
        assert first.running
        assert second.running


def test_a_broker_forgotten_by_its_owner_dies_with_the_python_process() -> None:
    script = textwrap.dedent(
        """
        from consumers.broker import EmbeddedBroker
        broker = EmbeddedBroker().start()
        print(broker.pid, flush=True)
        """
    )
    repo_root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=repo_root,
        check=True,
    )
    pid = int(done.stdout.split()[0])

    assert not _process_exists(pid)


def test_a_broker_that_exits_during_startup_fails_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'storage engine exploded' >&2\nexit 3\n")
    fake.chmod(0o755)

    with pytest.raises(BrokerError, match=r"exited with status 3[\s\S]*storage engine exploded"):
        EmbeddedBroker(binary=fake).start()
