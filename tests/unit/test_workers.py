"""How the service splits work over worker processes, and what a checkpoint must match."""

from __future__ import annotations

import zlib
from collections import Counter

import pytest

from consumers.service import ServiceError, shards_of_state
from consumers.settings import Settings, SettingsError
from consumers.workers import shard_of

BASE_ENV = {
    "STREAMVAE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "STREAMVAE_KAFKA_TOPICS": "plant.sensors",
    "STREAMVAE_DETECTOR_WINDOW_CHANNELS": "flow,pressure",
}


def test_a_key_always_maps_to_the_same_worker_across_processes_and_hosts():
    # crc32, not Python's per-process salted hash(): a restart must find its assets again
    assert shard_of(b"pump-7", 4) == zlib.crc32(b"pump-7") % 4 == 3
    assert shard_of(b"pump-7", 4) == shard_of(b"pump-7", 4)


def test_records_without_a_key_all_go_to_the_first_worker():
    assert {shard_of(None, n) for n in (1, 2, 8)} == {0}


def test_one_worker_takes_everything():
    assert {shard_of(f"pump-{i}".encode(), 1) for i in range(100)} == {0}


def test_asset_keys_spread_evenly_over_the_workers():
    counts = Counter(shard_of(f"pump-{i:04d}".encode(), 4) for i in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) < 1.1 * min(counts.values())


def test_a_checkpoint_holds_one_shard_per_worker():
    state = {"format": 2, "workers": 2, "shards": [{"detector": 1}, {"detector": 2}]}
    assert shards_of_state("t/0", state, 2) == [{"detector": 1}, {"detector": 2}]


def test_a_checkpoint_from_before_worker_processes_is_one_shard():
    state = {"format": 1, "detector": {"d": 1}, "decoder": {"s": 2}}
    assert shards_of_state("t/0", state, 1) == [{"detector": {"d": 1}, "decoder": {"s": 2}}]


def test_a_checkpoint_of_another_worker_count_is_refused_with_what_to_do():
    state = {"format": 2, "workers": 2, "shards": [{}, {}]}
    with pytest.raises(ServiceError) as err:
        shards_of_state("plant.sensors/3", state, 4)
    message = str(err.value)
    assert "plant.sensors/3" in message
    assert "run.workers = 2" in message
    assert "runs 4" in message
    assert "kafka.group_id" in message


def test_a_checkpoint_of_an_unknown_format_is_refused():
    with pytest.raises(ServiceError, match="format 9"):
        shards_of_state("t/0", {"format": 9}, 1)


def test_workers_default_to_one_and_come_from_the_environment():
    assert Settings.load(env=BASE_ENV).run.workers == 1
    settings = Settings.load(env={**BASE_ENV, "STREAMVAE_RUN_WORKERS": "3"})
    assert settings.run.workers == 3


def test_zero_workers_is_an_error_naming_the_field():
    with pytest.raises(SettingsError, match=r"run\.workers"):
        Settings.load(env={**BASE_ENV, "STREAMVAE_RUN_WORKERS": "0"})
