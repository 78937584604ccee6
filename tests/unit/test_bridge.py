"""The alert bridges' pure parts: event → Alertmanager alert / PagerDuty event, the ledger that
keeps duplicates from paging twice, the retry policy, the routing key file. No network here:
``tests/integration/test_bridge_*.py`` runs the loop against a real Alertmanager and an Events
API v2 server."""

from __future__ import annotations

import doctest
import random

import pytest

import consumers.bridge as bridge
import streamvae as sv
from consumers.bridge import (
    AlertLedger,
    AlertmanagerTarget,
    BridgeError,
    PagerDutyTarget,
    RetryPolicy,
    alertmanager_alert,
    classify,
    pagerduty_event,
    read_routing_key,
    retry_after_s,
)
from consumers.cli import main
from consumers.settings import Secret

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z
KEY = Secret("0123456789abcdef0123456789abcdef")


def event(
    status: str = "firing",
    asset: str = "pump-7",
    starts_at: float = T0,
    severity: str = "critical",
    summary: str = "pump-7 anomalous: score 9.7 > threshold 4.1 (p99.5); top channel vibration",
) -> sv.AlertEvent:
    resolved = status == "resolved"
    return sv.AlertEvent(
        status=status,
        site="plant-1",
        asset=asset,
        severity=severity,
        summary=summary,
        starts_at=starts_at,
        ends_at=starts_at + 3600.0 if resolved else None,
        score=9.7,
        threshold=4.1,
        contributions={"vibration": 0.71, "temp": 0.29},
        window_start=starts_at - 300.0,
        window_end=starts_at,
        model_version="v0007",
        input=sv.types.OffsetSpan("plant.sensors", 3, 100, 160),
        reason="recovered" if resolved else None,
    )


# ----------------------------------------------------------------------------- Alertmanager


def test_a_firing_event_becomes_an_alertmanager_alert_with_our_labels_and_no_end():
    alert = alertmanager_alert(event(), generator_url="http://grafana/d/x?var-asset={asset}")
    assert alert["labels"] == {
        "alertname": "SensorAnomaly",
        "asset": "pump-7",
        "site": "plant-1",
        "severity": "critical",
        "dedup_key": "streamvae:plant-1:pump-7",
    }
    assert alert["startsAt"] == "2025-11-24T16:00:00.000Z"
    assert "endsAt" not in alert  # Alertmanager's resolve_timeout runs; the bridge re-sends
    assert alert["generatorURL"] == "http://grafana/d/x?var-asset=pump-7"
    notes = alert["annotations"]
    assert notes["summary"] == event().summary
    assert notes["score"] == "9.7 nats per value"
    assert notes["threshold"] == "4.1 nats per value"
    assert notes["top_channel"] == "vibration"
    assert notes["event_id"] == event().id
    assert all(isinstance(v, str) for v in notes.values())  # Alertmanager wants strings


def test_a_resolved_event_ends_the_alert_at_its_resolve_time_with_the_firing_labels():
    firing = event(severity="warning")
    resolved = event("resolved", severity="critical")  # the peak was higher than the trigger
    alert = alertmanager_alert(resolved, firing=firing)
    assert alert["labels"] == alertmanager_alert(firing)["labels"]  # the same alert there
    assert alert["labels"]["severity"] == "warning"
    assert alert["startsAt"] == "2025-11-24T16:00:00.000Z"
    assert alert["endsAt"] == "2025-11-24T17:00:00.000Z"
    assert alert["annotations"]["reason"] == "recovered"


def test_alertmanager_times_ahead_of_the_receivers_clock_are_capped_at_now():
    now = T0 - 86_400.0  # the readings' event time runs a day ahead of the wall clock
    firing = alertmanager_alert(event(), now=now)
    resolved = alertmanager_alert(event("resolved"), now=now)
    assert firing["startsAt"] == sv.types.format_event_time(now)
    assert resolved["endsAt"] == sv.types.format_event_time(now)
    assert resolved["annotations"]["ends_at"] == "2025-11-24T17:00:00.000Z"  # kept, as a note


def test_the_generator_url_gets_the_asset_escaped():
    alert = alertmanager_alert(event(asset="pump 7/a"), generator_url="http://g/{site}/{asset}")
    assert alert["generatorURL"] == "http://g/plant-1/pump%207%2Fa"


def test_the_alertmanager_endpoint_is_api_v2_alerts_under_the_given_url():
    assert AlertmanagerTarget("http://am:9093").endpoint == "http://am:9093/api/v2/alerts"
    assert AlertmanagerTarget("http://am:9093/api/v2/alerts/").endpoint == (
        "http://am:9093/api/v2/alerts"
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: AlertmanagerTarget("am:9093"), "is not an http(s) URL"),
        (lambda: AlertmanagerTarget("http://am", resend_interval_s=0.0), "--resend-interval"),
        (lambda: AlertmanagerTarget("http://am", generator_url="http://g/{x}"), "{asset}"),
        (lambda: PagerDutyTarget(KEY, url="ftp://pd"), "is not an http(s) URL"),
    ],
)
def test_bad_receiver_settings_are_refused_with_what_to_do(make, message):
    with pytest.raises(BridgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


# ----------------------------------------------------------------------------- PagerDuty


def test_a_firing_event_becomes_a_pagerduty_trigger_keyed_by_the_alerts_dedup_key():
    ev = pagerduty_event(event(), KEY, client_url="http://grafana")
    assert ev["routing_key"] == KEY.reveal()
    assert ev["event_action"] == "trigger"
    assert ev["dedup_key"] == "streamvae:plant-1:pump-7"  # the resolve closes this incident
    payload = ev["payload"]
    assert payload["summary"] == event().summary
    assert payload["source"] == "pump-7"
    assert payload["severity"] == "critical"
    assert payload["timestamp"] == "2025-11-24T16:00:00.000Z"
    assert payload["component"] == "vibration"
    assert payload["group"] == "plant-1"
    details = payload["custom_details"]
    assert details["score_nats_per_value"] == 9.7
    assert details["contributions"] == {"vibration": 0.71, "temp": 0.29}
    assert details["input"] == {
        "topic": "plant.sensors",
        "partition": 3,
        "offset_start": 100,
        "offset_end": 160,
    }
    assert details["event_id"] == event().id
    assert ev["client_url"] == "http://grafana"


@pytest.mark.parametrize(("ours", "theirs"), [("critical", "critical"), ("warning", "warning")])
def test_our_severities_map_onto_pagerdutys(ours, theirs):
    assert pagerduty_event(event(severity=ours), KEY)["payload"]["severity"] == theirs


def test_a_resolved_event_becomes_a_pagerduty_resolve_of_the_same_dedup_key():
    ev = pagerduty_event(event("resolved"), KEY)
    assert ev == {
        "routing_key": KEY.reveal(),
        "event_action": "resolve",
        "dedup_key": "streamvae:plant-1:pump-7",
    }


def test_a_summary_longer_than_1024_characters_is_cut_to_1024():
    ev = pagerduty_event(event(summary="x" * 5000), KEY)
    assert len(ev["payload"]["summary"]) == 1024
    assert ev["payload"]["summary"].endswith("…")


def test_a_dedup_key_beyond_255_characters_is_shortened_the_same_way_for_every_event():
    long = "a" * 400
    trigger = pagerduty_event(event(asset=long), KEY)["dedup_key"]
    resolve = pagerduty_event(event("resolved", asset=long), KEY)["dedup_key"]
    other = pagerduty_event(event(asset=long[:-1] + "b"), KEY)["dedup_key"]
    assert len(trigger) == 255
    assert trigger == resolve
    assert other != trigger


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("short\n", "holds 5 characters; a PagerDuty routing key has 32"),
        ("0123456789abcdef 123456789abcdef", "with whitespace inside"),
    ],
)
def test_the_routing_key_file_must_hold_one_32_character_key(tmp_path, content, message):
    path = tmp_path / "routing.key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BridgeError, match=message):
        read_routing_key(path)


def test_the_routing_key_is_read_stripped_and_never_shown(tmp_path):
    path = tmp_path / "routing.key"
    path.write_text(f"  {KEY.reveal()}\n")
    key = read_routing_key(path)
    assert key.reveal() == KEY.reveal()
    target = PagerDutyTarget(key, url="http://127.0.0.1:1")
    assert KEY.reveal() not in repr(target) + str(target) + repr(key) + str(key)


def test_a_bad_routing_key_file_stops_the_command_with_exit_2_and_says_why(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("STREAMVAE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("STREAMVAE_KAFKA_TOPICS", "plant.sensors")
    monkeypatch.setenv("STREAMVAE_DETECTOR_WINDOW_CHANNELS", "flow")
    (tmp_path / "k").write_text("too-short")
    code = main(["bridge", "pagerduty", "--routing-key-file", str(tmp_path / "k")])
    assert code == 2
    assert "--routing-key-file: the file holds 9 characters" in capsys.readouterr().err


# ----------------------------------------------------------------------------- delivery


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "accepted"),
        (202, "accepted"),
        (429, "retry"),
        (408, "retry"),
        (500, "retry"),
        (503, "retry"),
        (400, "rejected"),
        (401, "rejected"),
        (404, "rejected"),
        (413, "rejected"),
    ],
)
def test_statuses_are_accepted_retried_or_rejected_for_good(status, verdict):
    assert classify(status) == verdict


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert retry_after_s("3") == 3.0
    assert retry_after_s("Mon, 24 Nov 2025 16:00:10 GMT", now=T0) == 10.0
    assert retry_after_s("Mon, 24 Nov 2025 15:00:00 GMT", now=T0) == 0.0  # in the past
    assert retry_after_s(None) is None
    assert retry_after_s("soon") is None


def test_the_backoff_doubles_up_to_its_cap_and_jitter_only_shortens_it():
    policy = RetryPolicy(initial_s=0.5, max_s=4.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, base in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(base / 2 <= d <= base for d in delays)
        assert len(set(delays)) > 100  # jittered: bridges do not retry in lockstep


def test_a_retry_after_header_wins_over_the_backoff_up_to_its_cap():
    policy = RetryPolicy(initial_s=0.5, max_s=4.0, max_retry_after_s=60.0)
    assert policy.delay(0, random.Random(0), retry_after=20.0) == 20.0
    assert policy.delay(0, random.Random(0), retry_after=3600.0) == 60.0


def test_a_retry_policy_with_a_cap_below_its_first_delay_is_refused():
    with pytest.raises(ValueError, match=r"max_s \(1 s\) must be >= initial_s \(2 s\)"):
        RetryPolicy(initial_s=2, max_s=1)


# ----------------------------------------------------------------------------- the ledger


def test_the_ledger_skips_an_event_whose_id_was_already_handled():
    ledger = AlertLedger()
    ledger.record(event(), partition=0)
    assert ledger.verdict(event()) == "duplicate"
    assert ledger.verdict(event("resolved")) == "new"


def test_a_replayed_firing_event_after_its_resolve_is_stale_even_once_its_id_is_forgotten():
    ledger = AlertLedger(capacity=1)
    ledger.record(event(), partition=0)
    ledger.record(event("resolved"), partition=0)  # pushes the firing id out of memory
    assert ledger.verdict(event()) == "stale"
    assert ledger.verdict(event(starts_at=T0 + 7200)) == "new"  # the next episode


def test_the_ledger_remembers_at_most_its_capacity_of_event_ids():
    ledger = AlertLedger(capacity=3)
    for i in range(5):
        ledger.record(event(asset=f"pump-{i}"), partition=0)
    assert ledger.verdict(event(asset="pump-0")) == "stale"  # forgotten id, guard remains
    assert ledger.verdict(event(asset="pump-4")) == "duplicate"
    assert len(ledger._seen) == 3


def test_the_ledger_knows_what_is_firing_per_partition_until_it_resolves():
    ledger = AlertLedger()
    ledger.record(event(asset="pump-1"), partition=0)
    ledger.record(event(asset="pump-2", starts_at=T0 + 60), partition=1)
    assert [e.asset for e in ledger.firing()] == ["pump-1", "pump-2"]
    assert [e.asset for e in ledger.firing(partition=1)] == ["pump-2"]
    ledger.record(event("resolved", asset="pump-1"), partition=0)
    assert [e.asset for e in ledger.firing()] == ["pump-2"]
    ledger.drop_partition(1)  # revoked: its new owner re-sends it
    assert ledger.firing() == []


def test_a_firing_event_the_receiver_rejected_is_not_re_sent_as_firing():
    ledger = AlertLedger()
    ledger.record(event(), partition=0, accepted=False)
    assert ledger.firing() == []
    assert ledger.verdict(event()) == "duplicate"


def test_a_resolve_of_an_earlier_episode_does_not_end_the_one_firing_now():
    ledger = AlertLedger(capacity=1)
    ledger.record(event(starts_at=T0 + 7200), partition=0)
    assert ledger.verdict(event("resolved", starts_at=T0)) == "stale"


def test_the_bridge_modules_docstring_examples_run():
    result = doctest.testmod(bridge, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20
    assert result.failed == 0
