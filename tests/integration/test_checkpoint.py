"""The checkpoint store on a real broker: what a reader gets back, and what survives a crash."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer

from consumers.checkpoint import Checkpoint, CheckpointError, KafkaCheckpointStore


@pytest.fixture
def state_topic(kafka_admin) -> str:
    from kafka.admin import NewTopic

    name = f"state-{uuid.uuid4().hex[:10]}"
    kafka_admin.create_topics([NewTopic(name, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    kafka_admin.wait_for_topics([name], timeout_ms=10_000)
    return name


def big_state(seed: int) -> dict:
    """A state that needs several chunks at the tests' chunk size."""
    return {"seed": seed, "rows": [[seed + i * 0.5, i] for i in range(3000)]}


def store(bootstrap: str, topic: str, group: str = "g") -> KafkaCheckpointStore:
    return KafkaCheckpointStore([bootstrap], topic, group, chunk_bytes=4096)


def save(bootstrap: str, topic: str, *batches: list[Checkpoint], group: str = "g") -> None:
    """Write each batch of checkpoints in turn through one store, then close it."""
    s = store(bootstrap, topic, group)
    try:
        for batch in batches:
            s.save(batch)
    finally:
        s.close()


def test_a_checkpoint_of_many_chunks_reads_back_exactly(kafka_bootstrap, state_topic):
    save(
        kafka_bootstrap,
        state_topic,
        [Checkpoint("sensors", 0, 120, big_state(1)), Checkpoint("sensors", 1, 7, {"a": 1})],
    )
    got = store(kafka_bootstrap, state_topic).load([("sensors", 0), ("sensors", 1), ("sensors", 2)])
    assert set(got) == {("sensors", 0), ("sensors", 1)}
    assert got[("sensors", 0)].next_offset == 120
    assert got[("sensors", 0)].state == big_state(1)
    assert got[("sensors", 1)].state == {"a": 1}


def test_the_latest_checkpoint_of_a_partition_wins(kafka_bootstrap, state_topic):
    save(
        kafka_bootstrap,
        state_topic,
        [Checkpoint("sensors", 0, 10, big_state(1))],
        [Checkpoint("sensors", 0, 20, big_state(2))],
    )
    got = store(kafka_bootstrap, state_topic).load([("sensors", 0)])
    assert got[("sensors", 0)].next_offset == 20
    assert got[("sensors", 0)].state == big_state(2)


def test_a_write_cut_off_before_its_manifest_leaves_the_previous_checkpoint_readable(
    kafka_bootstrap, state_topic
):
    save(
        kafka_bootstrap,
        state_topic,
        [Checkpoint("sensors", 0, 10, big_state(1))],
    )
    # a crash mid-write: the chunks of a newer checkpoint arrive, its manifest never does
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for i in range(5):
        producer.send(state_topic, key=f"g/sensors/0#{uuid.uuid4().hex}/{i}".encode(), value=b"x")
    producer.flush()
    producer.close()
    got = store(kafka_bootstrap, state_topic).load([("sensors", 0)])
    assert got[("sensors", 0)].next_offset == 10
    assert got[("sensors", 0)].state == big_state(1)


def test_a_checkpoint_whose_chunks_are_lost_is_an_error_not_a_cold_start(
    kafka_bootstrap, state_topic
):
    save(
        kafka_bootstrap,
        state_topic,
        [Checkpoint("sensors", 0, 10, big_state(1))],
    )
    reader = store(kafka_bootstrap, state_topic)
    manifests, chunks = reader._read_all({"g/sensors/0"})
    manifest_key = next(iter(manifests))
    chunk_id = next(k for k in chunks if k.endswith("/0"))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(state_topic, key=chunk_id.encode(), value=None)  # tombstone one chunk
    producer.flush()
    producer.close()
    assert manifest_key == "g/sensors/0"
    with pytest.raises(CheckpointError, match="missing chunks"):
        store(kafka_bootstrap, state_topic).load([("sensors", 0)])


def test_checkpoints_of_another_consumer_group_are_not_read(kafka_bootstrap, state_topic):
    save(
        kafka_bootstrap,
        state_topic,
        [Checkpoint("sensors", 0, 10, {"a": 1})],
        group="other",
    )
    assert store(kafka_bootstrap, state_topic, group="g").load([("sensors", 0)]) == {}
