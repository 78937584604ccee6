"""Fuzzing the decoders: the reading decoder (Kafka payload bytes → Reading/Rejection) and the
alert decoder (CloudEvent JSON → AlertEvent), with hypothesis.

Why: the reading decoder is the one piece of code every byte on the sensor topic passes, and
its contract is that it *never raises* on input (one poison message must not stop a
partition); the alert decoder's contract is that it returns an AlertEvent or raises
:class:`~streamvae.InputError` naming what is wrong. A fuzz run checks the contracts on inputs
nobody thought of, plus the invariants of what gets through:

- ``ReadingDecoder.decode`` returns a Reading or a Rejection for any bytes (and for None,
  bytearray, memoryview), under random valid :class:`~streamvae.ReadingConfig` s;
- no Rejection says "internal error in the decoder" (the decoder turns its own exceptions into
  rejections so the stream goes on; for the fuzz, that is an uncaught exception);
- a Rejection keeps the original bytes; a Reading has a non-empty UTF-8-safe asset within the
  length limit, a finite time within ``min_ts``..``max_ts``, and
  finite values within ``max_abs_value`` on allowed channels only, a time within
  ``max_past_s``/``max_future_s`` of its asset's stream time; it survives
  ``encode_reading`` → ``decode`` unchanged;
- ``accepted + sum(rejected)`` equals the calls made, and the stream time never goes back;
- ``AlertEvent.from_cloudevent`` on mutated alert documents returns an event or raises
  InputError, nothing else.

``trials`` is **seconds** of fuzzing (split evenly over the targets, run in rounds of a few
hundred examples with a fresh seed each round, so a long run keeps exploring instead of
repeating one seed); the full campaign gives it 600+ s, CI a few seconds. The figures count the
examples run. Hypothesis shrinks a failure to a minimal input before it is reported.

Example::

    result = fuzz.run(Context(bootstrap="unused:9092", workdir=Path("/tmp/fz")), trials=5)
    print(result.row())
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

import streamvae as sv
from benchmarks.chaos.common import Context, ScenarioResult

__all__ = [
    "alert_documents",
    "check_alert_document",
    "check_payloads",
    "decoder_configs",
    "payloads",
    "run",
]

CHANNELS = ("temperature", "pressure", "vibration", "current", "flow", "speed")
VALID = b'{"asset":"pump-0","ts":1700000000.0,"values":{"temperature":71.2,"pressure":3.1}}'
SINGLE = b'{"asset":"pump-0","ts":"2023-11-14T22:13:20Z","channel":"flow","value":12}'

# ---------------------------------------------------------------------------- strategies

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e13, max_value=1e13),
    st.text(max_size=40),
    st.sampled_from(["", "NaN", "1e400", "2023-11-14T22:13:20Z", "2023-11-14T22:13:20", "71.2"]),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_names = st.one_of(st.sampled_from(CHANNELS), st.text(max_size=12), st.just(""))
_times = st.one_of(
    st.floats(min_value=9e8, max_value=4.2e9),
    st.floats(min_value=9e11, max_value=4.2e12),  # milliseconds
    st.integers(min_value=1_699_990_000, max_value=1_700_010_000),
    st.just(1_700_000_000.0),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.isoformat()),
    _scalars,
)


@st.composite
def _shaped(draw: st.DrawFn) -> bytes:
    """A JSON object that looks like a reading: the right keys, values of any kind."""
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["asset"] = draw(st.one_of(st.sampled_from(["pump-0", "pump-1"]), _json_values))
    if draw(st.integers(0, 9)):
        doc["ts"] = draw(_times)
    if draw(st.booleans()):
        doc["values"] = draw(
            st.one_of(
                st.dictionaries(_names, st.one_of(st.floats(-100, 100), _scalars), max_size=6),
                _json_values,
            )
        )
    else:
        if draw(st.integers(0, 9)):
            doc["channel"] = draw(st.one_of(_names, _json_values))
        if draw(st.integers(0, 9)):
            doc["value"] = draw(st.one_of(st.floats(-100, 100), _scalars))
    for key, value in draw(st.dictionaries(st.text(max_size=6), _json_values, max_size=2)).items():
        doc.setdefault(key, value)
    text = json.dumps(doc, allow_nan=True, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 7)) == 0:  # a lone surrogate escape somewhere in a string
        text = text.replace('"pump-', '"\\udc80pump-', 1)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A valid payload with bytes flipped, inserted, deleted or the tail cut off."""
    data = bytearray(draw(st.sampled_from([VALID, SINGLE])))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == 2 and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data = data[:pos]
    return bytes(data)


@st.composite
def _numbers(draw: st.DrawFn) -> bytes:
    """Number literals JSON allows (and some it does not) where a value or a time goes."""
    digits = draw(st.integers(1, 5000))
    literal = draw(
        st.one_of(
            st.just("9" * digits),
            st.just("1e" + str(draw(st.integers(-400, 400)))),
            st.sampled_from(["NaN", "Infinity", "-Infinity", "-0", "0.0e0", "1E+2", "01", ".5"]),
            st.from_regex(r"\A-?[0-9]{1,30}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,4})?\Z"),
        )
    )
    where = draw(st.sampled_from(["value", "ts"]))
    if where == "ts":
        return b'{"asset":"a","ts":%s,"values":{"x":1}}' % literal.encode()
    return b'{"asset":"a","ts":1700000000,"values":{"x":%s}}' % literal.encode()


@st.composite
def _nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 40_000))
    o, c = draw(st.sampled_from([("[", "]"), ('{"k":', "}")]))
    inner = (o * depth + "1" + c * draw(st.integers(0, depth))).encode()
    return b'{"asset":"a","ts":1700000000,"values":%s}' % inner


payloads: st.SearchStrategy[Any] = st.one_of(
    st.binary(max_size=512),
    _shaped(),
    _mutated(),
    _numbers(),
    _nested(),
    st.sampled_from([None, b"", b" ", b"{}", b"[]", b"null", b"\xef\xbb\xbf{}"]),
    st.tuples(st.integers(65_530, 65_540), st.sampled_from([b"{", b"\xff", b" "])).map(
        lambda t: t[1] * t[0]
    ),  # around the default 64 KiB limit (cheap to draw, unlike 64 KiB of st.binary)
    _shaped().map(bytearray),
    _shaped().map(memoryview),
)
"""Anything a Kafka record value can be (None is a tombstone), biased towards near-misses."""


def _fits(cfg: dict[str, Any]) -> bool:
    """Allowed names within their length limits (ReadingConfig refuses the rest)."""
    return all(len(a) <= cfg["max_asset_length"] for a in cfg["assets"] or ()) and all(
        len(c) <= cfg["max_channel_length"] for c in cfg["channels"] or ()
    )


decoder_configs: st.SearchStrategy[sv.ReadingConfig] = (
    st.fixed_dictionaries(
        {
            "ts_unit": st.sampled_from(["auto", "s", "ms"]),
            "assets": st.one_of(st.none(), st.just(("pump-0", "a"))),
            "channels": st.one_of(st.none(), st.just(CHANNELS), st.just(("x", "temperature"))),
            "unknown_channels": st.sampled_from(["reject", "drop"]),
            "max_payload_bytes": st.sampled_from([65536, 512, 100_000]),
            "max_abs_value": st.sampled_from([1e12, 100.0, 1e300]),
            "max_future_s": st.sampled_from([3600.0, 0.0, 1e9]),
            "max_past_s": st.sampled_from([30 * 86400.0, 0.0]),
            "max_asset_length": st.sampled_from([256, 3]),
            "max_channel_length": st.sampled_from([256, 4]),
            "bool_values": st.booleans(),
            "numeric_strings": st.booleans(),
        }
    )
    .filter(_fits)
    .map(lambda kw: sv.ReadingConfig(**kw))
)


# ---------------------------------------------------------------------------- oracles


def check_payloads(config: sv.ReadingConfig, raws: list[Any]) -> None:
    """Decode ``raws`` in order with one decoder; raise AssertionError on any broken rule."""
    dec = sv.ReadingDecoder(config)
    before: float | None = None
    asset_times: dict[str, float] = {}  # each asset's latest accepted time: its stream time
    for raw in raws:
        out = dec.decode(raw)  # an exception here is the fuzz finding
        if isinstance(out, sv.Rejection):
            assert "internal error" not in out.message, out.message
            expect = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else b""
            assert out.raw == expect, "a Rejection must carry the original bytes"
            assert isinstance(out.reason, sv.RejectReason)
        else:
            assert type(out) is sv.Reading, f"decode returned {type(out).__name__}"
            _check_reading(config, out, asset_times.get(out.asset))
            asset_times[out.asset] = max(out.ts, asset_times.get(out.asset, out.ts))
            again = sv.ReadingDecoder(config).decode(sv.encode_reading(out, config))
            assert isinstance(again, sv.Reading), f"re-encoded reading refused: {again}"
            assert again.asset == out.asset
            assert again.values == out.values
            assert math.isclose(again.ts, out.ts, rel_tol=1e-12, abs_tol=1e-6)
        st_now = dec.stream_time
        assert before is None or (st_now is not None and st_now >= before), "stream time fell"
        before = st_now
    assert dec.accepted + sum(dec.rejected.values()) == len(raws), "counters do not add up"


def _check_reading(config: sv.ReadingConfig, r: sv.Reading, stream: float | None) -> None:
    assert type(r.asset) is str
    assert 0 < len(r.asset) <= config.max_asset_length
    r.asset.encode("utf-8")  # raises on unpaired surrogates
    if config.assets is not None:
        assert r.asset in config.assets
    assert type(r.ts) is float
    assert math.isfinite(r.ts)
    assert config.min_ts <= r.ts <= config.max_ts
    if stream is not None:
        assert stream - config.max_past_s <= r.ts <= stream + config.max_future_s
    assert r.values, "a Reading without values"
    for name, v in r.values.items():
        assert type(name) is str
        assert 0 < len(name) <= config.max_channel_length
        name.encode("utf-8")
        if config.channels is not None:
            assert name in config.channels
        assert type(v) is float
        assert math.isfinite(v)
        assert abs(v) <= config.max_abs_value


def _alert() -> dict[str, Any]:
    e = sv.AlertEvent(
        "firing",
        "plant-1",
        "pump-7",
        "critical",
        "pump-7 anomalous",
        1_700_000_000.0,
        None,
        9.7,
        4.1,
        {"vib": 0.8, "temp": 0.2},
        1_699_990_700.0,
        1_700_000_000.0,
        "v0001",
    )
    return e.to_cloudevent()


@st.composite
def alert_documents(draw: st.DrawFn) -> Any:
    """A valid alert CloudEvent with a few fields removed or replaced by arbitrary JSON, or
    arbitrary JSON altogether."""
    if draw(st.integers(0, 9)) == 0:
        return draw(_json_values)
    doc = _alert()
    for _ in range(draw(st.integers(1, 4))):
        node: Any = doc
        path = draw(
            st.sampled_from(
                [
                    (),
                    ("data",),
                    ("data", "details"),
                    ("data", "labels"),
                    ("data", "details", "window"),
                    ("data", "details", "contributions"),
                ]
            )
        )
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not node:
            continue
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(
                st.one_of(
                    _json_values,
                    st.integers(min_value=10**300, max_value=10**400),
                    st.sampled_from([float("inf"), float("nan"), "2023-11-14T22:13:20", "Z"]),
                )
            )
    return doc


def check_alert_document(doc: Any) -> None:
    """``from_cloudevent`` returns an AlertEvent or raises InputError; nothing else escapes."""
    try:
        event = sv.AlertEvent.from_cloudevent(doc)
    except sv.InputError:
        return
    assert isinstance(event, sv.AlertEvent)


# ---------------------------------------------------------------------------- the run


def _round(
    target: Callable[..., None], strategy: st.SearchStrategy[Any], n: int, s: int
) -> Callable[[], None]:
    @seed(s)
    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.target, Phase.shrink],
    )
    @given(strategy)
    def test(args: Any) -> None:
        target(*args) if isinstance(args, tuple) else target(args)

    return test


def run(ctx: Context, trials: int) -> ScenarioResult:
    """Fuzz both decoders for ``trials`` seconds; the broker in ``ctx`` is not used."""
    if trials < 1:
        raise ValueError(f"fuzz.run: trials is seconds of fuzzing, >= 1, got {trials}")
    rng = random.Random(ctx.seed)
    targets: list[tuple[str, Callable[..., None], st.SearchStrategy[Any], int]] = [
        (
            "reading decoder",
            check_payloads,
            st.tuples(decoder_configs, st.lists(payloads, min_size=1, max_size=8)),
            100,
        ),
        ("alert decoder", check_alert_document, alert_documents(), 200),
    ]
    counts: dict[str, int] = {}
    failures: list[str] = []
    started = time.monotonic()
    for name, target, strategy, per_round in targets:
        counted = {"n": 0}

        def counting(*args: Any, _t: Callable[..., None] = target, _c: dict[str, int] = counted):
            _c["n"] += 1
            _t(*args)

        share_end = started + trials * (len(counts) + 1) / len(targets)
        rounds = 0
        while time.monotonic() < share_end and not any(f.startswith(name) for f in failures):
            try:
                _round(counting, strategy, per_round, rng.randrange(2**32))()
            except Exception as exc:  # a shrunk counterexample: the finding
                tail = "".join(traceback.format_exception_only(exc)).strip()
                failures.append(f"{name}: {tail[-2000:]}")
            rounds += 1
            if rounds % 20 == 0:
                print(
                    f"fuzz: {name}: {counted['n']} examples, "
                    f"{time.monotonic() - started:.0f}/{trials} s",
                    file=sys.stderr,
                    flush=True,
                )
        counts[name] = counted["n"]
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    summary = ", ".join(f"{k}: {v} examples" for k, v in counts.items())
    return ScenarioResult(
        "fuzz decoders",
        trials=trials,
        passed=trials if not failures else 0,
        ok=not failures,
        result=(f"0 uncaught exceptions in {elapsed:.0f} s ({summary})")
        if not failures
        else "; ".join(f[:300] for f in failures),
        figures={
            "seconds": round(elapsed, 1),
            "examples": total,
            "examples_per_s": round(total / max(elapsed, 1e-9), 1),
            **{f"{k.replace(' ', '_')}_examples": v for k, v in counts.items()},
            "failures": failures,
        },
    )
