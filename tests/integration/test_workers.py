"""``streamvae run`` with several worker processes (``run.workers``), on the real broker.

The pumps' readings are keyed by asset, so the workers split every partition's assets; the
checkpoint of a partition holds one shard per worker.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.integration import harness as h

pytestmark = pytest.mark.slow


def two_workers(tmp_path: Path, bootstrap: str, topics: h.Topics, model: Path) -> Path:
    return h.write_config(tmp_path / "two.toml", bootstrap, topics, model, workers=2)


def events(bootstrap: str, topics: h.Topics):
    return [e for _, e, _ in h.alerts_of(bootstrap, topics.alerts)]


def worker_pids(log: str) -> list[int]:
    found = re.findall(r"worker process\(es\): pids \[([\d, ]+)\]", log)
    assert found, log[-3000:]
    return [int(p) for p in found[-1].split(",")]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited too
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_two_workers_alert_on_every_fault_and_a_sigkill_resumes_from_their_checkpoints(
    kafka_bootstrap, topics, tmp_path, model_path
):
    config = two_workers(tmp_path, kafka_bootstrap, topics, model_path)
    half = h.TEST_STEPS // 2  # inside the faults: some alerts are open at the kill
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(0, half))
    log = tmp_path / "service.log"
    service = h.ServiceProcess(config, log).start()
    try:
        h.wait_for(
            lambda: service.metric("streamvae_records_processed_total") >= half * len(h.ASSETS),
            90,
            "the first half to be processed",
        )
        h.wait_for(
            lambda: service.metric("streamvae_checkpoints_total") >= h.PARTITIONS,
            10,
            "a checkpoint of every partition",
        )
        pids = worker_pids(service.log())
        assert len(pids) == 2
        service.kill()  # SIGKILL of the main process: its workers must not outlive it
        h.wait_for(lambda: all(gone(p) for p in pids), 10, "the workers to exit")
    finally:
        service.close()
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(half, h.TEST_STEPS))
    with h.running(config, log) as again:
        h.wait_for(
            lambda: h.every_fault_fired_and_resolved(events(kafka_bootstrap, topics)),
            120,
            "a firing and a resolved alert for every injected fault",
        )
        assert f"({h.PARTITIONS} with a checkpoint)" in again.log()
        again.wait_ready()
        assert again.terminate() == 0
    records = h.alerts_of(kafka_bootstrap, topics.alerts)
    by_id: dict[str, set[bytes]] = {}
    for _, event, raw in records:
        by_id.setdefault(event.id, set()).add(raw)
    assert all(len(v) == 1 for v in by_id.values()), "a replayed alert differs from the first"
    unique = list({e.id: e for _, e, _ in records}.values())
    for asset in h.FAULTS:
        assert [e.status for e in h.fault_alerts(unique, asset)][:2] == ["firing", "resolved"]
        assert [e for e in unique if e.asset == asset][-1].status == "resolved"


def test_a_restart_with_another_worker_count_refuses_the_checkpoints_and_says_why(
    kafka_bootstrap, topics, tmp_path, model_path
):
    config = two_workers(tmp_path, kafka_bootstrap, topics, model_path)
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(0, 300))
    with h.running(config, tmp_path / "two.log") as service:
        h.wait_for(
            lambda: service.metric("streamvae_records_processed_total") >= 300 * len(h.ASSETS),
            90,
            "the readings to be processed",
        )
        assert service.terminate() == 0  # checkpoints of 2 shards per partition
    one = h.write_config(tmp_path / "one.toml", kafka_bootstrap, topics, model_path, workers=1)
    service = h.ServiceProcess(one, tmp_path / "one.log").start()
    try:
        assert service.proc is not None
        code = service.proc.wait(timeout=60)
    finally:
        service.close()
    assert code == 1
    assert "written with run.workers = 2" in service.log()
    assert "runs 1" in service.log()


def test_a_killed_worker_stops_the_service_and_a_restart_loses_no_alert(
    kafka_bootstrap, topics, tmp_path, model_path
):
    config = two_workers(tmp_path, kafka_bootstrap, topics, model_path)
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(0, h.TEST_STEPS // 2))
    log = tmp_path / "service.log"
    service = h.ServiceProcess(config, log).start()
    try:
        h.wait_for(lambda: service.metric("streamvae_checkpoints_total") >= 1, 90, "a checkpoint")
        os.kill(worker_pids(service.log())[1], signal.SIGKILL)  # as the OOM killer would
        assert service.proc is not None
        started = time.monotonic()
        assert service.proc.wait(timeout=30) == 1
        assert time.monotonic() - started < 30
    finally:
        service.close()
    assert "worker 1" in service.log()
    assert "exited unexpectedly" in service.log()
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(h.TEST_STEPS // 2, h.TEST_STEPS))
    with h.running(config, log) as again:
        h.wait_for(
            lambda: h.every_fault_fired_and_resolved(events(kafka_bootstrap, topics)),
            120,
            "a firing and a resolved alert for every injected fault",
        )
        assert again.terminate() == 0
