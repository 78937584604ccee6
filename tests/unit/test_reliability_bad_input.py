"""The bad-input scenario's generator agrees with the documented rule: every payload it labels
bad is refused by the reading decoder with one of the reasons it expects, and every
well-formed hostile reading is accepted (the windowing, not the DLQ, deals with it)."""

from __future__ import annotations

import random
from collections import Counter

import streamvae as sv
from benchmarks.chaos import bad_input
from tests.integration import harness as h


def _stream(n: int) -> list[tuple[bytes | None, bad_input.Hostile | None]]:
    rng = random.Random(7)
    state: dict[str, float] = {}
    payloads = h.plant_payloads("pump-0", 0, 40)
    out: list[tuple[bytes | None, bad_input.Hostile | None]] = [(payloads[0], None)]
    for step in range(1, 40):
        out.append((payloads[step], None))
        ts = h.T0 + (h.TRAIN_STEPS + step) * h.PERIOD
        for _ in range(n // 39):
            item = bad_input.generate(rng, "pump-0", ts, payloads[step], state)
            out.append((item.value, item))
    return out


def test_generated_bad_payloads_get_one_of_their_expected_reasons_and_the_rest_decode():
    decoder = sv.ReadingDecoder()
    wrong: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for value, item in _stream(4000):
        out = decoder.decode(value)
        if item is None:
            assert isinstance(out, sv.Reading)
            continue
        seen[item.kind] += 1
        if item.bad:
            ok = isinstance(out, sv.Rejection) and out.reason.value in item.reasons
        else:
            ok = isinstance(out, sv.Reading)
        if not ok:
            wrong[f"{item.kind}: {out}"[:200]] += 1
    assert not wrong, wrong.most_common(5)
    assert len(seen) >= 20  # every kind was drawn


def _reading(asset: str, ts: float) -> bytes:
    return sv.encode_reading(sv.Reading(asset, ts, {"temperature": 1.0}))


def test_one_far_future_first_reading_does_not_send_the_partitions_next_readings_to_the_dlq():
    # found by the campaign: with one stream time per partition, a first reading from 2096
    # put every later honest reading "behind stream time", into the DLQ, for good
    decoder = sv.ReadingDecoder()
    assert isinstance(decoder.decode(_reading("bad-clock", 4.0e9)), sv.Reading)
    assert isinstance(decoder.decode(_reading("pump-0", h.T0)), sv.Reading)


def test_one_asset_with_a_fast_clock_cannot_walk_the_stream_time_away_from_the_others():
    # found by the campaign: each reading up to max_future_s ahead moved the partition's
    # stream time, so 745 of them walked it 31 days ahead of every other asset
    decoder = sv.ReadingDecoder()
    assert isinstance(decoder.decode(_reading("pump-0", h.T0)), sv.Reading)
    ts = h.T0
    while ts < h.T0 + 31 * 86400:
        ts += 3599.0
        decoder.decode(_reading("bad-clock", ts))
    assert isinstance(decoder.decode(_reading("pump-0", h.T0 + 300)), sv.Reading)


def test_a_restored_decoder_still_refuses_what_the_original_refused():
    decoder = sv.ReadingDecoder()
    decoder.decode(_reading("pump-0", h.T0))
    again = sv.ReadingDecoder.restore(None, decoder.snapshot())
    assert again.asset_time("pump-0") == h.T0
    assert isinstance(again.decode(_reading("pump-0", h.T0 + 2 * 3600)), sv.Rejection)


def test_a_decoder_snapshot_of_the_previous_format_still_restores():
    state = {"format": 1, "stream_time": h.T0, "accepted": 3, "rejected": {}}
    again = sv.ReadingDecoder.restore(None, state)
    assert (again.stream_time, again.accepted, again.asset_time("pump-0")) == (h.T0, 3, None)
