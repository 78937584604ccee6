"""Bytes ⇄ :class:`~streamvae.types.Reading`: the gate every sensor payload passes.

Whatever arrives on the sensor topic, :meth:`ReadingDecoder.decode` answers with a
:class:`~streamvae.types.Reading` or a :class:`~streamvae.types.Rejection` carrying a stable
reason code, a message for a human and the original bytes for the dead-letter topic. It never
raises on input, because one poison message must not stop a partition.

The checks run cheapest-first and in the order a payload is unwrapped: size (before any
parsing, so a huge message costs nothing), UTF-8, JSON (depth and digit limits included),
object shape, asset, timestamp, values. Two payload shapes are accepted::

    {"asset": "pump-7", "ts": 1700000000, "values": {"temp": 71.2, "vib": 0.02}}
    {"asset": "pump-7", "ts": "2023-11-14T22:13:20Z", "channel": "temp", "value": 71.2}

Timestamps are epoch seconds or milliseconds (told apart by magnitude unless the unit is
configured) or ISO-8601 strings *with* a zone: a naive time is ambiguous across plants and
daylight-saving changes, so it is refused rather than guessed.

The decoder keeps each asset's stream time (the latest event time accepted for it) and
refuses a reading absurdly far ahead of or behind its asset's: a sensor with a wrong clock must
not drag its windows into the future or far into the past. The reference is the asset's own
time, never the partition's latest: with one shared high-water mark, a single reading from the
year 2096 (or 745 readings of one asset whose clock runs an hour fast) would put every *other*
asset "behind stream time" and send all their readings to the dead-letter topic, for good. An
asset's first reading is checked only against the absolute ``min_ts``/``max_ts`` bounds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from streamvae.config import _choice, _DictMixin, _finite_float, _positive_int, _require
from streamvae.errors import ConfigError, InputError
from streamvae.types import Reading, Rejection, RejectReason, SourceRef

__all__ = ["ReadingConfig", "ReadingDecoder", "encode_reading"]

SNAPSHOT_FORMAT: Final = 2  # 2: per-asset stream times; 1 (restorable) had one for all
MAX_TRACKED_ASSETS: Final = 100_000
"""Assets whose stream time a decoder remembers (~100 bytes each); readings of assets beyond it
are checked against the absolute bounds only, like every asset's first reading."""
AUTO_MS_THRESHOLD: Final = 1e11
"""With ``ts_unit="auto"``, a number of magnitude >= 1e11 is milliseconds: 1e11 s is the year
5138, while 1e11 ms is 1973, so no plausible time is ambiguous."""
NAME_MEMO_SIZE: Final = 4096
"""How many validated channel names a decoder remembers (a speed memo, not state)."""
MAX_TS_STRING: Final = 64
"""Longer timestamp strings are refused unparsed; the longest sane ISO form is ~35 chars."""

_MISSING: Final = object()
_EPOCH: Final = datetime(1970, 1, 1)  # naive UTC, only for formatting messages
_R = RejectReason


@dataclass(frozen=True, slots=True)
class ReadingConfig(_DictMixin):
    """What a valid sensor payload looks like on this topic.

    Field names are configurable because plants rarely agree on them. ``assets`` and
    ``channels`` are allow-lists (``None`` accepts any name); a channel outside the list either
    rejects the whole reading or is dropped from it (``unknown_channels``). Booleans and numeric
    strings are refused as values unless ``bool_values`` / ``numeric_strings`` say otherwise:
    ``"71.2"`` where a number belongs usually means a producer bug worth seeing in the
    dead-letter topic. Limits carry their unit in the name or docstring: bytes, seconds,
    characters, and the same unit as the values for ``max_abs_value``.

    Example:
        >>> cfg = ReadingConfig(asset_field="device", channels=("temp", "vib"))
        >>> cfg.unknown_channels, cfg.max_payload_bytes
        ('reject', 65536)
    """

    asset_field: str = "asset"
    ts_field: str = "ts"
    values_field: str = "values"
    channel_field: str = "channel"
    value_field: str = "value"
    ts_unit: Literal["auto", "s", "ms"] = "auto"
    assets: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None
    unknown_channels: Literal["reject", "drop"] = "reject"
    max_payload_bytes: int = 65536
    max_abs_value: float = 1e12
    max_future_s: float = 3600.0
    max_past_s: float = 30 * 86400.0
    min_ts: float = 946684800.0  # 2000-01-01T00:00:00Z
    max_ts: float = 4102444800.0  # 2100-01-01T00:00:00Z
    max_asset_length: int = 256
    max_channel_length: int = 256
    bool_values: bool = False
    numeric_strings: bool = False

    def __post_init__(self) -> None:
        owner = "ReadingConfig"
        names = ("asset_field", "ts_field", "values_field", "channel_field", "value_field")
        for name in names:
            value = getattr(self, name)
            _require(
                isinstance(value, str) and bool(value),
                owner,
                name,
                f"must be a non-empty string, got {value!r}",
            )
        fields = [getattr(self, n) for n in names]
        _require(
            len(set(fields)) == len(fields),
            owner,
            "asset_field",
            f"the five field names must differ, got {fields}",
        )
        _choice(owner, "ts_unit", self.ts_unit, ("auto", "s", "ms"))
        for name in ("assets", "channels"):
            allowed = getattr(self, name)
            _require(
                allowed is None
                or (
                    isinstance(allowed, tuple)
                    and len(allowed) > 0
                    and all(isinstance(a, str) and a for a in allowed)
                ),
                owner,
                name,
                f"must be None (accept any) or a non-empty tuple of non-empty strings, "
                f"got {allowed!r}",
            )
        _choice(owner, "unknown_channels", self.unknown_channels, ("reject", "drop"))
        _positive_int(owner, "max_payload_bytes", self.max_payload_bytes)
        _finite_float(owner, "max_abs_value", self.max_abs_value, low=0.0, low_open=True)
        _finite_float(owner, "max_future_s", self.max_future_s, low=0.0)
        _finite_float(owner, "max_past_s", self.max_past_s, low=0.0)
        _finite_float(owner, "min_ts", self.min_ts)
        _finite_float(owner, "max_ts", self.max_ts)
        _require(
            self.min_ts < self.max_ts,
            owner,
            "min_ts",
            f"must be below max_ts ({self.min_ts} s >= {self.max_ts} s)",
        )
        _positive_int(owner, "max_asset_length", self.max_asset_length)
        _positive_int(owner, "max_channel_length", self.max_channel_length)
        # an allowed name beyond its length limit could never be accepted (assets) or would
        # slip past it (channels): a contradiction to report now, not a silent DLQ later
        for name, limit_name in (
            ("assets", "max_asset_length"),
            ("channels", "max_channel_length"),
        ):
            limit = getattr(self, limit_name)
            long = [a for a in getattr(self, name) or () if len(a) > limit]
            _require(
                not long,
                owner,
                name,
                f"{_short(long)} {'is' if len(long) == 1 else 'are'} longer than {limit_name} = "
                f"{limit} characters; raise "
                f"{limit_name} or shorten the names",
            )
        for name in ("bool_values", "numeric_strings"):
            value = getattr(self, name)
            _require(isinstance(value, bool), owner, name, f"must be true or false, got {value!r}")


class ReadingDecoder:
    """Turns payload bytes into readings or rejections; never raises on input.

    Stateful only in its assets' stream times, each the high-water mark of the event times
    accepted for that asset: a reading more than ``max_future_s`` ahead of its asset's or
    ``max_past_s`` behind it is refused. An asset's first reading is only checked against the
    absolute ``min_ts``/``max_ts`` bounds. ``stream_time`` is the latest of them. Counters
    (``accepted``, ``rejected`` per reason code, ``dropped_channels``) feed metrics.

    Example:
        >>> dec = ReadingDecoder()
        >>> dec.decode(b'{"asset": "pump-7", "ts": 1700000000, "values": {"temp": 71.2}}')
        Reading(asset='pump-7', ts=1700000000.0, values={'temp': 71.2}, source=None)
        >>> r = dec.decode(b'{"asset": "pump-7", "ts": 1700000001, "values": {"temp": NaN}}')
        >>> r.reason.value, r.message
        ('non_finite', 'values.temp is NaN')
        >>> dec.stream_time, dec.accepted, dec.rejected["non_finite"]
        (1700000000.0, 1, 1)
    """

    __slots__ = (
        "_asset_field",
        "_asset_times",
        "_assets",
        "_bool_values",
        "_channel_field",
        "_channels",
        "_drop_unknown",
        "_max_abs",
        "_max_asset_len",
        "_max_bytes",
        "_max_channel_len",
        "_max_future",
        "_max_past",
        "_max_ts",
        "_min_abs",
        "_min_ts",
        "_names_ok",
        "_numeric_strings",
        "_stream_time",
        "_ts_field",
        "_ts_unit",
        "_value_field",
        "_values_field",
        "accepted",
        "config",
        "dropped_channels",
        "rejected",
    )

    def __init__(self, config: ReadingConfig | None = None) -> None:
        cfg = ReadingConfig() if config is None else config
        if not isinstance(cfg, ReadingConfig):
            raise ConfigError(f"ReadingDecoder: expected a ReadingConfig, got {type(cfg).__name__}")
        self.config = cfg
        # Hot-path copies: attribute reads on a slotted object beat a frozen dataclass chain.
        self._asset_field = cfg.asset_field
        self._ts_field = cfg.ts_field
        self._values_field = cfg.values_field
        self._channel_field = cfg.channel_field
        self._value_field = cfg.value_field
        self._ts_unit = cfg.ts_unit
        self._assets = None if cfg.assets is None else frozenset(cfg.assets)
        self._channels = None if cfg.channels is None else frozenset(cfg.channels)
        self._drop_unknown = cfg.unknown_channels == "drop"
        self._max_bytes = cfg.max_payload_bytes
        self._max_abs = float(cfg.max_abs_value)
        self._min_abs = -float(cfg.max_abs_value)
        self._max_future = float(cfg.max_future_s)
        self._max_past = float(cfg.max_past_s)
        self._min_ts = float(cfg.min_ts)
        self._max_ts = float(cfg.max_ts)
        self._max_asset_len = cfg.max_asset_length
        self._max_channel_len = cfg.max_channel_length
        self._bool_values = cfg.bool_values
        self._numeric_strings = cfg.numeric_strings
        self._names_ok: set[str] = set()
        self._stream_time: float | None = None
        self._asset_times: dict[str, float] = {}
        self.accepted = 0
        self.rejected: dict[str, int] = {r.value: 0 for r in RejectReason}
        self.dropped_channels = 0

    # ------------------------------------------------------------------ decoding

    @property
    def stream_time(self) -> float | None:
        """Latest accepted event time of any asset, epoch seconds; ``None`` before the first
        reading. Informational: each reading is checked against its own asset's."""
        return self._stream_time

    def asset_time(self, asset: str) -> float | None:
        """The asset's stream time (its latest accepted event time), epoch seconds."""
        return self._asset_times.get(asset)

    def decode(self, raw: bytes, source: SourceRef | None = None) -> Reading | Rejection:
        """One payload → a Reading, or a Rejection saying why (never an exception)."""
        try:
            return self._decode(raw, source)
        except Exception as exc:  # a decoder bug must not become a poison pill
            data = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else b""
            return self._reject(
                _R.INVALID_JSON,
                f"internal error in the decoder ({exc!r}); please report",
                data,
                source,
            )

    def decode_many(
        self, raws: Iterable[bytes | tuple[bytes, SourceRef | None]]
    ) -> tuple[list[Reading], list[Rejection]]:
        """Decode a batch in order; items are bytes or ``(bytes, source)`` pairs."""
        readings: list[Reading] = []
        rejections: list[Rejection] = []
        decode = self.decode
        for item in raws:
            out = decode(item[0], item[1]) if isinstance(item, tuple) else decode(item)
            if type(out) is Reading:
                readings.append(out)
            else:
                assert isinstance(out, Rejection)
                rejections.append(out)
        return readings, rejections

    def _reject(
        self, reason: RejectReason, message: str, raw: bytes, source: SourceRef | None
    ) -> Rejection:
        self.rejected[reason] += 1
        return Rejection(reason, message, raw, source)

    def _decode(self, raw: bytes, source: SourceRef | None) -> Reading | Rejection:
        data: object = raw
        if type(data) is not bytes:
            if isinstance(data, bytearray | memoryview):
                raw = bytes(data)
            else:
                kind = "None (a tombstone?)" if data is None else type(data).__name__
                return self._reject(
                    _R.INVALID_JSON, f"payload is {kind}, expected JSON bytes", b"", source
                )
        if len(raw) > self._max_bytes:
            return self._reject(
                _R.OVERSIZED,
                f"payload is {len(raw)} bytes, limit {self._max_bytes} bytes",
                raw,
                source,
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._reject(
                _R.INVALID_UTF8,
                f"payload is not UTF-8: {exc.reason} at byte {exc.start}",
                raw,
                source,
            )
        try:
            obj = _parse_json(text)
        except json.JSONDecodeError as exc:
            return self._reject(_R.INVALID_JSON, f"payload is not JSON: {exc}", raw, source)
        except RecursionError:
            return self._reject(
                _R.TOO_DEEP, "payload nests arrays/objects too deeply to parse", raw, source
            )
        except ValueError as exc:  # the int-string digit limit (CVE-2020-10735 guard)
            return self._reject(
                _R.ABSURD_VALUE,
                f"payload holds a number Python refuses to parse: {str(exc).split(';')[0]}",
                raw,
                source,
            )
        if type(obj) is not dict:
            return self._reject(
                _R.NOT_AN_OBJECT,
                f"payload must be a JSON object, got {_json_type(obj)}",
                raw,
                source,
            )

        # ---- asset
        asset = obj.get(self._asset_field, _MISSING)
        if type(asset) is not str or not asset or len(asset) > self._max_asset_len:
            if asset is _MISSING:
                return self._missing(self._asset_field, raw, source)
            return self._reject(_R.BAD_ASSET, self._bad_asset(asset), raw, source)
        if self._assets is not None:
            if asset not in self._assets:
                return self._reject(
                    _R.UNKNOWN_ASSET,
                    f"asset {_short(asset)} is not in the configured assets",
                    raw,
                    source,
                )
        elif not asset.isascii() and not _utf8_safe(asset):
            return self._reject(_R.BAD_ASSET, self._bad_asset(asset), raw, source)

        # ---- timestamp
        ts_raw = obj.get(self._ts_field, _MISSING)
        if type(ts_raw) is int or type(ts_raw) is float:
            try:
                ts = float(ts_raw)
            except OverflowError:
                return self._reject(
                    _R.TIMESTAMP_OUT_OF_RANGE,
                    f"field {self._ts_field!r} is an integer too large for a time",
                    raw,
                    source,
                )
            if ts - ts != 0.0:
                return self._reject(
                    _R.BAD_TIMESTAMP,
                    f"field {self._ts_field!r} is {_float_word(ts)}",
                    raw,
                    source,
                )
            unit = self._ts_unit
            if unit == "ms" or (
                unit == "auto" and (ts >= AUTO_MS_THRESHOLD or -ts >= AUTO_MS_THRESHOLD)
            ):
                ts = ts / 1000.0
        elif type(ts_raw) is str:
            parsed = _parse_iso(ts_raw)
            if type(parsed) is str:
                return self._reject(
                    _R.BAD_TIMESTAMP, f"field {self._ts_field!r} {parsed}", raw, source
                )
            assert isinstance(parsed, float)
            ts = parsed
        elif ts_raw is _MISSING:
            return self._missing(self._ts_field, raw, source)
        else:
            return self._reject(
                _R.BAD_TIMESTAMP,
                f"field {self._ts_field!r} must be epoch seconds/milliseconds or an ISO-8601 "
                f"string with a zone, got {_json_type(ts_raw)}",
                raw,
                source,
            )
        if not self._min_ts <= ts <= self._max_ts:
            return self._reject(
                _R.TIMESTAMP_OUT_OF_RANGE,
                f"field {self._ts_field!r} is {_fmt_ts(ts)}, outside the sane range "
                f"{_fmt_ts(self._min_ts)} .. {_fmt_ts(self._max_ts)}",
                raw,
                source,
            )
        now = self._asset_times.get(asset)
        if now is not None:
            if ts > now + self._max_future:
                return self._reject(
                    _R.TIMESTAMP_OUT_OF_RANGE,
                    f"field {self._ts_field!r} is {_fmt_ts(ts)}, {_secs(ts - now)} s ahead of "
                    f"stream time {_fmt_ts(now)} of asset {_short(asset)}, limit "
                    f"{_secs(self._max_future)} s",
                    raw,
                    source,
                )
            if ts < now - self._max_past:
                return self._reject(
                    _R.TIMESTAMP_OUT_OF_RANGE,
                    f"field {self._ts_field!r} is {_fmt_ts(ts)}, {_secs(now - ts)} s behind "
                    f"stream time {_fmt_ts(now)} of asset {_short(asset)}, limit "
                    f"{_secs(self._max_past)} s",
                    raw,
                    source,
                )

        # ---- values
        vals = obj.get(self._values_field, _MISSING)
        if vals is not _MISSING:
            values = self._check_values(vals, raw, source)
        else:
            values = self._check_single(obj, raw, source)
        if type(values) is Rejection:
            return values
        assert isinstance(values, dict)

        if now is None:
            if len(self._asset_times) < MAX_TRACKED_ASSETS:
                self._asset_times[asset] = ts
        elif ts > now:
            self._asset_times[asset] = ts
        latest = self._stream_time
        if latest is None or ts > latest:
            self._stream_time = ts
        self.accepted += 1
        return Reading(asset, ts, values, source)

    def _check_values(
        self, vals: object, raw: bytes, source: SourceRef | None
    ) -> dict[str, float] | Rejection:
        """Validate a multichannel ``values`` object; reuse it when nothing needs changing."""
        field = self._values_field
        if type(vals) is not dict:
            return self._reject(
                _R.NOT_AN_OBJECT,
                f"field {field!r} must be an object of channel -> number, got {_json_type(vals)}",
                raw,
                source,
            )
        if not vals:
            return self._reject(_R.NO_VALUES, f"field {field!r} is empty", raw, source)
        # Fast path: known names, in-range floats/ints. Anything else takes the slow path,
        # which re-walks the values and says what is wrong (or drops / converts).
        allowed = self._channels
        names_ok = self._names_ok if allowed is None else allowed
        lo = self._min_abs
        hi = self._max_abs
        ints = False
        for name, v in vals.items():
            if name not in names_ok:
                break
            if type(v) is float:
                if lo <= v <= hi:
                    continue
                break
            if type(v) is int and lo <= v <= hi:  # int vs float compares exactly, no overflow
                ints = True
                continue
            break
        else:
            return {k: float(v) for k, v in vals.items()} if ints else vals
        return self._check_values_slow(vals, raw, source)

    def _check_values_slow(
        self, vals: dict[str, Any], raw: bytes, source: SourceRef | None
    ) -> dict[str, float] | Rejection:
        field = self._values_field
        allowed = self._channels
        names_ok = self._names_ok
        lo = self._min_abs
        hi = self._max_abs
        clean: dict[str, float] | None = None  # None: `vals` itself is already clean
        dropped = 0
        for name, v in vals.items():
            if allowed is not None:
                if name not in allowed:
                    if not self._drop_unknown:
                        return self._reject(
                            _R.UNKNOWN_CHANNEL,
                            f"{field}.{_short(name, quote=False)} is not a configured channel",
                            raw,
                            source,
                        )
                    if clean is None:
                        clean = _prefix(vals, name)
                    dropped += 1
                    continue
            elif name not in names_ok and not self._valid_channel(name):
                return self._reject(_R.UNKNOWN_CHANNEL, self._bad_channel(name), raw, source)
            if type(v) is float and lo <= v <= hi:
                if clean is not None:
                    clean[name] = v
                continue
            if type(v) is int and lo <= v <= hi:
                x = float(v)
            else:
                slow = self._number(v, f"{field}.{_short(name, quote=False)}", raw, source)
                if type(slow) is Rejection:
                    return slow
                assert isinstance(slow, float)
                x = slow
            if clean is None:
                clean = _prefix(vals, name)
            clean[name] = x
        if dropped:
            if clean is not None and not clean:
                return self._reject(
                    _R.UNKNOWN_CHANNEL,
                    f"every channel in {field!r} is unknown and was dropped: "
                    f"{_short(sorted(vals))}",
                    raw,
                    source,
                )
            self.dropped_channels += dropped
        return vals if clean is None else clean

    def _check_single(
        self, obj: dict[str, Any], raw: bytes, source: SourceRef | None
    ) -> dict[str, float] | Rejection:
        """Validate a single-channel ``{"channel": ..., "value": ...}`` payload."""
        name = obj.get(self._channel_field, _MISSING)
        v = obj.get(self._value_field, _MISSING)
        if name is _MISSING and v is _MISSING:
            return self._reject(
                _R.MISSING_FIELD,
                f"field {self._values_field!r} missing (or {self._channel_field!r} with "
                f"{self._value_field!r})",
                raw,
                source,
            )
        if name is _MISSING:
            return self._missing(self._channel_field, raw, source)
        if v is _MISSING:
            return self._missing(self._value_field, raw, source)
        allowed = self._channels
        if type(name) is not str:
            return self._reject(_R.UNKNOWN_CHANNEL, self._bad_channel(name), raw, source)
        if allowed is not None:
            if name not in allowed:
                how = "dropped, nothing left" if self._drop_unknown else "rejected"
                return self._reject(
                    _R.UNKNOWN_CHANNEL,
                    f"{self._channel_field} {_short(name)} is not a configured channel ({how})",
                    raw,
                    source,
                )
        elif name not in self._names_ok and not self._valid_channel(name):
            return self._reject(_R.UNKNOWN_CHANNEL, self._bad_channel(name), raw, source)
        if type(v) is float and self._min_abs <= v <= self._max_abs:
            return {name: v}
        if type(v) is int and self._min_abs <= v <= self._max_abs:
            return {name: float(v)}
        x = self._number(v, f"{self._value_field} of channel {_short(name)}", raw, source)
        if type(x) is Rejection:
            return x
        assert isinstance(x, float)
        return {name: x}

    def _number(
        self, v: object, where: str, raw: bytes, source: SourceRef | None
    ) -> float | Rejection:
        """Slow path for one value that is not a plain in-range float."""
        if type(v) is float:
            x = v
        elif type(v) is int:
            try:
                x = float(v)
            except OverflowError:
                return self._reject(
                    _R.ABSURD_VALUE, f"{where} is an integer too large for a float", raw, source
                )
        elif type(v) is bool and self._bool_values:
            x = 1.0 if v else 0.0
        elif type(v) is str and self._numeric_strings:
            try:
                x = float(v)
            except ValueError:
                return self._reject(
                    _R.NOT_A_NUMBER, f"{where} is the non-numeric string {_short(v)}", raw, source
                )
        else:
            return self._reject(
                _R.NOT_A_NUMBER,
                f"{where} must be a number, got {_json_type(v)}" + _not_number_hint(v),
                raw,
                source,
            )
        if x - x != 0.0:
            return self._reject(_R.NON_FINITE, f"{where} is {_float_word(x)}", raw, source)
        if not self._min_abs <= x <= self._max_abs:
            return self._reject(
                _R.ABSURD_VALUE,
                f"{where} is {x:g}, limit |value| <= {self._max_abs:g}",
                raw,
                source,
            )
        return x

    def _valid_channel(self, name: str) -> bool:
        """Whether a channel name is usable downstream; valid names are memoised (up to
        ``NAME_MEMO_SIZE``) so the common case is one set lookup."""
        if not name or len(name) > self._max_channel_len:
            return False
        if not name.isascii() and not _utf8_safe(name):
            return False
        if len(self._names_ok) < NAME_MEMO_SIZE:
            self._names_ok.add(name)
        return True

    def _missing(self, field: str, raw: bytes, source: SourceRef | None) -> Rejection:
        return self._reject(_R.MISSING_FIELD, f"field {field!r} missing", raw, source)

    def _bad_asset(self, asset: object) -> str:
        f = self._asset_field
        if type(asset) is not str:
            return f"field {f!r} must be a non-empty string, got {_json_type(asset)}"
        if not asset:
            return f"field {f!r} is an empty string"
        if len(asset) > self._max_asset_len:
            return f"field {f!r} is {len(asset)} characters, limit {self._max_asset_len}"
        return f"field {f!r} holds unpaired surrogates (not encodable as UTF-8)"

    def _bad_channel(self, name: object) -> str:
        where = f"channel name in {self._values_field!r} / {self._channel_field!r}"
        if type(name) is not str:
            return f"{where} must be a non-empty string, got {_json_type(name)}"
        if not name:
            return f"{where} is an empty string"
        if len(name) > self._max_channel_len:
            return f"{where} is {len(name)} characters, limit {self._max_channel_len}"
        return f"{where} holds unpaired surrogates (not encodable as UTF-8)"

    # ------------------------------------------------------------------ state

    def counters(self) -> dict[str, Any]:
        """Accepted and rejected counts (rejections per reason code), for metrics."""
        return {
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "dropped_channels": self.dropped_channels,
        }

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state: stream times and counters."""
        return {
            "format": SNAPSHOT_FORMAT,
            "stream_time": self._stream_time,
            "asset_times": dict(self._asset_times),
            **self.counters(),
        }

    @classmethod
    def restore(cls, config: ReadingConfig | None, state: Mapping[str, Any]) -> ReadingDecoder:
        """Rebuild a decoder from :meth:`snapshot`; it continues exactly where that one was."""
        if not isinstance(state, Mapping) or state.get("format") not in (1, SNAPSHOT_FORMAT):
            got = state.get("format") if isinstance(state, Mapping) else type(state).__name__
            raise ConfigError(
                f"reading decoder snapshot format {got!r} is not supported "
                f"(expected {SNAPSHOT_FORMAT}); take the snapshot with ReadingDecoder.snapshot()"
            )
        dec = cls(config)
        st = state.get("stream_time")
        if st is not None:
            ok = isinstance(st, int | float) and not isinstance(st, bool) and math.isfinite(st)
            if not ok:
                raise ConfigError(f"reading decoder snapshot: stream_time {st!r} is not a time")
            dec._stream_time = float(st)
        times = state.get("asset_times", {})  # format 1 had none: every asset starts fresh
        if not isinstance(times, Mapping):
            raise ConfigError("reading decoder snapshot: asset_times is not an object")
        for asset, t in times.items():
            ok = isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
            if not isinstance(asset, str) or not ok:
                raise ConfigError(
                    f"reading decoder snapshot: asset_times[{asset!r}] = {t!r} is not a time"
                )
            dec._asset_times[asset] = float(t)
        dec.accepted = int(state.get("accepted", 0))
        dec.dropped_channels = int(state.get("dropped_channels", 0))
        for reason, count in dict(state.get("rejected", {})).items():
            dec.rejected[str(reason)] = int(count)
        return dec


def encode_reading(reading: Reading, config: ReadingConfig | None = None) -> bytes:
    """A Reading as a multichannel JSON payload, for simulators and tests.

    ``decode(encode_reading(r)) == r`` for a valid reading without a source (the source is
    Kafka metadata, not payload). The time is written in epoch seconds, or milliseconds when
    the config says ``ts_unit="ms"`` (then exact only to float rounding).

    Example:
        >>> encode_reading(Reading("pump-7", 1700000000.0, {"temp": 71.2}))
        b'{"asset":"pump-7","ts":1700000000.0,"values":{"temp":71.2}}'
    """
    cfg = ReadingConfig() if config is None else config
    ts = float(reading.ts) * 1000.0 if cfg.ts_unit == "ms" else float(reading.ts)
    payload = {
        cfg.asset_field: reading.asset,
        cfg.ts_field: ts,
        cfg.values_field: {str(k): float(v) for k, v in reading.values.items()},
    }
    try:
        text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise InputError(
            f"reading for {reading.asset!r} has a non-finite time or value ({exc}); "
            "only finite numbers can be encoded"
        ) from None
    return text.encode("utf-8")


# ---------------------------------------------------------------------- helpers


_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_JSON_WS: Final = " \t\n\r"


def _parse_json(text: str) -> Any:
    """``json.loads`` minus its Python-level wrapper (about 1 µs of a 4 µs parse): the same C
    scanner, the same whitespace rule, the same errors."""
    idx = 0 if text[:1] == "{" else len(text) - len(text.lstrip(_JSON_WS))
    try:
        obj, end = _scan_once(text, idx)
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None
    if end != len(text) and text[end:].strip(_JSON_WS):
        idx = len(text) - len(text[end:].lstrip(_JSON_WS))
        raise json.JSONDecodeError("Extra data", text, idx)
    return obj


def _parse_iso(text: str) -> float | str:
    """Epoch seconds of a zoned ISO-8601 string, or what is wrong with it."""
    if len(text) > MAX_TS_STRING:
        return f"is a {len(text)}-character string, not a timestamp (limit {MAX_TS_STRING})"
    candidate = text[:-1] + "Z" if text.endswith("z") else text
    try:
        dt = datetime.fromisoformat(candidate)
    except ValueError:
        return f"is not an ISO-8601 time: {_short(text)}"
    if dt.tzinfo is None or dt.utcoffset() is None:
        return (
            f"is a naive ISO-8601 time {_short(text)}; add a zone such as 'Z' or '+02:00' "
            "(a time without one is ambiguous)"
        )
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        return f"is out of the representable range: {_short(text)}"


def _prefix(vals: dict[str, Any], stop: str) -> dict[str, float]:
    """The entries of ``vals`` before key ``stop`` (all of them already validated floats)."""
    out: dict[str, float] = {}
    for k, v in vals.items():
        if k == stop:
            break
        out[k] = v
    return out


def _utf8_safe(text: str) -> bool:
    """False for strings with unpaired surrogates (JSON ``"\\ud800"``), which cannot go into
    UTF-8 metric labels, headers or alert payloads later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) is str:
        return "a string"
    if type(value) is list:
        return "an array"
    if type(value) is dict:
        return "an object"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _not_number_hint(v: object) -> str:
    if type(v) is str:
        return f" {_short(v)} (numeric strings need ReadingConfig.numeric_strings=True)"
    if type(v) is bool:
        return " (booleans need ReadingConfig.bool_values=True)"
    return ""


def _float_word(x: float) -> str:
    if x != x:
        return "NaN"
    return "inf" if x > 0 else "-inf"


def _short(value: object, limit: int = 60, *, quote: bool = True) -> str:
    """A bounded repr for messages: payload text can be as long as the payload."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _secs(x: float) -> str:
    """Seconds for messages: ``3600.5``, ``86401``, never ``2.592e+06``."""
    return f"{x:.3f}".rstrip("0").rstrip(".")


def _fmt_ts(ts: float) -> str:
    """``2023-11-14T22:13:20Z (1700000000 s)``: readable, and the raw number for grep."""
    try:
        iso = (_EPOCH + timedelta(seconds=ts)).isoformat()  # 2x faster than fromtimestamp(UTC)
    except (OverflowError, ValueError):
        return f"{ts:g} s"
    return f"{iso}Z ({_secs(ts)} s)"
