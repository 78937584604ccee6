"""Bad input: hostile payloads mixed into a valid stream, through a real ``streamvae run``.

Why: DESIGN §5 promises that bad input never stops the stream — every undecodable, invalid or
absurd record goes to the dead-letter topic with its original bytes, and every valid reading
is still scored. This scenario checks the promise end to end on the real broker, with a real
service process, against an oracle that does not ask the service what it did.

What counts as bad (the rule the oracle follows). A record is *bad* exactly when the reading
decoder (``streamvae/serde.py``, the configured ``[readings]`` rules) must refuse it: it is not
UTF-8 JSON, not an object, nests too deeply, is larger than ``max_payload_bytes``, misses or
mistypes a field, carries NaN/inf or ``|value| > max_abs_value``, or has a timestamp outside
2000..2100, more than ``max_future_s`` (1 h) ahead of or ``max_past_s`` (30 days) behind the
asset's stream time (its latest accepted event time; an asset's first reading is checked
against the absolute bounds only). Each generated bad payload carries the set of reason codes the
decoder may give it, and its DLQ record must carry one of them. A *well-formed* reading is
valid even when it is useless: an exact duplicate of an earlier reading, a stale reading
(behind its asset's watermark but within 30 days), a reading of an asset nobody knows (also
one whose first reading is decades ahead), readings of an asset whose clock gains 3599 s per
reading (each within 1 h of its own last one: over the run it walks days ahead). The
windowing drops or ignores those (late/duplicate buckets, one-reading assets); they must not
reach the DLQ and must not change a single score. The generator never makes readings within
the 1 h future tolerance (they are valid by the rule but would move an asset's watermark),
and never inserts anything before each asset's first valid reading (an asset's first reading
is checked against the absolute 2000..2100 bounds only, so a year-2096 first reading is valid
and only spoils that asset's own windows).

The oracle:

- every bad record, and nothing else, is in the DLQ: same key, same value bytes, the
  ``__connect.errors.{topic,partition,offset}`` headers naming the original record, a reason
  header in the payload's allowed set, and no "internal error in the decoder" message (the
  decoder turns its own bugs into rejections; those count as crashes here);
- the service's scores (``kafka.scores_topic``) are exactly those of a local
  :class:`~streamvae.Detector` built from the same artefact and fed only the valid plant
  stream: same (asset, window end) pairs, same scores to 1e-4;
- the process stays up (same pid throughout), logs no traceback, and exits 0 on SIGTERM;
  ``streamvae_records_processed_total`` counts every record and
  ``streamvae_dlq_records_total`` every bad one.

``trials`` is the number of hostile payloads (bad and well-formed-but-useless together); the
full campaign runs 100,000, the default suite a few thousand.

Example::

    result = bad_input.run(Context(bootstrap="127.0.0.1:9092", workdir=Path("/tmp/bi")), 3000)
    print(result.row())
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

import streamvae as sv
from benchmarks.chaos.common import Context, ScenarioResult
from tests.integration import harness as h

__all__ = ["Hostile", "generate", "quick_model", "run", "service_config"]

DAY = 86400.0
ALL_REASONS = frozenset(r.value for r in sv.RejectReason)
# A reading at step index >= FIRST_STEP: every asset has a watermark and every partition a
# stream time before the first hostile record arrives.
FIRST_STEP = 1


# ---------------------------------------------------------------------------- shared kit


def quick_model(workdir: Path) -> Path:
    """A model for the harness plant's settings, trained in seconds (3 epochs on 100 steps of
    each pump), cached as ``workdir/model.safetensors``. Its quality does not matter to the
    reliability scenarios: they compare the service with itself or with a local Detector.

    Used when ``Context.model`` is None; a given model is used as it is.
    """
    path = workdir / "model.safetensors"
    if path.exists():
        return path
    base = h.detector_config()
    cfg = dataclasses.replace(
        base,
        train=sv.TrainConfig(epochs=3),
        warmup_windows=200,
        warmup_span_s=0.0,
        asset_warmup_windows=8,
        train_stride=1,
    )
    streams = [
        sv.testing.series_readings(h.plant_series(a), a, h.T0, h.PERIOD)[:100] for a in h.ASSETS
    ]
    detector = sv.Detector(cfg)
    detector.process(sv.testing.interleave(*streams))
    detector.flush()
    if not detector.ready:
        raise RuntimeError("quick_model: the detector did not train on 100 steps per pump")
    data, _ = detector.export_model()
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def fresh_topics(ctx: Context, tag: str) -> h.Topics:
    """New sensor (three partitions), alert, DLQ and state topics and a group of our own."""
    u = f"{tag}-{uuid.uuid4().hex[:8]}"
    names = h.Topics(f"sensors-{u}", f"alerts-{u}", f"dlq-{u}", f"state-{u}", f"group-{u}")
    admin = KafkaAdminClient(bootstrap_servers=ctx.bootstrap, client_id="streamvae-chaos")
    try:
        admin.create_topics([NewTopic(names.sensors, h.PARTITIONS, 1)])
        admin.wait_for_topics([names.sensors], timeout_ms=10_000)
    finally:
        admin.close()
    return names


def service_config(
    path: Path,
    ctx: Context,
    topics: h.Topics,
    model: Path | None,
    kafka: dict[str, Any] | None = None,
    **run: Any,
) -> Path:
    """The harness's service settings plus extra ``[kafka]`` keys (e.g. ``scores_topic``)."""
    h.write_config(path, ctx.bootstrap, topics, model, **run)
    if kafka:
        extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in kafka.items())
        path.write_text(path.read_text().replace("[kafka]\n", "[kafka]\n" + extra, 1))
    return path


def produce_with_offsets(
    bootstrap: str, topic: str, messages: Sequence[tuple[int, bytes | None, bytes | None]]
) -> list[int]:
    """Send (partition, key, value) in order; returns each record's offset in its partition."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_request_size=4 * 1024 * 1024
    )
    try:
        futures = [producer.send(topic, key=k, value=v, partition=p) for p, k, v in messages]
        producer.flush(timeout=300)
        return [int(f.get(timeout=60).offset) for f in futures]
    finally:
        producer.close(timeout=10)


def log_problems(text: str) -> list[str]:
    """Lines of a service log that show a crash or a swallowed bug."""
    needles = ("Traceback", "the service stops on an error", "internal error in the decoder")
    return [line for line in text.splitlines() if any(n in line for n in needles)]


# ---------------------------------------------------------------------------- generators


@dataclasses.dataclass(frozen=True)
class Hostile:
    """One generated payload: its kind, key and bytes, and the DLQ reasons it may get
    (empty: it is a valid reading and must not reach the DLQ).

    Example::

        Hostile("truncated", b"pump-0", b'{"asset":"pu', frozenset({"invalid_json"}))
    """

    kind: str
    key: bytes | None
    value: bytes | None
    reasons: frozenset[str]

    @property
    def bad(self) -> bool:
        return bool(self.reasons)


@dataclasses.dataclass(frozen=True)
class _Spot:
    """Where a hostile payload goes: an asset's partition after its reading at ``ts``."""

    asset: str
    ts: float  # event time of the asset's latest valid reading, epoch s
    previous: bytes  # that reading's payload
    rng: random.Random
    state: dict[str, float]  # what stateful kinds remember between payloads


def _r(*reasons: str) -> frozenset[str]:
    assert set(reasons) <= ALL_REASONS, reasons
    return frozenset(reasons)


def _doc(s: _Spot, **override: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(s.previous)
    doc.update(override)
    return doc


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _truncated(s: _Spot) -> Hostile:
    cut = s.rng.randrange(0, len(s.previous))
    return Hostile("truncated", s.asset.encode(), s.previous[:cut], _r("invalid_json"))


def _empty(s: _Spot) -> Hostile:
    value = s.rng.choice([b"", b" ", b"\n\t ", b"\x00"])
    return Hostile("empty", s.asset.encode(), value, _r("invalid_json"))


def _tombstone(s: _Spot) -> Hostile:
    return Hostile("tombstone", s.asset.encode(), None, _r("invalid_json"))


def _binary(s: _Spot) -> Hostile:
    value = s.rng.randbytes(s.rng.randrange(1, 512))
    key = s.rng.choice([None, s.rng.randbytes(8), s.asset.encode()])
    # random bytes are now and then valid UTF-8 JSON too: b"7" is a number, b"{}" an object
    allowed = _r("invalid_utf8", "invalid_json", "not_an_object", "missing_field")
    return Hostile("binary", key, value, allowed)


def _bad_utf8(s: _Spot) -> Hostile:
    junk = s.rng.choice([b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80"])
    raw = s.previous.replace(s.asset.encode(), s.asset.encode() + junk, 1)
    return Hostile("invalid_utf8", s.asset.encode(), raw, _r("invalid_utf8"))


def _surrogate(s: _Spot) -> Hostile:
    if s.rng.random() < 0.5:
        raw = _dump(_doc(s)).replace(s.asset.encode(), s.asset.encode() + b"\\ud800", 1)
        return Hostile("lone_surrogate", s.asset.encode(), raw, _r("bad_asset"))
    raw = _dump(_doc(s, values={"temp\\udfff": 1.0})).replace(b"\\\\", b"\\")
    return Hostile("lone_surrogate", s.asset.encode(), raw, _r("unknown_channel"))


def _deep(s: _Spot) -> Hostile:
    depth = s.rng.choice([2_000, 5_000, 20_000, s.rng.randrange(1_100, 30_000)])
    opener, closer = s.rng.choice([("[", "]"), ('{"a":', "}")])
    nested = opener * depth + "1" + closer * depth
    where = s.rng.choice(["values", "ts", "top", "asset"])
    if where == "top":
        raw = nested.encode()
    else:
        raw = _dump(_doc(s, **{where: "@@"})).replace(b'"@@"', nested.encode())
    return Hostile("deep_nesting", s.asset.encode(), raw, _r("too_deep", "oversized"))


def _huge_number(s: _Spot) -> Hostile:
    channel = s.rng.choice(list(_doc(s)["values"]))
    text = s.rng.choice(
        [
            "1e400",
            "-1e400",
            "1e300",
            "-7e15",
            "1" * s.rng.randrange(400, 4000),
            "9" * s.rng.randrange(4400, 20000),
            "123456789012345678901234567890",
        ]
    )
    raw = _dump(_doc(s)).replace(f'"{channel}":'.encode(), f'"{channel}":{text},"_x":'.encode())
    return Hostile("huge_number", s.asset.encode(), raw, _r("absurd_value", "non_finite"))


def _huge_ts(s: _Spot) -> Hostile:
    text = s.rng.choice(["1e400", "9" * s.rng.randrange(30, 5000), "-1e30", "1e19"])
    raw = _dump(_doc(s, ts="@@")).replace(b'"@@"', text.encode())
    return Hostile(
        "huge_timestamp",
        s.asset.encode(),
        raw,
        _r("timestamp_out_of_range", "bad_timestamp", "absurd_value"),
    )


def _huge_string(s: _Spot) -> Hostile:
    n = s.rng.choice([300, 1_000, 40_000, 70_000, 200_000])
    big = "x" * n
    field = s.rng.choice(["asset", "channel", "value", "ts"])
    if field == "asset":
        doc = _doc(s, asset=big)
        allowed = _r("bad_asset", "oversized")
    elif field == "channel":
        doc = _doc(s, values={big: 1.0})
        allowed = _r("unknown_channel", "oversized")
    elif field == "value":
        doc = _doc(s, values={"temperature": big})
        allowed = _r("not_a_number", "oversized")
    else:
        doc = _doc(s, ts=big)
        allowed = _r("bad_timestamp", "oversized")
    return Hostile("huge_string", s.asset.encode(), _dump(doc), allowed)


def _oversized(s: _Spot) -> Hostile:
    pad = "p" * s.rng.randrange(65_536, 80_000)
    return Hostile("oversized", s.asset.encode(), _dump(_doc(s, pad=pad)), _r("oversized"))


_WRONG_TYPES: list[tuple[dict[str, Any], frozenset[str]]] = [
    ({"asset": 123}, _r("bad_asset")),
    ({"asset": None}, _r("bad_asset")),
    ({"asset": ""}, _r("bad_asset")),
    ({"asset": ["pump-0"]}, _r("bad_asset")),
    ({"asset": {"id": "pump-0"}}, _r("bad_asset")),
    ({"ts": "yesterday"}, _r("bad_timestamp")),
    ({"ts": True}, _r("bad_timestamp")),
    ({"ts": None}, _r("bad_timestamp")),
    ({"ts": [1700000000]}, _r("bad_timestamp")),
    ({"ts": "1700000000"}, _r("bad_timestamp")),
    ({"ts": "2023-11-14T22:13:20"}, _r("bad_timestamp")),  # naive: no zone
    ({"values": [1.0, 2.0]}, _r("not_an_object")),
    ({"values": "temperature=1"}, _r("not_an_object")),
    ({"values": {}}, _r("no_values")),
    ({"values": None}, _r("not_an_object")),
    ({"values": {"temperature": "71.2"}}, _r("not_a_number")),
    ({"values": {"temperature": True}}, _r("not_a_number")),
    ({"values": {"temperature": None}}, _r("not_a_number")),
    ({"values": {"temperature": [1.0]}}, _r("not_a_number")),
    ({"values": {"temperature": {"v": 1.0}}}, _r("not_a_number")),
    ({"values": {"": 1.0}}, _r("unknown_channel")),
]


def _wrong_type(s: _Spot) -> Hostile:
    override, allowed = s.rng.choice(_WRONG_TYPES)
    return Hostile("wrong_type", s.asset.encode(), _dump(_doc(s, **override)), allowed)


def _non_finite(s: _Spot) -> Hostile:
    literal = s.rng.choice(["NaN", "Infinity", "-Infinity"])
    if s.rng.random() < 0.25:
        raw = _dump(_doc(s, ts="@@")).replace(b'"@@"', literal.encode())
        return Hostile("nan_inf", s.asset.encode(), raw, _r("bad_timestamp"))
    doc = _doc(s)
    channel = s.rng.choice(list(doc["values"]))
    doc["values"][channel] = "@@"
    raw = _dump(doc).replace(b'"@@"', literal.encode())
    return Hostile("nan_inf", s.asset.encode(), raw, _r("non_finite"))


def _far_future(s: _Spot) -> Hostile:
    ahead = s.rng.choice([2 * DAY, 30 * DAY, 365 * DAY, 20 * 365 * DAY, 200 * 365 * DAY])
    ts = s.ts + ahead * (1 + s.rng.random())
    form = s.rng.choice(["s", "ms", "iso"])
    value: Any = ts if form == "s" else ts * 1000 if form == "ms" else None
    if form == "iso":
        value = _iso(ts) if ts < 253402300799 else "9999-12-31T23:59:59Z"
    doc = _doc(s, ts=value)
    return Hostile("far_future_ts", s.asset.encode(), _dump(doc), _r("timestamp_out_of_range"))


def _far_past(s: _Spot) -> Hostile:
    ts = s.rng.choice([0.0, 1.0, 946684799.0, s.ts - 31 * DAY, s.ts - 400 * DAY, -5e10])
    return Hostile(
        "far_past_ts", s.asset.encode(), _dump(_doc(s, ts=ts)), _r("timestamp_out_of_range")
    )


_WRONG_KEYS: list[tuple[Callable[[dict[str, Any]], dict[str, Any]], frozenset[str]]] = [
    (lambda d: {("assett" if k == "asset" else k): v for k, v in d.items()}, _r("missing_field")),
    (lambda d: {("time" if k == "ts" else k): v for k, v in d.items()}, _r("missing_field")),
    (lambda d: {k: v for k, v in d.items() if k != "values"}, _r("missing_field")),
    (lambda d: {("Values" if k == "values" else k): v for k, v in d.items()}, _r("missing_field")),
    (
        lambda d: {**{k: v for k, v in d.items() if k != "values"}, "channel": "temperature"},
        _r("missing_field"),
    ),
    (
        lambda d: {**{k: v for k, v in d.items() if k != "values"}, "value": 1.0},
        _r("missing_field"),
    ),
    (lambda d: {}, _r("missing_field")),
]


def _wrong_keys(s: _Spot) -> Hostile:
    change, allowed = s.rng.choice(_WRONG_KEYS)
    return Hostile("wrong_keys", s.asset.encode(), _dump(change(_doc(s))), allowed)


def _not_object(s: _Spot) -> Hostile:
    raw = s.rng.choice([b"[]", b"42", b'"pump-0"', b"null", b"true", b"[" + s.previous + b"]"])
    return Hostile("not_an_object", s.asset.encode(), raw, _r("not_an_object"))


def _trailing(s: _Spot) -> Hostile:
    junk = s.rng.choice([b"x", b"}", b",", b" {}", s.previous])
    return Hostile("trailing_garbage", s.asset.encode(), s.previous + junk, _r("invalid_json"))


def _duplicate_keys(s: _Spot) -> Hostile:
    # JSON keeps the last of duplicate keys: the last one is the bad one here
    raw = s.previous[:-1] + b',"asset":17}'
    return Hostile("duplicate_keys", s.asset.encode(), raw, _r("bad_asset"))


# well-formed readings the decoder accepts and the windowing drops or ignores


def _duplicate(s: _Spot) -> Hostile:
    return Hostile("duplicate_reading", s.asset.encode(), s.previous, frozenset())


def _stale(s: _Spot) -> Hostile:
    back = h.PERIOD * s.rng.randrange(2, 5000)  # at most ~17 days behind: valid, late
    doc = _doc(s, ts=s.ts - back)
    doc["values"] = {k: s.rng.uniform(-1e6, 1e6) for k in doc["values"]}
    if s.rng.random() < 0.3:
        doc["ts"] = _iso(s.ts - back)
    return Hostile("stale_reading", s.asset.encode(), _dump(doc), frozenset())


def _stranger(s: _Spot) -> Hostile:
    # a new name each time: its first reading, so only the absolute bounds apply to it
    asset = f"stranger-{s.rng.randrange(10**12)}"
    doc = _doc(s, asset=asset, ts=s.ts - h.PERIOD * s.rng.randrange(0, 10))
    return Hostile("unknown_asset_reading", asset.encode(), _dump(doc), frozenset())


def _stranger_from_the_future(s: _Spot) -> Hostile:
    # a new asset whose first reading is decades ahead: valid (first readings meet only the
    # absolute bounds); it must spoil nobody else's readings
    asset = f"future-{s.rng.randrange(10**12)}"
    doc = _doc(s, asset=asset, ts=s.rng.uniform(s.ts + 2 * DAY, 4.0e9))
    return Hostile("future_asset_first_reading", asset.encode(), _dump(doc), frozenset())


def _fast_clock(s: _Spot) -> Hostile:
    # one asset per partition whose clock gains 3599 s per reading: each reading is within
    # max_future_s of its own last one, so valid; over many it runs days ahead of the plant
    asset = f"fast-clock-p{h.partition_of(s.asset)}"
    ts = s.state.get(asset, s.ts) + 3599.0
    if ts >= 4.0e9:
        return _duplicate(s)
    s.state[asset] = ts
    return Hostile(
        "fast_clock_reading", asset.encode(), _dump(_doc(s, asset=asset, ts=ts)), frozenset()
    )


_KINDS: list[tuple[Callable[[_Spot], Hostile], float]] = [
    (_truncated, 10),
    (_empty, 2),
    (_tombstone, 2),
    (_binary, 8),
    (_bad_utf8, 5),
    (_surrogate, 3),
    (_deep, 2),
    (_huge_number, 6),
    (_huge_ts, 3),
    (_huge_string, 2),
    (_oversized, 0.5),
    (_wrong_type, 12),
    (_non_finite, 6),
    (_far_future, 6),
    (_far_past, 4),
    (_wrong_keys, 6),
    (_not_object, 3),
    (_trailing, 4),
    (_duplicate_keys, 2),
    (_duplicate, 6),
    (_stale, 6),
    (_stranger, 2),
    (_stranger_from_the_future, 1),
    (_fast_clock, 3),
]


def generate(
    rng: random.Random,
    asset: str,
    ts: float,
    previous: bytes,
    state: dict[str, float] | None = None,
) -> Hostile:
    """One hostile payload for ``asset``'s partition, after its valid reading at ``ts``
    (whose payload is ``previous``), drawn from the weighted kinds above. ``state`` carries
    what stateful kinds (the fast clock) remember; pass the same dict for one stream.

    Example::

        generate(random.Random(0), "pump-0", 1.7e9, b'{"asset":"pump-0",...}').kind
    """
    makers, weights = zip(*_KINDS, strict=True)
    maker = rng.choices(makers, weights=weights)[0]
    return maker(_Spot(asset, ts, previous, rng, {} if state is None else state))


# ---------------------------------------------------------------------------- the run


@dataclasses.dataclass(frozen=True)
class _Plan:
    messages: list[tuple[int, bytes | None, bytes | None]]
    hostile: dict[int, Hostile]  # index in messages → what it is
    valid: list[sv.Reading]  # the plant stream alone, in order


def _plan(trials: int, steps: int, seed: int) -> _Plan:
    rng = random.Random(seed)
    payloads = {a: h.plant_payloads(a, 0, steps) for a in h.ASSETS}
    valid = [
        r
        for r in sv.testing.interleave(
            *[
                sv.testing.series_readings(h.plant_series(a), a, h.T0, h.PERIOD)[
                    h.TRAIN_STEPS : h.TRAIN_STEPS + steps
                ]
                for a in h.ASSETS
            ]
        )
    ]
    slots = len(h.ASSETS) * (steps - FIRST_STEP)
    per_slot = [0] * slots
    for _ in range(trials):
        per_slot[rng.randrange(slots)] += 1
    messages: list[tuple[int, bytes | None, bytes | None]] = []
    hostile: dict[int, Hostile] = {}
    state: dict[str, float] = {}
    slot = 0
    for step in range(steps):
        for a in h.ASSETS:
            part = h.partition_of(a)
            messages.append((part, a.encode(), payloads[a][step]))
            if step < FIRST_STEP:
                continue
            ts = h.T0 + (h.TRAIN_STEPS + step) * h.PERIOD
            for _ in range(per_slot[slot]):
                item = generate(rng, a, ts, payloads[a][step], state)
                hostile[len(messages)] = item
                messages.append((part, item.key, item.value))
            slot += 1
    return _Plan(messages, hostile, valid)


def _expected_scores(model: Path, valid: list[sv.Reading]) -> dict[tuple[str, float], float]:
    art = sv.load_artefact(model)
    detector = sv.Detector.from_artefact(h.detector_config(), art)
    out: dict[tuple[str, float], float] = {}
    for start in range(0, len(valid), 2000):
        for w in detector.process_detailed(valid[start : start + 2000]).scored:
            out[(w.window.asset, float(w.window.end_ts))] = round(float(w.score), 4)
    return out


def run(ctx: Context, trials: int) -> ScenarioResult:
    """Produce ``trials`` hostile payloads among the plant's readings, run the service over
    them once, and judge DLQ, scores, metrics and the process against the oracle."""
    name = "bad input"
    if trials < 1:
        raise ValueError(f"bad_input.run: trials must be >= 1 payloads, got {trials}")
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    steps = 150 if trials <= 10_000 else 400
    model = ctx.model if ctx.model is not None else quick_model(ctx.workdir)
    plan = _plan(trials, steps, ctx.seed)
    expected = _expected_scores(model, plan.valid)
    topics = fresh_topics(ctx, "badinput")
    scores_topic = f"scores-{topics.group}"
    config = service_config(
        ctx.workdir / "bad_input.toml", ctx, topics, model, kafka={"scores_topic": scores_topic}
    )
    _progress(f"bad input: producing {len(plan.messages)} records ({trials} hostile)")
    offsets = produce_with_offsets(ctx.bootstrap, topics.sensors, plan.messages)
    log = ctx.workdir / "bad_input.log"
    log.unlink(missing_ok=True)
    service = h.ServiceProcess(config, log).start()
    problems: list[str] = []
    try:
        assert service.proc is not None
        pid = service.proc.pid
        total = len(plan.messages)

        def done() -> bool:
            if not service.alive:
                return True
            try:
                n = service.metric("streamvae_records_processed_total")
            except OSError:  # /metrics went away with the process
                return not service.alive
            _progress(f"bad input: {n:.0f}/{total} records processed")
            return n >= total

        h.wait_for(done, 120 + total / 500, "every record processed", every_s=1.0)
        if not service.alive:
            problems.append(f"the service exited early (code {service.proc.poll()})")
            processed = dlq_count = invalid = 0.0
        else:
            processed = service.metric("streamvae_records_processed_total")
            dlq_count = service.metric("streamvae_dlq_records_total")
            invalid = service.metric("streamvae_records_invalid_total")
            h.wait_for(
                lambda: service.metric("streamvae_scores_published_total") >= len(expected),
                30,
                "the scores to be published",
            )
            code = service.terminate(timeout_s=30)
            if code != 0:
                problems.append(f"the service exited {code} on SIGTERM, expected 0")
        if service.proc.pid != pid:
            problems.append("the service process changed")
    finally:
        service.close()
    problems += [f"log: {line[:200]}" for line in log_problems(log.read_text(errors="replace"))]

    bad = {i: x for i, x in plan.hostile.items() if x.bad}
    dlq = h.read_topic(ctx.bootstrap, topics.dlq, timeout_s=60 + len(bad) / 2000)
    by_source: dict[tuple[int, int], list[Any]] = {}
    for r in dlq:
        headers = dict(r.headers or [])
        src = (
            int(headers.get("__connect.errors.partition", b"-1")),
            int(headers.get("__connect.errors.offset", b"-1")),
        )
        by_source.setdefault(src, []).append(r)
    wanted = {(plan.messages[i][0], offsets[i]): i for i in bad}
    kinds_ok: Counter[str] = Counter()
    kinds_bad: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for src, i in wanted.items():
        item = bad[i]
        got = by_source.get(src)
        why = ""
        if not got:
            why = "not in the DLQ"
        else:
            r = got[0]
            headers = dict(r.headers or [])
            reason = headers.get("streamvae.reject.reason", b"").decode()
            message = headers.get("__connect.errors.exception.message", b"").decode()
            reasons[reason] += 1
            if r.key != item.key or r.value != item.value:
                why = "DLQ record differs from the original key/value"
            elif headers.get("__connect.errors.topic", b"").decode() != topics.sensors:
                why = "DLQ record names another topic"
            elif reason not in item.reasons:
                why = f"reason {reason!r}, expected one of {sorted(item.reasons)}: {message}"
            elif "internal error" in message:
                why = f"the decoder failed internally: {message}"
        if why:
            kinds_bad[item.kind] += 1
            if len(problems) < 40:
                problems.append(f"{item.kind} at {src}: {why} ({_clip(item.value)})")
        else:
            kinds_ok[item.kind] += 1
    index = {(m[0], o): i for i, (m, o) in enumerate(zip(plan.messages, offsets, strict=True))}
    strays = [src for src in by_source if src not in wanted]
    for src in strays[:10]:
        i = index.get(src, -1)
        what = plan.hostile[i].kind if i in plan.hostile else "a plant reading"
        problems.append(f"valid record {src} ({what}) is in the DLQ")
    duplicates = sum(len(v) - 1 for v in by_source.values())

    got_scores: dict[tuple[str, float], float] = {}
    for r in h.read_topic(ctx.bootstrap, scores_topic, timeout_s=60):
        doc = json.loads(r.value)
        got_scores[(doc["asset"], float(doc["ts"]))] = doc["score"]
    missing = sorted(set(expected) - set(got_scores))
    extra = sorted(set(got_scores) - set(expected))
    differ = [
        k
        for k in set(expected) & set(got_scores)
        if got_scores[k] is None or not math.isclose(got_scores[k], expected[k], abs_tol=1e-4)
    ]
    if missing or extra or differ:
        problems.append(
            f"scores: {len(missing)} missing, {len(extra)} unexpected, {len(differ)} differ "
            f"(of {len(expected)} expected)"
        )
    total = len(plan.messages)
    if processed != total:
        problems.append(f"records processed {processed:.0f}, expected {total}")
    if dlq_count != len(bad) or invalid != len(bad):
        problems.append(
            f"metrics: dlq {dlq_count:.0f}, invalid {invalid:.0f}, expected {len(bad)} each"
        )
    valid_hostile = trials - len(bad)
    stray_hostile = sum(1 for src in strays if index.get(src, -1) in plan.hostile)
    passed = sum(kinds_ok.values()) + valid_hostile - stray_hostile
    result = (
        f"{len(bad)} bad → DLQ ({sum(kinds_ok.values())} exact), "
        f"{valid_hostile} well-formed dropped by windowing, {len(strays)} valid in DLQ, "
        f"{len(got_scores)}/{len(expected)} windows scored as oracle, 0 restarts"
        if not problems
        else "; ".join(problems[:6])
    )
    return ScenarioResult(
        name,
        trials=trials,
        passed=max(0, passed),
        ok=not problems,
        result=result,
        figures={
            "records": total,
            "bad_records": len(bad),
            "well_formed_hostile_records": valid_hostile,
            "dlq_records": len(dlq),
            "dlq_duplicates": duplicates,
            "windows_scored": len(got_scores),
            "windows_expected": len(expected),
            "reasons": dict(sorted(reasons.items())),
            "kinds": dict(sorted(Counter(x.kind for x in plan.hostile.values()).items())),
            "failed_kinds": dict(kinds_bad),
            "problems": problems,
        },
    )


def _clip(value: bytes | None, limit: int = 80) -> str:
    if value is None:
        return "None"
    text = repr(value[:limit])
    return text + (f"… {len(value)} bytes" if len(value) > limit else "")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
