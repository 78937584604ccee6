"""Event-level evaluation: alert documents → episodes → detections and false alerts."""

from __future__ import annotations

import json

import pytest

from streamvae.errors import InputError
from streamvae.evaluation import (
    AlertSpan,
    FaultSpan,
    alert_spans,
    faults_from_labels,
    match_alerts,
    scored_asset_hours,
)
from streamvae.types import AlertEvent

T0 = 1_700_000_000.0


def firing(asset="pump-1", starts_at=T0, raised=T0 + 300, top="flow", score=5.0, site="s"):
    return AlertEvent(
        "firing", site, asset, "warning", f"{asset} anomalous", starts_at, None, score, 2.0,
        {top: 0.7, "zzz": 0.3}, raised - 600, raised, "v0001",
    )  # fmt: skip


def resolved(asset="pump-1", starts_at=T0, ends_at=T0 + 3000, top="flow", peak=9.0, site="s"):
    return AlertEvent(
        "resolved", site, asset, "critical", f"{asset} recovered", starts_at, ends_at, peak, 2.0,
        {top: 0.6, "zzz": 0.4}, starts_at + 100, starts_at + 700, "v0001", reason="recovered",
    )  # fmt: skip


def span(asset="pump-1", raised=T0, ended=None, top="flow"):
    return AlertSpan(asset, raised, raised, ended, top, "warning")


FAULT = FaultSpan("pump-1", "stuck", "flow", T0, T0 + 3600)


# ------------------------------------------------------------------------- alert_spans


def test_firing_and_resolved_events_pair_into_one_episode():
    [a] = alert_spans([firing().to_cloudevent(), resolved().to_cloudevent()])
    assert (a.asset, a.starts_at_ts, a.ended_ts, a.reason) == ("pump-1", T0, T0 + 3000, "recovered")
    assert a.firing_seen
    assert not a.is_open


def test_raised_time_is_the_end_of_the_firing_window_not_starts_at():
    [a] = alert_spans([firing(starts_at=T0, raised=T0 + 450).to_cloudevent()])
    assert a.raised_ts == T0 + 450
    assert a.starts_at_ts == T0


def test_byte_identical_duplicates_count_once():
    docs = [firing().to_json(), firing().to_json(), resolved().to_json(), resolved().to_json()]
    assert len(alert_spans(docs)) == 1


def test_raw_json_text_and_bytes_are_accepted():
    doc = firing().to_json()
    assert alert_spans([doc]) == alert_spans([doc.decode()]) == alert_spans([json.loads(doc)])


def test_an_episode_without_its_resolved_event_stays_open():
    [a] = alert_spans([firing().to_json()])
    assert a.is_open
    assert (a.ended_ts, a.duration_s, a.peak_score) == (None, None, None)


def test_an_episode_seen_only_resolved_falls_back_to_starts_at():
    [a] = alert_spans([resolved(starts_at=T0 + 60).to_json()])
    assert not a.firing_seen
    assert a.raised_ts == a.starts_at_ts == T0 + 60


def test_episodes_of_one_asset_are_told_apart_by_starts_at():
    docs = [
        firing(starts_at=T0, raised=T0 + 300).to_json(),
        resolved(starts_at=T0, ends_at=T0 + 900).to_json(),
        firing(starts_at=T0 + 5000, raised=T0 + 5300).to_json(),
    ]
    spans = alert_spans(docs)
    assert [(a.raised_ts, a.ended_ts) for a in spans] == [(T0 + 300, T0 + 900), (T0 + 5300, None)]


def test_top_channel_comes_from_the_firing_event_and_severity_from_the_resolved_one():
    [a] = alert_spans([firing(top="speed").to_json(), resolved(top="flow").to_json()])
    assert a.top_channel == "speed"
    assert a.severity == "critical"  # the resolved event's, computed from the episode's peak
    assert (a.score, a.peak_score) == (5.0, 9.0)


def test_an_altered_document_is_refused():
    doc = firing().to_cloudevent()
    doc["data"]["starts_at"] = "2030-01-01T00:00:00.000Z"
    with pytest.raises(InputError):
        alert_spans([doc])


def test_a_document_that_is_not_json_is_refused():
    with pytest.raises(InputError, match="not JSON"):
        alert_spans([b"{oops"])


# ------------------------------------------------------------------------- labels


def test_fault_labels_ignore_unknown_keys_and_keep_the_asset_kind():
    doc = {
        "about": {"assets": 2},
        "faults": [
            {"asset": "m-2", "kind": "drift", "channel": "speed", "start_ts": T0 + 10,
             "end_ts": T0 + 20, "asset_kind": "motor", "magnitude": 3.0},
            {"asset": "p-1", "kind": "spike", "channel": "flow", "start_ts": T0, "end_ts": T0 + 5},
        ],
    }  # fmt: skip
    faults = faults_from_labels(doc)
    assert [(f.asset, f.asset_kind) for f in faults] == [("p-1", None), ("m-2", "motor")]


def test_a_fault_label_missing_a_field_is_refused_by_name():
    with pytest.raises(InputError, match="channel"):
        faults_from_labels([{"asset": "p", "kind": "spike", "start_ts": 0.0, "end_ts": 1.0}])


# ------------------------------------------------------------------------- match_alerts


def test_an_alert_raised_during_the_fault_detects_it():
    s = match_alerts([FAULT], [span(raised=T0 + 900)], tolerance_s=0)
    [o] = s.outcomes
    assert o.detected
    assert o.time_to_detect_s == 900.0
    assert s.false_alerts == ()


def test_an_alert_raised_within_the_tolerance_after_the_fault_end_detects_it():
    inside = match_alerts([FAULT], [span(raised=FAULT.end_ts + 600)], tolerance_s=600)
    outside = match_alerts([FAULT], [span(raised=FAULT.end_ts + 601)], tolerance_s=600)
    assert inside.detected == 1
    assert outside.detected == 0
    assert len(outside.false_alerts) == 1


def test_an_alert_on_another_asset_does_not_detect_the_fault_and_is_false():
    s = match_alerts([FAULT], [span(asset="pump-2", raised=T0 + 900)], tolerance_s=600)
    assert s.detected == 0
    assert [a.asset for a in s.false_alerts] == ["pump-2"]


def test_an_alert_already_open_when_the_fault_starts_does_not_detect_it():
    early = span(raised=T0 - 600, ended=T0 + 1200)
    s = match_alerts([FAULT], [early], tolerance_s=600)
    [o] = s.outcomes
    assert not o.detected
    assert o.open_alert == early
    assert s.false_alerts == (early,)


def test_a_later_alert_still_detects_a_fault_that_started_under_an_open_alert():
    early, late = span(raised=T0 - 600, ended=T0 + 1200), span(raised=T0 + 1800)
    [o] = match_alerts([FAULT], [early, late], tolerance_s=0).outcomes
    assert o.alert == late
    assert o.open_alert == early


def test_the_earliest_alert_in_the_interval_detects_and_later_ones_are_repeats_not_false():
    first, second = span(raised=T0 + 300, ended=T0 + 600), span(raised=T0 + 1200)
    s = match_alerts([FAULT], [second, first], tolerance_s=0)
    [o] = s.outcomes
    assert o.alert == first
    assert o.alerts == 2
    assert s.false_alerts == ()


def test_an_alert_in_two_overlapping_intervals_counts_for_the_later_fault_only():
    later = FaultSpan("pump-1", "spike", "flow", FAULT.end_ts + 300, FAULT.end_ts + 400)
    s = match_alerts([FAULT, later], [span(raised=FAULT.end_ts + 350)], tolerance_s=3600)
    assert [o.detected for o in s.outcomes] == [False, True]


def test_names_channel_says_whether_the_top_channel_is_the_faulted_one():
    right = match_alerts([FAULT], [span(raised=T0 + 1, top="flow")], tolerance_s=0)
    wrong = match_alerts([FAULT], [span(raised=T0 + 1, top="speed")], tolerance_s=0)
    assert (right.outcomes[0].names_channel, right.channel_named_rate) == (True, 1.0)
    assert (wrong.outcomes[0].names_channel, wrong.channel_named_rate) == (False, 0.0)


def test_rates_count_detections_and_false_alerts_per_asset_hour():
    other = FaultSpan("pump-3", "spike", "flow", T0, T0 + 60)
    alerts = [span(raised=T0 + 60), span(asset="pump-2", raised=T0), span(asset="pump-2")]
    s = match_alerts([FAULT, other], alerts, tolerance_s=0, asset_hours=40.0)
    assert (s.detected, s.faults, s.detection_rate) == (1, 2, 0.5)
    assert s.false_alerts_per_asset_hour == pytest.approx(2 / 40)
    assert [o.fault.asset for o in s.missed] == ["pump-3"]
    assert s.median_time_to_detect_s == 60.0


def test_without_faults_or_asset_hours_the_rates_are_none():
    s = match_alerts([], [span()], tolerance_s=0)
    assert (s.detection_rate, s.false_alerts_per_asset_hour) == (None, None)
    assert len(s.false_alerts) == 1


def test_a_negative_tolerance_is_refused():
    with pytest.raises(InputError, match="tolerance_s"):
        match_alerts([FAULT], [], tolerance_s=-1)


def test_a_fault_ending_before_it_starts_is_refused():
    with pytest.raises(InputError, match="before start_ts"):
        FaultSpan("p", "spike", "flow", 10.0, 5.0)


# ------------------------------------------------------------------------- asset-hours


def test_scored_asset_hours_adds_one_step_to_each_assets_span():
    points = [("a", T0 + 300.0 * i) for i in range(13)] + [("b", T0), ("b", T0 + 300.0)]
    assert scored_asset_hours(points) == pytest.approx((3600 + 300 + 300 + 300) / 3600)


def test_scored_asset_hours_of_nothing_is_zero():
    assert scored_asset_hours([]) == 0.0
