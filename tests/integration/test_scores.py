"""``kafka.scores_topic``: every scored window's score and threshold, for dashboards and the
demo's report, against a real broker."""

from __future__ import annotations

import json
import math
import uuid

import pytest

from tests.integration import harness as h

pytestmark = pytest.mark.slow


def test_the_scores_topic_carries_one_record_per_scored_window_keyed_by_asset(
    kafka_bootstrap, topics, model_path, tmp_path
):
    scores_topic = f"scores-{uuid.uuid4().hex[:10]}"
    config = h.write_config(tmp_path / "streamvae.toml", kafka_bootstrap, topics, model_path)
    text = config.read_text().replace("[kafka]\n", f'[kafka]\nscores_topic = "{scores_topic}"\n')
    config.write_text(text)
    messages = h.plant_messages(0, 400)
    h.produce(kafka_bootstrap, topics.sensors, messages)
    with h.running(config, tmp_path / "service.log") as service:
        h.wait_for(
            lambda: service.metric("streamvae_records_processed_total") == len(messages),
            60,
            "every reading processed",
        )
        scored = service.metric("streamvae_windows_scored_total")
        published = service.metric("streamvae_scores_published_total")
        assert service.terminate() == 0
    assert scored > 0
    assert published == scored
    records = h.read_topic(kafka_bootstrap, scores_topic)
    assert len(records) >= scored  # at least once: a replay may repeat some
    assets = set()
    for r in records:
        doc = json.loads(r.value)
        assert set(doc) == {
            "asset",
            "ts",
            "score",
            "threshold",
            "anomalous",
            "model_version",
            "top_channel",
        }
        assert r.key == doc["asset"].encode()
        assert math.isfinite(doc["score"])
        assert doc["model_version"] == "v0001"
        assets.add(doc["asset"])
    assert assets == set(h.ASSETS)


def test_without_a_scores_topic_nothing_is_published(kafka_bootstrap, topics, model_path, tmp_path):
    config = h.write_config(tmp_path / "streamvae.toml", kafka_bootstrap, topics, model_path)
    messages = h.plant_messages(0, 100)
    h.produce(kafka_bootstrap, topics.sensors, messages)
    with h.running(config, tmp_path / "service.log") as service:
        h.wait_for(
            lambda: service.metric("streamvae_records_processed_total") == len(messages),
            60,
            "every reading processed",
        )
        assert service.metric("streamvae_windows_scored_total") > 0
        assert service.metric("streamvae_scores_published_total") == 0
        assert service.terminate() == 0
