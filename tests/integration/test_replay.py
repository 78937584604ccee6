"""`streamvae replay` against the real broker: a CSV round-trips into windows."""

from __future__ import annotations

import io

import numpy as np
import pytest

import streamvae as sv
from consumers.cli import main
from tests.integration import harness as h

pytestmark = pytest.mark.slow


def test_a_csv_replayed_into_a_topic_comes_back_as_the_same_windows(
    kafka_bootstrap, unique_topic, tmp_path
):
    rng = np.random.default_rng(5)
    rows = ["asset;datetime;flow;temp"]
    values = {"a": rng.normal(size=(60, 2)), "b": rng.normal(size=(60, 2))}
    for t in range(60):
        for asset in ("a", "b"):
            flow, temp = values[asset][t]
            stamp = f"2024-05-01 00:{t // 60:02d}:{t % 60:02d}"
            rows.append(f"{asset};{stamp};{float(flow)!r};{float(temp)!r}")
    path = tmp_path / "plant.csv"
    path.write_text("\n".join(rows) + "\n")
    out = io.StringIO()
    code = main(
        [
            "replay",
            str(path),
            "--topic",
            unique_topic,
            "--bootstrap",
            kafka_bootstrap,
            "--asset-column",
            "asset",
        ],
        out,
    )
    assert code == 0, out.getvalue()
    assert "120 readings of 2 asset(s)" in out.getvalue()
    records = h.read_topic(kafka_bootstrap, unique_topic)
    assert len(records) == 120
    decoder = sv.ReadingDecoder()
    readings = [decoder.decode(r.value) for r in records]
    assert all(isinstance(r, sv.Reading) for r in readings)
    assert {r.key for r in records} == {b"a", b"b"}
    windower = sv.Windower(sv.WindowConfig(channels=("flow", "temp"), period_s=1.0, window=8))
    windows = windower.push_many(readings) + windower.flush()
    for asset in ("a", "b"):
        mine = [w for w in windows if w.asset == asset]
        assert len(mine) == 60 - 8 + 1
        np.testing.assert_allclose(mine[0].values, values[asset][:8])
        np.testing.assert_allclose(mine[-1].values, values[asset][-8:])
