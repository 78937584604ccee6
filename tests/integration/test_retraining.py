"""Retraining across instances on the real broker: one trainer, one models topic, every
instance swaps to the version it publishes (docs/continual.md)."""

from __future__ import annotations

import re

import pytest

import streamvae as sv
from tests.integration import harness as h

pytestmark = pytest.mark.slow

RETRAIN = """
[detector.retrain]
every_windows = 700
every_s = 0.0
drift = false
min_windows = 300
capacity = 1024
keep_every = 2
epochs = 10
"""


def wait_for_alerts_on(bootstrap: str, topics: h.Topics, assets: tuple[str, ...]) -> None:
    h.wait_for(
        lambda: all(
            h.fault_alerts([e for _, e, _ in h.alerts_of(bootstrap, topics.alerts)], a)
            for a in assets
        ),
        120,
        f"alerts on the faults of {', '.join(assets)}",
    )


def served_version(service: h.ServiceProcess) -> str | None:
    _, text = service.get("/metrics")
    m = re.search(r'streamvae_model_info\{[^}]*version="(v\d+)"', text)
    return m.group(1) if m else None


def test_two_instances_follow_the_one_model_the_group_retrains(
    kafka_bootstrap, topics, tmp_path, model_path
):
    registry = tmp_path / "models"
    config = h.write_config(
        tmp_path / "retrain.toml", kafka_bootstrap, topics, model_path, registry=str(registry)
    )
    config.write_text(config.read_text() + RETRAIN)
    first = 440  # before every fault (they start at step 450)
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(0, first))
    a = h.ServiceProcess(config, tmp_path / "a.log").start()
    b = h.ServiceProcess(config, tmp_path / "b.log").start()
    both = (a, b)
    try:
        h.wait_for(
            lambda: all(s.metric("streamvae_assigned_partitions") >= 1 for s in both),
            60,
            "both instances to own partitions",
        )
        h.wait_for(
            lambda: sum(s.metric("streamvae_retrains_total") for s in both) >= 1,
            90,
            "a retrain of the group's model",
        )
        promoted = [s for s in both if s.metric("streamvae_retrains_total") >= 1]
        assert len(promoted) == 1, "more than one instance trained"
        h.wait_for(
            lambda: all(s.metric("streamvae_model_swaps_total") >= 1 for s in both),
            30,
            "both instances to swap to the published model",
        )
        h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(first, h.TEST_STEPS))
        strong = ("pump-0", "pump-1")  # the level shift and the spike
        wait_for_alerts_on(kafka_bootstrap, topics, strong)
        h.wait_for(
            lambda: served_version(a) is not None and served_version(a) == served_version(b),
            30,
            "both instances to report the same model",
        )
        for s in both:
            assert s.terminate() == 0
    finally:
        for s in both:
            s.close()
    events = [e for _, e, _ in h.alerts_of(kafka_bootstrap, topics.alerts)]
    for asset in strong:  # scored by a retrained model, on whichever instance owns the pump
        fired = h.fault_alerts(events, asset)[0]
        assert fired.model_version != "v0001", (asset, fired.model_version)
    owners = {h.partition_of(a) for a in strong}
    assert len(owners) == 2  # two partitions: with two instances, not always the trainer's
    reg = sv.ModelRegistry(registry)
    assert reg.versions()[0] == "v0002"
    assert reg.latest() == reg.versions()[-1]
    gate = reg.info("v0002").metadata["gate"]
    assert gate["promote"] is True
    assert "promoted" in gate["reason"]


def test_a_separate_trainer_process_publishes_the_model_the_serving_instances_swap_to(
    kafka_bootstrap, topics, tmp_path, model_path
):
    config = h.write_config(
        tmp_path / "serve.toml", kafka_bootstrap, topics, model_path, trainer="off"
    )
    config.write_text(config.read_text() + RETRAIN)
    h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(0, 440))
    serving = h.ServiceProcess(config, tmp_path / "serve.log").start()
    trainer = h.ServiceProcess(config, tmp_path / "train.log", command=("train", "--follow"))
    trainer.start()
    strong = ("pump-0", "pump-1")
    try:
        h.wait_for(
            lambda: trainer.metric("streamvae_retrains_total") >= 1,
            90,
            "the trainer process to retrain the group's model",
        )
        h.wait_for(
            lambda: serving.metric("streamvae_model_swaps_total") >= 1,
            30,
            "the serving instance to swap to it",
        )
        assert serving.metric("streamvae_retrains_total") == 0  # run.trainer = "off"
        assert serving.metric("streamvae_assigned_partitions") == h.PARTITIONS  # own group
        assert f"group {topics.group}.trainer" in trainer.log()
        h.produce(kafka_bootstrap, topics.sensors, h.plant_messages(440, h.TEST_STEPS))
        wait_for_alerts_on(kafka_bootstrap, topics, strong)
        for s in (serving, trainer):
            assert s.terminate() == 0
    finally:
        serving.close()
        trainer.close()
    events = [e for _, e, _ in h.alerts_of(kafka_bootstrap, topics.alerts)]
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids))  # one copy of each: the trainer publishes no alerts
    for asset in strong:
        assert h.fault_alerts(events, asset)[0].model_version != "v0001"
