"""The records that flow through the pipeline: Reading → Window → (score) → AlertEvent.

Frozen, slotted dataclasses: cheap to create in hot loops, impossible to mutate by accident
once a stage has handed them on. Times are event times in epoch seconds (UTC floats); the
wall clock never appears here, so a replay of the same input yields the same records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

__all__ = ["OffsetSpan", "Reading", "RejectReason", "Rejection", "SourceRef", "Window"]


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
    metrics labels and the dead-letter topic's headers, so it is stable API."""

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
