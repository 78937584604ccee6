"""Decoding and validating sensor payloads: every input yields a Reading or a named Rejection."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamvae.errors import ConfigError, InputError
from streamvae.serde import ReadingConfig, ReadingDecoder, encode_reading
from streamvae.types import Reading, Rejection, RejectReason, SourceRef

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SRC = SourceRef("plant.sensors", 3, 1182200)
PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def payload(**fields: Any) -> bytes:
    """A valid multichannel payload; keyword arguments override or (with ``...``) remove fields."""
    body: dict[str, Any] = {"asset": "pump-7", "ts": T0, "values": {"temp": 71.2, "vib": 0.02}}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def single(**fields: Any) -> bytes:
    body: dict[str, Any] = {"asset": "pump-7", "ts": T0, "channel": "temp", "value": 71.2}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def rejection(raw: bytes, config: ReadingConfig | None = None) -> Rejection:
    out = ReadingDecoder(config).decode(raw)
    assert isinstance(out, Rejection), out
    return out


def reading(raw: bytes, config: ReadingConfig | None = None) -> Reading:
    out = ReadingDecoder(config).decode(raw)
    assert isinstance(out, Reading), out
    return out


# ---------------------------------------------------------------------- shapes and fields


def test_multichannel_payload_decodes_to_a_reading():
    assert ReadingDecoder().decode(payload(), SRC) == Reading(
        "pump-7", T0, {"temp": 71.2, "vib": 0.02}, SRC
    )


def test_single_channel_payload_decodes_to_a_one_channel_reading():
    assert reading(single()) == Reading("pump-7", T0, {"temp": 71.2})


def test_integer_values_become_floats():
    r = reading(payload(values={"temp": 71, "vib": 0.5}))
    assert [type(v) for v in r.values.values()] == [float, float]
    assert r.values == {"temp": 71.0, "vib": 0.5}


def test_custom_field_names_are_used_for_both_shapes():
    cfg = ReadingConfig(
        asset_field="device",
        ts_field="time",
        values_field="metrics",
        channel_field="sensor",
        value_field="reading",
    )
    multi = json.dumps({"device": "d1", "time": T0, "metrics": {"temp": 1.5}}).encode()
    one = json.dumps({"device": "d1", "time": T0, "sensor": "temp", "reading": 1.5}).encode()
    assert reading(multi, cfg) == reading(one, cfg) == Reading("d1", T0, {"temp": 1.5})


def test_default_field_names_are_not_recognised_under_custom_names():
    cfg = ReadingConfig(asset_field="device")
    assert rejection(payload(), cfg).message == "field 'device' missing"


def test_extra_fields_in_the_payload_are_ignored():
    assert reading(payload(site="north", schema_version=2)).values == {"temp": 71.2, "vib": 0.02}


# ---------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "iso",
    [
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20z",
        "2023-11-15T00:13:20+02:00",
        "2023-11-14T17:13:20-05:00",
        "2023-11-14T22:13:20.000+00:00",
    ],
)
def test_iso_timestamps_with_a_zone_are_accepted(iso):
    assert reading(payload(ts=iso)).ts == T0


def test_iso_timestamp_keeps_fractional_seconds():
    assert reading(payload(ts="2023-11-14T22:13:20.250Z")).ts == T0 + 0.25


def test_naive_iso_timestamp_is_rejected_as_ambiguous():
    rej = rejection(payload(ts="2023-11-14T22:13:20"))
    assert rej.reason is RejectReason.BAD_TIMESTAMP
    assert "naive" in rej.message
    assert "add a zone" in rej.message


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1_700_000_000, T0),
        (1_700_000_000.5, T0 + 0.5),
        (1_700_000_000_000, T0),
        (1_700_000_000_500, T0 + 0.5),
        (1_700_000_000_500.0, T0 + 0.5),
    ],
)
def test_epoch_seconds_and_milliseconds_are_told_apart_by_magnitude(ts, expected):
    assert reading(payload(ts=ts)).ts == expected


def test_configured_millisecond_unit_divides_every_timestamp():
    assert reading(payload(ts=1_700_000_000_000), ReadingConfig(ts_unit="ms")).ts == T0


def test_configured_second_unit_does_not_guess_milliseconds():
    rej = rejection(payload(ts=1_700_000_000_000), ReadingConfig(ts_unit="s"))
    assert rej.reason is RejectReason.TIMESTAMP_OUT_OF_RANGE


# ---------------------------------------------------------------------- rejection reasons

HUGE_INT = "9" * 5000  # beyond Python's 4300-digit int-string limit
BIG_INT = "9" * 400  # parses, but overflows a float

REJECTIONS = [
    (b" " * 70000, None, RejectReason.OVERSIZED, "payload is 70000 bytes, limit 65536 bytes"),
    (b'{"asset": "p\xffmp"}', None, RejectReason.INVALID_UTF8, "not UTF-8"),
    (b'{"asset": ', None, RejectReason.INVALID_JSON, "not JSON"),
    (payload() + b"}", None, RejectReason.INVALID_JSON, "Extra data"),
    (b"", None, RejectReason.INVALID_JSON, "Expecting value"),
    (b"[" * 5000 + b"]" * 5000, None, RejectReason.TOO_DEEP, "too deeply"),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, None, RejectReason.TOO_DEEP, "too deeply"),
    (b"[1, 2]", None, RejectReason.NOT_AN_OBJECT, "got an array"),
    (b'"pump-7"', None, RejectReason.NOT_AN_OBJECT, "got a string"),
    (payload(values=[1.0]), None, RejectReason.NOT_AN_OBJECT, "field 'values' must be an obj"),
    (payload(ts=...), None, RejectReason.MISSING_FIELD, "field 'ts' missing"),
    (payload(asset=...), None, RejectReason.MISSING_FIELD, "field 'asset' missing"),
    (payload(values=...), None, RejectReason.MISSING_FIELD, "field 'values' missing"),
    (single(value=...), None, RejectReason.MISSING_FIELD, "field 'value' missing"),
    (single(channel=...), None, RejectReason.MISSING_FIELD, "field 'channel' missing"),
    (payload(asset=7), None, RejectReason.BAD_ASSET, "must be a non-empty string"),
    (payload(asset=""), None, RejectReason.BAD_ASSET, "empty string"),
    (payload(asset="p" * 257), None, RejectReason.BAD_ASSET, "257 characters, limit 256"),
    (payload(asset="\ud800"), None, RejectReason.BAD_ASSET, "surrogates"),
    (payload(ts="yesterday"), None, RejectReason.BAD_TIMESTAMP, "not an ISO-8601 time"),
    (payload(ts=True), None, RejectReason.BAD_TIMESTAMP, "got a boolean"),
    (payload(ts=None), None, RejectReason.BAD_TIMESTAMP, "got null"),
    (payload(ts=math.nan), None, RejectReason.BAD_TIMESTAMP, "field 'ts' is NaN"),
    (payload(ts="2" * 100), None, RejectReason.BAD_TIMESTAMP, "100-character string"),
    (payload(ts=100.0), None, RejectReason.TIMESTAMP_OUT_OF_RANGE, "1970-01-01T00:01:40Z"),
    (payload(ts="2150-01-01T00:00:00Z"), None, RejectReason.TIMESTAMP_OUT_OF_RANGE, "sane range"),
    (payload(ts=int(BIG_INT)), None, RejectReason.TIMESTAMP_OUT_OF_RANGE, "too large"),
    (payload(values={"temp": "71.2"}), None, RejectReason.NOT_A_NUMBER, "got a string '71.2'"),
    (payload(values={"temp": True}), None, RejectReason.NOT_A_NUMBER, "got a boolean"),
    (payload(values={"temp": None}), None, RejectReason.NOT_A_NUMBER, "got null"),
    (payload(values={"temp": [1]}), None, RejectReason.NOT_A_NUMBER, "got an array"),
    (single(value="x"), None, RejectReason.NOT_A_NUMBER, "value of channel 'temp' must be"),
    (payload(values={"temp": math.nan}), None, RejectReason.NON_FINITE, "values.temp is NaN"),
    (payload(values={"temp": math.inf}), None, RejectReason.NON_FINITE, "values.temp is inf"),
    (payload(values={"temp": -math.inf}), None, RejectReason.NON_FINITE, "values.temp is -inf"),
    (payload().replace(b"71.2", b"1e400"), None, RejectReason.NON_FINITE, "values.temp is inf"),
    (single(value=math.nan), None, RejectReason.NON_FINITE, "of channel 'temp' is NaN"),
    (payload(values={"temp": 2e12}), None, RejectReason.ABSURD_VALUE, "limit |value| <= 1e+12"),
    (payload(values={"temp": -(10**13)}), None, RejectReason.ABSURD_VALUE, "values.temp is -1e+13"),
    (payload().replace(b"71.2", BIG_INT.encode()), None, RejectReason.ABSURD_VALUE, "too large"),
    (payload().replace(b"71.2", HUGE_INT.encode()), None, RejectReason.ABSURD_VALUE, "4300 digits"),
    (payload(values={}), None, RejectReason.NO_VALUES, "field 'values' is empty"),
    (
        payload(asset="pump-9"),
        ReadingConfig(assets=("pump-7",)),
        RejectReason.UNKNOWN_ASSET,
        "asset 'pump-9' is not in the configured assets",
    ),
    (
        payload(),
        ReadingConfig(channels=("temp",)),
        RejectReason.UNKNOWN_CHANNEL,
        "values.vib is not a configured channel",
    ),
    (payload(values={"": 1.0}), None, RejectReason.UNKNOWN_CHANNEL, "empty string"),
    (single(channel=3), None, RejectReason.UNKNOWN_CHANNEL, "must be a non-empty string"),
]


@pytest.mark.parametrize(
    ("raw", "config", "reason", "fragment"),
    REJECTIONS,
    ids=[f"{r[2].value}-{i}" for i, r in enumerate(REJECTIONS)],
)
def test_each_fault_gives_its_named_reason_and_a_message_saying_what_was_wrong(
    raw, config, reason, fragment
):
    rej = rejection(raw, config)
    assert (rej.reason, rej.raw) == (reason, raw)
    assert fragment in rej.message


def test_every_reason_code_has_an_example_above():
    assert {r[2] for r in REJECTIONS} == set(RejectReason)


def test_payload_size_is_checked_before_anything_is_parsed():
    rej = rejection(b"\xff" * 70000)  # would also be invalid UTF-8
    assert rej.reason is RejectReason.OVERSIZED


def test_a_none_payload_is_rejected_rather_than_raised():
    rej = ReadingDecoder().decode(None, SRC)  # type: ignore[arg-type]
    assert isinstance(rej, Rejection)
    assert (rej.reason, rej.raw, rej.source) == (RejectReason.INVALID_JSON, b"", SRC)
    assert "tombstone" in rej.message


def test_a_bytearray_payload_is_decoded_like_bytes():
    assert ReadingDecoder().decode(bytearray(payload())) == reading(payload())  # type: ignore[arg-type]


def test_rejection_carries_the_original_bytes_and_the_source():
    raw = payload(values={"temp": "hot"})
    rej = ReadingDecoder().decode(raw, SRC)
    assert isinstance(rej, Rejection)
    assert (rej.raw, rej.source) == (raw, SRC)


def test_booleans_and_numeric_strings_are_numbers_only_when_configured():
    cfg = ReadingConfig(bool_values=True, numeric_strings=True)
    assert reading(payload(values={"on": True, "t": " 71.5 "}), cfg).values == {
        "on": 1.0,
        "t": 71.5,
    }


def test_numeric_strings_still_go_through_the_finiteness_check():
    rej = rejection(payload(values={"t": "nan"}), ReadingConfig(numeric_strings=True))
    assert rej.reason is RejectReason.NON_FINITE


def test_absurd_magnitude_bound_is_configurable():
    assert reading(payload(values={"p": 5e12}), ReadingConfig(max_abs_value=1e13)).values == {
        "p": 5e12
    }


# ---------------------------------------------------------------------- allow-lists


def test_allow_listed_assets_pass():
    assert reading(payload(asset="pump-7"), ReadingConfig(assets=("pump-7", "pump-8")))


def test_unknown_channel_rejects_the_reading_by_default():
    rej = rejection(payload(), ReadingConfig(channels=("temp",)))
    assert rej.reason is RejectReason.UNKNOWN_CHANNEL


def test_unknown_channels_are_dropped_and_counted_when_configured():
    dec = ReadingDecoder(ReadingConfig(channels=("temp",), unknown_channels="drop"))
    out = dec.decode(payload(values={"vib": 0.1, "temp": 71.2, "rpm": 1500}))
    assert out == Reading("pump-7", T0, {"temp": 71.2})
    assert dec.dropped_channels == 2


def test_a_reading_whose_every_channel_is_dropped_is_rejected():
    cfg = ReadingConfig(channels=("temp",), unknown_channels="drop")
    assert rejection(payload(values={"vib": 0.1}), cfg).reason is RejectReason.UNKNOWN_CHANNEL
    assert rejection(single(channel="vib"), cfg).reason is RejectReason.UNKNOWN_CHANNEL


# ---------------------------------------------------------------------- stream time


def test_first_reading_is_checked_only_against_the_absolute_bounds():
    dec = ReadingDecoder()
    assert isinstance(dec.decode(payload(ts=4_000_000_000.0)), Reading)  # year 2096
    assert dec.stream_time == 4_000_000_000.0


def test_reading_far_ahead_of_stream_time_is_rejected():
    dec = ReadingDecoder(ReadingConfig(max_future_s=3600.0))
    dec.decode(payload(ts=T0))
    assert isinstance(dec.decode(payload(ts=T0 + 3600.0)), Reading)
    rej = dec.decode(payload(ts=T0 + 3600.0 + 3600.5))
    assert isinstance(rej, Rejection)
    assert rej.reason is RejectReason.TIMESTAMP_OUT_OF_RANGE
    assert "3600.5 s ahead of stream time" in rej.message
    assert "limit 3600 s" in rej.message


def test_reading_far_behind_stream_time_is_rejected():
    dec = ReadingDecoder(ReadingConfig(max_past_s=86400.0))
    dec.decode(payload(ts=T0))
    assert isinstance(dec.decode(payload(ts=T0 - 86400.0)), Reading)
    rej = dec.decode(payload(ts=T0 - 86401.0))
    assert isinstance(rej, Rejection)
    assert rej.reason is RejectReason.TIMESTAMP_OUT_OF_RANGE
    assert "86401 s behind stream time" in rej.message
    assert "limit 86400 s" in rej.message


def test_stream_time_is_the_latest_accepted_time_not_the_last():
    dec = ReadingDecoder()
    dec.decode(payload(ts=T0 + 10))
    dec.decode(payload(ts=T0))  # late but acceptable
    assert dec.stream_time == T0 + 10


def test_stream_time_does_not_move_on_rejected_readings():
    dec = ReadingDecoder()
    dec.decode(payload(ts=T0))
    dec.decode(payload(ts=T0 + 60, values={"temp": math.nan}))
    dec.decode(payload(ts=T0 + 60, asset=""))
    assert dec.stream_time == T0


def test_counters_count_accepted_readings_and_rejections_by_reason():
    dec = ReadingDecoder()
    dec.decode_many([payload(), payload(), b"{", b"[]", payload(values={"t": math.nan})])
    counters = dec.counters()
    assert counters["accepted"] == 2
    nonzero = {k: v for k, v in counters["rejected"].items() if v}
    assert nonzero == {"invalid_json": 1, "not_an_object": 1, "non_finite": 1}


def test_decode_many_splits_a_batch_in_order_keeping_sources():
    s1, s2 = SourceRef("t", 0, 1), SourceRef("t", 0, 2)
    readings, rejections = ReadingDecoder().decode_many(
        [(payload(ts=T0), s1), b"nope", (payload(ts=T0 + 1), s2)]
    )
    assert [(r.ts, r.source) for r in readings] == [(T0, s1), (T0 + 1, s2)]
    assert [r.raw for r in rejections] == [b"nope"]


STREAM = [
    payload(ts=T0),
    payload(ts=T0 + 5, values={"temp": math.nan}),
    payload(ts=T0 + 10),
    payload(ts=T0 + 100_000),
    payload(ts=T0 - 40 * 86400),
    payload(ts=T0 + 3000),
    b"garbage",
    payload(ts=T0 + 6000),
    payload(ts=T0 + 6000 + 3601),
]


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_snapshot_restore_continues_exactly_like_the_uncut_decoder(cut):
    uncut = ReadingDecoder()
    expected = [uncut.decode(raw) for raw in STREAM]

    first = ReadingDecoder()
    got = [first.decode(raw) for raw in STREAM[:cut]]
    state = json.loads(json.dumps(first.snapshot(), allow_nan=False))
    second = ReadingDecoder.restore(None, state)
    got += [second.decode(raw) for raw in STREAM[cut:]]

    assert got == expected
    assert second.snapshot() == uncut.snapshot()


def test_snapshot_restore_keeps_stream_time():
    dec = ReadingDecoder()
    dec.decode(payload(ts=T0))
    assert ReadingDecoder.restore(None, dec.snapshot()).stream_time == T0


def test_restore_refuses_a_snapshot_it_does_not_know():
    with pytest.raises(ConfigError, match="snapshot format"):
        ReadingDecoder.restore(None, {"stream_time": T0})


# ---------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"asset_field": ""}, "asset_field"),
        ({"ts_field": "asset"}, "asset_field"),
        ({"ts_unit": "us"}, "ts_unit"),
        ({"assets": ()}, "assets"),
        ({"channels": ("temp", "")}, "channels"),
        ({"unknown_channels": "ignore"}, "unknown_channels"),
        ({"max_payload_bytes": 0}, "max_payload_bytes"),
        ({"max_abs_value": math.inf}, "max_abs_value"),
        ({"max_future_s": -1.0}, "max_future_s"),
        ({"min_ts": 5.0, "max_ts": 1.0}, "min_ts"),
        ({"numeric_strings": 1}, "numeric_strings"),
    ],
)
def test_reading_config_errors_name_the_bad_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"ReadingConfig\.{field}:"):
        ReadingConfig(**kwargs)


def test_reading_config_round_trips_through_a_dict():
    cfg = ReadingConfig(assets=("a", "b"), channels=("temp",), ts_unit="ms")
    assert ReadingConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


# ---------------------------------------------------------------------- encoding


def test_encode_then_decode_gives_the_reading_back():
    r = Reading("pump-7", T0 + 0.125, {"temp": 71.2, "vib": -0.0, "rpm": 1500.0})
    assert reading(encode_reading(r)) == r


def test_encode_uses_the_configured_field_names():
    cfg = ReadingConfig(asset_field="device", ts_field="time", values_field="metrics")
    raw = encode_reading(Reading("d1", T0, {"temp": 1.0}), cfg)
    assert set(json.loads(raw)) == {"device", "time", "metrics"}
    assert reading(raw, cfg) == Reading("d1", T0, {"temp": 1.0})


def test_encode_refuses_non_finite_values():
    with pytest.raises(InputError, match="non-finite"):
        encode_reading(Reading("pump-7", T0, {"temp": math.nan}))


# ---------------------------------------------------------------------- properties


def _never_raises(raw: bytes, config: ReadingConfig | None = None) -> Reading | Rejection:
    out = ReadingDecoder(config).decode(raw, SRC)
    assert type(out) in (Reading, Rejection)
    if isinstance(out, Rejection):
        assert out.raw == raw
        assert out.source == SRC
        assert isinstance(out.reason, RejectReason)
        assert not out.message.startswith("internal error"), out.message
    else:
        assert out.values
        assert all(type(v) is float and math.isfinite(v) for v in out.values.values())
    return out


def _mutated(raw: bytes) -> st.SearchStrategy[bytes]:
    """A valid payload with a random slice replaced by random bytes: reaches the deep checks."""
    return st.tuples(st.integers(0, len(raw)), st.integers(0, 8), st.binary(max_size=12)).map(
        lambda t: raw[: t[0]] + t[2] + raw[t[0] + t[1] :]
    )


@PROPERTY
@given(st.one_of(st.binary(max_size=300), _mutated(payload()), _mutated(single())))
def test_arbitrary_bytes_never_raise_and_rejections_keep_the_raw_bytes(raw):
    _never_raises(raw)


KEYS = st.one_of(st.sampled_from(["asset", "ts", "values", "channel", "value", "temp"]), st.text())
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(),  # NaN and ±inf included: Python's json writes and reads them
    st.text(),
    st.sampled_from(["2023-11-14T22:13:20Z", "2023-11-14T22:13:20", "pump-7", "\ud800"]),
    st.sampled_from([T0, T0 * 1000, 1e400, 1e13]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=30,
)


def _json_text(value: Any) -> bytes:
    try:
        return json.dumps(value).encode("utf-8", "surrogatepass")
    except ValueError:  # an int beyond the digit limit: write the digits by hand
        return b"9" * 5000


@PROPERTY
@given(
    st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries(
            {"asset": JSON_VALUES, "ts": JSON_VALUES, "values": JSON_VALUES},
            optional={"channel": JSON_VALUES, "value": JSON_VALUES},
        ),
        st.fixed_dictionaries(
            {
                "asset": st.sampled_from(["pump-7", "", "\ud800"]),
                "ts": st.one_of(st.just(T0), JSON_SCALARS),
                "values": st.dictionaries(KEYS, JSON_VALUES, max_size=6),
            }
        ),
    )
)
def test_arbitrary_json_values_never_raise(value):
    _never_raises(_json_text(value))
    _never_raises(_json_text(value), ReadingConfig(channels=("temp",), unknown_channels="drop"))


@PROPERTY
@given(
    depth=st.integers(1, 20_000),
    opener=st.sampled_from([b"[", b'{"a":', b'{"asset":"p","ts":1.7e9,"values":{"x":']),
)
def test_nesting_of_any_depth_never_raises(depth, opener):
    closer = b"]" if opener == b"[" else b"}"
    raw = opener * depth + b"1" + closer * depth
    out = _never_raises(raw, ReadingConfig(max_payload_bytes=1_000_000))
    if depth > 5000:
        assert isinstance(out, Rejection)
        assert out.reason is RejectReason.TOO_DEEP


WS = st.text(alphabet=" \t\r\n", max_size=3)


@PROPERTY
@given(
    st.tuples(
        WS, st.one_of(st.text(max_size=30), JSON_VALUES.map(json.dumps)), WS, st.text(max_size=3)
    )
)
def test_decoder_accepts_exactly_the_json_that_json_loads_accepts(parts):
    text = "".join(parts)
    try:
        json.loads(text)
        valid = True
    except (json.JSONDecodeError, RecursionError):
        valid = False
    except ValueError:  # the digit limit, reported as an absurd value
        return
    out = _never_raises(text.encode("utf-8", "surrogatepass"))
    is_json_error = isinstance(out, Rejection) and out.reason in (
        RejectReason.INVALID_JSON,
        RejectReason.INVALID_UTF8,
    )
    assert is_json_error != valid


CHANNEL_NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12
)
FINITE = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
READINGS = st.builds(
    Reading,
    asset=CHANNEL_NAMES,
    ts=st.floats(min_value=946684800.0, max_value=4102444800.0),
    values=st.dictionaries(CHANNEL_NAMES, FINITE, min_size=1, max_size=8),
)


@PROPERTY
@given(READINGS, st.sampled_from([None, ReadingConfig(asset_field="a", values_field="v")]))
def test_valid_readings_round_trip_through_encode_and_decode(r, config):
    assert ReadingDecoder(config).decode(encode_reading(r, config)) == r
