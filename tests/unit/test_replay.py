"""Reading a user's CSV into readings for `streamvae replay` (no broker needed here)."""

from __future__ import annotations

import pytest

import streamvae as sv
from consumers.replay import ReplayError, csv_readings, replay


def write(tmp_path, text: str, name: str = "pump-7.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_time_column_without_a_zone_is_read_as_utc(tmp_path):
    path = write(tmp_path, "datetime;flow\n2020-03-09 10:14:33;1.0\n")
    assert csv_readings(path).readings[0].ts == 1583748873.0


def test_epoch_milliseconds_and_seconds_are_both_understood(tmp_path):
    path = write(tmp_path, "ts,flow\n1700000000000,1.0\n1700000001,2.0\n")
    assert [r.ts for r in csv_readings(path).readings] == [1700000000.0, 1700000001.0]


def test_without_a_time_column_rows_are_a_period_apart(tmp_path):
    path = write(tmp_path, "flow,temp\n1,2\n3,4\n5,6\n")
    got = csv_readings(path, period_s=30.0, start_ts=1000.0).readings
    assert [r.ts for r in got] == [1000.0, 1030.0, 1060.0]


def test_the_asset_is_the_file_name_unless_a_column_or_a_name_is_given(tmp_path):
    path = write(tmp_path, "unit,flow\np1,1\np2,2\np1,3\n")
    assert {r.asset for r in csv_readings(path, exclude=["unit"]).readings} == {"pump-7"}
    by_column = csv_readings(path, asset_column="unit")
    assert [r.asset for r in by_column.readings] == ["p1", "p2", "p1"]
    assert by_column.assets == ("p1", "p2")
    assert {r.asset for r in csv_readings(path, asset="mine", exclude=["unit"]).readings} == {
        "mine"
    }


def test_an_empty_cell_leaves_that_channel_out_and_an_empty_row_is_skipped(tmp_path):
    path = write(tmp_path, "flow,temp\n1,\n,\n2,3\n")
    got = csv_readings(path, start_ts=0.0)
    assert [r.values for r in got.readings] == [{"flow": 1.0}, {"flow": 2.0, "temp": 3.0}]
    assert got.skipped_rows == 1


def test_label_columns_can_be_excluded(tmp_path):
    path = write(tmp_path, "flow,anomaly\n1,0\n2,1\n")
    assert csv_readings(path, exclude=["anomaly"]).channels == ("flow",)


def test_an_unreadable_time_says_which_row_and_what_to_do(tmp_path):
    path = write(tmp_path, "time,flow\nyesterday,1\n")
    with pytest.raises(ReplayError, match=r"pump-7.csv:2: .*--ts-column"):
        csv_readings(path)


def test_a_missing_asset_column_is_named(tmp_path):
    path = write(tmp_path, "flow\n1\n")
    with pytest.raises(ReplayError, match="no asset column 'unit'"):
        csv_readings(path, asset_column="unit")


def test_replay_paces_by_event_time_times_the_speed():
    readings = [sv.Reading("p", float(t), {"x": 1.0}) for t in (0, 10, 20)]
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    sent: list[bytes] = []
    replay(readings, lambda k, v: sent.append(k), speed=10.0, sleep=sleep, clock=lambda: now[0])
    assert sent == [b"p", b"p", b"p"]
    assert slept == pytest.approx([1.0, 1.0])  # 10 s of event time at 10x


def test_replay_values_are_the_readings_the_service_decodes():
    reading = sv.Reading("p", 1_700_000_000.0, {"x": 1.5})
    got: list[bytes] = []
    replay([reading], lambda k, v: got.append(v))
    decoded = sv.ReadingDecoder().decode(got[0])
    assert decoded == sv.Reading("p", 1_700_000_000.0, {"x": 1.5})
