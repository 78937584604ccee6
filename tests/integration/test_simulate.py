"""`streamvae simulate` against the real broker: the plant lands in the topic, labels beside."""

from __future__ import annotations

import io
import json

import pytest

import streamvae as sv
from consumers.cli import main
from streamvae.plant import FLEET_CHANNELS
from tests.integration import harness as h

pytestmark = pytest.mark.slow


def test_the_simulated_plant_lands_in_the_topic_and_its_labels_in_a_file(
    kafka_bootstrap, unique_topic, tmp_path
):
    labels = tmp_path / "labels.json"
    out = io.StringIO()
    args = ["simulate", "--topic", unique_topic, "--bootstrap", kafka_bootstrap]
    args += ["--assets", "2", "--days", "3", "--healthy-days", "1", "--faults", "2"]
    args += ["--labels", str(labels), "--start-ts", "1700000000"]
    assert main(args, out) == 0, out.getvalue()
    doc = json.loads(labels.read_text())
    assert len(doc["faults"]) == 2
    sent = 2 * 864 - doc["missing_readings"]
    records = h.read_topic(kafka_bootstrap, unique_topic)
    assert len(records) == sent
    decoder = sv.ReadingDecoder()
    readings = [decoder.decode(r.value) for r in records]
    assert all(isinstance(r, sv.Reading) for r in readings)
    assert {r.key for r in records} == {b"pump-01", b"compressor-02"}
    assert {tuple(sorted(r.values)) for r in readings} == {tuple(sorted(FLEET_CHANNELS))}
    assert sorted(f["kind"] for f in doc["faults"]) == ["bearing_wear", "cavitation"]
    for fault in doc["faults"]:
        assert fault["start_ts"] >= 1700000000 + 86_400
        assert (fault["asset"], fault["asset_kind"]) in {
            ("pump-01", "pump"),
            ("compressor-02", "compressor"),
        }
