"""The records that flow through the pipeline: Reading → Window → (score) → AlertEvent.

Frozen, slotted dataclasses: cheap to create in hot loops, impossible to mutate by accident
once a stage has handed them on. Times are event times in epoch seconds (UTC floats); the
wall clock never appears here, so a replay of the same input yields the same records.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from streamvae.errors import InputError

__all__ = [
    "AlertEvent",
    "OffsetSpan",
    "Reading",
    "RejectReason",
    "Rejection",
    "SourceRef",
    "Window",
    "format_event_time",
    "parse_event_time",
]


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from in Kafka, so an alert can point back at its input.

    Example:
        >>> SourceRef("plant.sensors", 3, 1182200).offset
        1182200
    """

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class OffsetSpan:
    """The input offsets a window was built from (first and last reading that filled it).

    Example:
        >>> OffsetSpan("plant.sensors", 3, 10, 41).offset_end
        41
    """

    topic: str
    partition: int
    offset_start: int
    offset_end: int

    def to_dict(self) -> dict[str, Any]:
        """The span as the alert schema's ``input`` object."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset_start": self.offset_start,
            "offset_end": self.offset_end,
        }


@dataclass(frozen=True, slots=True)
class Reading:
    """One asset's values at one event time. A single-channel message is a Reading with one
    entry in ``values``; the windower aligns channels that arrive separately.

    Example:
        >>> r = Reading("pump-7", 1700000000.0, {"temp": 71.2, "vib": 0.02})
        >>> sorted(r.values)
        ['temp', 'vib']
    """

    asset: str
    ts: float
    values: Mapping[str, float]
    source: SourceRef | None = None


class RejectReason(StrEnum):
    """Why a payload never became a Reading. The value is the reason code that goes into
    metrics labels and the dead-letter topic's headers, so it is stable API.

    Example:
        >>> RejectReason.NON_FINITE.value
        'non_finite'
    """

    OVERSIZED = "oversized"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    TOO_DEEP = "too_deep"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    BAD_ASSET = "bad_asset"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    NOT_A_NUMBER = "not_a_number"
    NON_FINITE = "non_finite"
    ABSURD_VALUE = "absurd_value"
    NO_VALUES = "no_values"
    UNKNOWN_ASSET = "unknown_asset"
    UNKNOWN_CHANNEL = "unknown_channel"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload the core refused, with the original bytes for the dead-letter topic.

    Example:
        >>> Rejection(RejectReason.INVALID_JSON, "Expecting value at char 0", b"{oops").reason
        <RejectReason.INVALID_JSON: 'invalid_json'>
    """

    reason: RejectReason
    message: str
    raw: bytes
    source: SourceRef | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """W consecutive resampled steps of one asset, channels in a fixed order, raw units.

    ``start_ts`` and ``end_ts`` are the event times of the first and last step.

    Example:
        >>> import numpy as np
        >>> w = Window("pump-7", 0.0, 31.0, np.zeros((32, 2)), ("temp", "vib"))
        >>> w.values.shape
        (32, 2)
    """

    asset: str
    start_ts: float
    end_ts: float
    values: npt.NDArray[np.float64]
    channels: tuple[str, ...]
    offsets: OffsetSpan | None = None


@dataclass(frozen=True, slots=True)
class ScoredWindow:
    """A window after scoring and thresholding: everything the alert stage needs to decide.

    ``anomalous`` is the threshold's decision; ``regime_change`` is set by the threshold when
    it concluded that a long exceedance is a new normal rather than a fault (the open alert
    then resolves with reason ``regime_change``). ``threshold_label`` says how the threshold
    was set, e.g. ``"p99.5"``, for alert summaries.

    Example:
        >>> import numpy as np
        >>> w = Window("pump-7", 0.0, 31.0, np.zeros((32, 1)), ("temp",))
        >>> sw = ScoredWindow(w, 9.7, 6.1, True, {"temp": 1.0}, "v0001", "p99.5")
        >>> sw.score > sw.threshold
        True
    """

    window: Window
    score: float
    threshold: float
    anomalous: bool
    contributions: Mapping[str, float]
    model_version: str
    threshold_label: str = ""
    regime_change: bool = False
    warming_up: bool = False


# ---------------------------------------------------------------------------- alert events

ALERT_TYPE = "io.streamvae.alert.v1"
ALERT_STATUSES = ("firing", "resolved")
ALERT_SEVERITIES = ("warning", "critical")
ALERT_REASONS = ("recovered", "regime_change")
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def format_event_time(ts: float) -> str:
    """An event time as ISO-8601 UTC with a fixed millisecond precision and a ``Z``.

    Fixed precision makes the text (and so the alert id, which hashes it) a pure function of
    the event time; milliseconds keep two episodes of a fast sensor apart where whole seconds
    would merge them. Half-milliseconds round to even (``round``), the same on every machine.

    Example:
        >>> format_event_time(1700000000.25)
        '2023-11-14T22:13:20.250Z'
    """
    ms = round(ts * 1000.0)
    return (_UNIX_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_event_time(text: str) -> float:
    """Epoch seconds of a time written by :func:`format_event_time` (or any zoned ISO-8601
    time), exact to the millisecond.

    Example:
        >>> parse_event_time("2023-11-14T22:13:20.250Z")
        1700000000.25
    """
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except (TypeError, ValueError) as err:
        raise InputError(f"not an ISO-8601 event time: {text!r} ({err})") from None
    if dt.tzinfo is None:
        raise InputError(f"event time {text!r} has no zone; alert times end in 'Z' (UTC)")
    return round((dt - _UNIX_EPOCH) / _ONE_MS) / 1000.0


def _event_error(message: str) -> InputError:
    return InputError(f"not a streamvae alert CloudEvent: {message}")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert lifecycle event (an episode fires once and resolves once), as it goes to the
    alert topic: a CloudEvents 1.0 structured-mode JSON document (DESIGN §4).

    Times are event times (epoch seconds, UTC) of the readings, never the wall clock, and are
    written with millisecond precision, so a replay of the same input yields the same ``id``
    and the same bytes. ``score`` and ``threshold`` are in nats per value; ``contributions``
    are each channel's share of the excess score (largest first, summing to about 1);
    ``window_start``/``window_end`` bound the window whose score is reported; ``input`` is the
    span of Kafka offsets the event was computed from; ``reason`` is None while firing, else
    ``"recovered"`` or ``"regime_change"``.

    Example:
        >>> e = AlertEvent("firing", "plant-1", "pump-7", "critical", "pump-7 anomalous", 60.0,
        ...                None, 9.7, 4.1, {"vib": 0.8, "temp": 0.2}, 29.0, 60.0, "v0001")
        >>> e.dedup_key, e.source, e.time
        ('streamvae:plant-1:pump-7', '/streamvae/plant-1', '1970-01-01T00:01:00.000Z')
        >>> AlertEvent.from_cloudevent(e.to_cloudevent()) == e
        True
    """

    status: str
    site: str
    asset: str
    severity: str
    summary: str
    starts_at: float
    ends_at: float | None
    score: float
    threshold: float
    contributions: Mapping[str, float]
    window_start: float
    window_end: float
    model_version: str
    input: OffsetSpan | None = None
    reason: str | None = None
    alertname: str = "SensorAnomaly"
    source_prefix: str = "/streamvae"

    def __post_init__(self) -> None:
        # Events are rare (two per episode): checking here keeps every AlertEvent publishable.
        def bad(message: str) -> InputError:
            return InputError(f"AlertEvent({self.asset!r}): {message}")

        if self.status == "firing":
            if self.ends_at is not None or self.reason is not None:
                raise bad("a firing event has ends_at=None and reason=None")
        elif self.status == "resolved":
            if self.ends_at is None or self.reason not in ALERT_REASONS:
                raise bad(f"a resolved event needs ends_at and a reason in {list(ALERT_REASONS)}")
        else:
            raise bad(f"status must be one of {list(ALERT_STATUSES)}, got {self.status!r}")
        if self.severity not in ALERT_SEVERITIES:
            raise bad(f"severity must be one of {list(ALERT_SEVERITIES)}, got {self.severity!r}")
        numbers = [self.score, self.threshold, self.starts_at, self.window_start, self.window_end]
        if self.ends_at is not None:
            numbers.append(self.ends_at)
        if not all(math.isfinite(x) for x in (*numbers, *self.contributions.values())):
            raise bad("score, threshold, times and contributions must be finite numbers")

    @property
    def source(self) -> str:
        """The CloudEvents ``source``: ``<source_prefix>/<site>``."""
        return f"{self.source_prefix}/{self.site}"

    @property
    def dedup_key(self) -> str:
        """The key on the alert topic and in PagerDuty/Alertmanager: one per site and asset, so
        every episode of an asset updates the same incident."""
        return f"streamvae:{self.site}:{self.asset}"

    @property
    def id(self) -> str:
        """sha256 hex of ``dedup_key|starts_at|status`` (``starts_at`` as written in the
        event): the same episode and status give the same id on a replay."""
        text = f"{self.dedup_key}|{format_event_time(self.starts_at)}|{self.status}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def time(self) -> str:
        """When this event happened: ``starts_at`` for firing, ``ends_at`` for resolved."""
        at = self.ends_at if self.status == "resolved" else None
        return format_event_time(self.starts_at if at is None else at)

    @property
    def top_channel(self) -> str | None:
        """The channel with the largest share (the first in ``contributions``)."""
        return next(iter(self.contributions), None)

    def to_cloudevent(self) -> dict[str, Any]:
        """The CloudEvents structured-mode document, keys in the documented fixed order."""
        span = self.input
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": ALERT_TYPE,
            "subject": self.asset,
            "time": self.time,
            "datacontenttype": "application/json",
            "data": {
                "status": self.status,
                "dedup_key": self.dedup_key,
                "severity": self.severity,
                "summary": self.summary,
                "starts_at": format_event_time(self.starts_at),
                "ends_at": None if self.ends_at is None else format_event_time(self.ends_at),
                "labels": {"alertname": self.alertname, "asset": self.asset, "site": self.site},
                "details": {
                    "score": self.score,
                    "threshold": self.threshold,
                    "contributions": dict(self.contributions),
                    "window": {
                        "start": format_event_time(self.window_start),
                        "end": format_event_time(self.window_end),
                    },
                    "model_version": self.model_version,
                    "input": None if span is None else span.to_dict(),
                    "reason": self.reason,
                },
            },
        }

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON in a fixed key order; no NaN or infinity (refused, not written)."""
        return json.dumps(
            self.to_cloudevent(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")

    @classmethod
    def from_cloudevent(cls, doc: Mapping[str, Any]) -> AlertEvent:
        """Read back what :meth:`to_cloudevent` wrote (e.g. ``json.loads`` of the topic's
        value). Raises :class:`~streamvae.errors.InputError` naming the first thing wrong,
        including an ``id`` that does not match the content (an edited event)."""
        try:
            if doc["specversion"] != "1.0" or doc["type"] != ALERT_TYPE:
                raise _event_error(
                    f"specversion/type are {doc['specversion']!r}/{doc['type']!r}, "
                    f"expected '1.0'/{ALERT_TYPE!r}"
                )
            data = doc["data"]
            details = data["details"]
            labels = data["labels"]
            span = details["input"]
            site = str(labels["site"])
            source = str(doc["source"])
            if not source.endswith("/" + site):
                raise _event_error(f"source {source!r} does not end in '/<site>' ('/{site}')")
            event = cls(
                status=str(data["status"]),
                site=site,
                asset=str(doc["subject"]),
                severity=str(data["severity"]),
                summary=str(data["summary"]),
                starts_at=parse_event_time(data["starts_at"]),
                ends_at=None if data["ends_at"] is None else parse_event_time(data["ends_at"]),
                score=float(details["score"]),
                threshold=float(details["threshold"]),
                contributions={str(c): float(v) for c, v in details["contributions"].items()},
                window_start=parse_event_time(details["window"]["start"]),
                window_end=parse_event_time(details["window"]["end"]),
                model_version=str(details["model_version"]),
                input=None
                if span is None
                else OffsetSpan(
                    str(span["topic"]),
                    int(span["partition"]),
                    int(span["offset_start"]),
                    int(span["offset_end"]),
                ),
                reason=None if details["reason"] is None else str(details["reason"]),
                alertname=str(labels["alertname"]),
                source_prefix=source[: -len(site) - 1],
            )
            stated = (data["dedup_key"], labels["asset"], doc["time"])
        except InputError:
            raise
        except KeyError as err:
            raise _event_error(f"missing field {err.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError, OverflowError) as err:
            # OverflowError: a JSON integer too large for a float (score 1e400 written as digits)
            raise _event_error(f"a field has the wrong type ({err})") from None
        if stated != (event.dedup_key, event.asset, event.time):
            raise _event_error(
                f"dedup_key, labels.asset and time {list(stated)} disagree with subject, site, "
                f"starts_at and ends_at (expected {[event.dedup_key, event.asset, event.time]})"
            )
        if doc.get("id") != event.id:
            raise _event_error(
                f"id {doc.get('id')!r} does not match sha256(dedup_key|starts_at|status) "
                f"= {event.id!r}; the event was altered or built elsewhere"
            )
        return event
