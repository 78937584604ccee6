"""Alert bridges: the service's alert topic → Alertmanager or PagerDuty (``streamvae bridge``).

Why a separate process and not a sink inside ``streamvae run``: a paging tool that is down
or slow must never hold back the detector, and a bridge can be restarted, redeployed or
pointed at another receiver without touching the detector's state. The alert topic is the
contract between them (CloudEvents 1.0 JSON, ``docs/alert.schema.json``), read back with the
core's own decoder, :meth:`streamvae.AlertEvent.from_cloudevent`.

The parts, in the order an event goes through them:

- **Translation** (pure, no I/O): :func:`alertmanager_alert` builds one element of
  Alertmanager's ``POST /api/v2/alerts`` list, :func:`pagerduty_event` one PagerDuty Events
  API v2 event. Alertmanager identifies an alert by its label set, so a resolved event is sent
  with the labels of the firing event it ends (severity included).
- **Ledger** (:class:`AlertLedger`): which event ids were handled (bounded memory, oldest
  forgotten first), which alerts are firing now (Alertmanager wants them re-sent), and a
  per-key guard that drops a resolved event older than the episode that is firing.
- **Delivery** (:func:`post_json`, :class:`RetryPolicy`): connection errors, timeouts, 5xx
  and 429 are retried with exponential backoff and jitter (``Retry-After`` is respected);
  any other 4xx is a permanent rejection: logged with the receiver's answer, counted, skipped.
- **Loop** (:class:`Bridge`): a kafka-python consumer in its own group
  (``<group_id>.bridge.<kind>``), offsets committed by hand only once the receiver accepted
  (or permanently rejected) an event, so a crash re-sends, never loses. On every partition
  assignment the partition's history before the first offset to deliver is read again to
  rebuild the ledger: which alerts are firing, which ids were seen. A group that never
  committed starts at the end of the topic and delivers only what is firing now, not the
  past. SIGTERM: the request in flight finishes, its offset is committed, the consumer leaves
  the group, exit 0.

Example:
    >>> import streamvae as sv
    >>> e = sv.AlertEvent("firing", "plant-1", "pump-7", "critical", "pump-7 anomalous",
    ...                   1_700_000_000.0, None, 9.7, 4.1, {"vibration": 0.8}, 1_699_999_700.0,
    ...                   1_700_000_000.0, "v0001")
    >>> alertmanager_alert(e)["labels"]["dedup_key"]
    'streamvae:plant-1:pump-7'
    >>> pagerduty_event(e, Secret("x" * 32))["event_action"]
    'trigger'
"""

from __future__ import annotations

import argparse
import collections
import email.utils
import hashlib
import http.client
import json
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumers.settings import Secret, Settings
from streamvae.errors import InputError
from streamvae.types import AlertEvent, format_event_time

__all__ = [
    "PAGERDUTY_EVENTS_URL",
    "AlertLedger",
    "AlertmanagerTarget",
    "Bridge",
    "BridgeError",
    "BridgeOptions",
    "BridgeStats",
    "PagerDutyTarget",
    "Response",
    "RetryPolicy",
    "Target",
    "TransientError",
    "alertmanager_alert",
    "alertmanager_labels",
    "classify",
    "default_group",
    "pagerduty_dedup_key",
    "pagerduty_event",
    "post_json",
    "read_routing_key",
    "retry_after_s",
    "run_cli",
    "truncate",
]

_log = logging.getLogger("streamvae.bridge")

PAGERDUTY_EVENTS_URL: Final = "https://events.pagerduty.com"
"""PagerDuty's public Events API v2 endpoint (events go to ``<url>/v2/enqueue``)."""

SUMMARY_LIMIT: Final = 1024  # PagerDuty: payload.summary is at most 1024 characters
DEDUP_KEY_LIMIT: Final = 255  # PagerDuty: dedup_key is at most 255 characters
ROUTING_KEY_LENGTH: Final = 32  # PagerDuty integration (routing) keys are 32 characters
PAGERDUTY_SEVERITIES: Final = ("critical", "error", "warning", "info")
# Our severities (streamvae.types.ALERT_SEVERITIES) onto PagerDuty's four.
_PD_SEVERITY: Final = {"critical": "critical", "warning": "warning"}
_BODY_SHOWN: Final = 300  # characters of a receiver's answer quoted in a log line
_RESEND_BATCH: Final = 500  # alerts per Alertmanager request when re-sending


class BridgeError(Exception):
    """A bridge cannot start: a bad URL, an unreadable or malformed routing key file.

    The message says what was wrong and what to do; ``streamvae bridge`` prints it and exits 2.

    Example:
        >>> raise BridgeError("--url: 'ftp://x' is not an http(s) URL")
        Traceback (most recent call last):
        ...
        consumers.bridge.BridgeError: --url: 'ftp://x' is not an http(s) URL
    """


class TransientError(Exception):
    """The receiver could not be reached or did not answer (refused, reset, timed out):
    worth retrying. ``retry_after_s`` is the receiver's own hint when it gave one.

    Example:
        >>> TransientError("connection refused").retry_after_s is None
        True
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# ---------------------------------------------------------------------------- translation


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``…`` when it was cut.

    Example:
        >>> truncate("abcdef", 4), truncate("abc", 4)
        ('abc…', 'abc')
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alertmanager_labels(event: AlertEvent) -> dict[str, str]:
    """The label set that identifies the alert in Alertmanager: the schema's labels
    (``alertname``, ``asset``, ``site``), ``severity`` and the identity ``dedup_key``.

    Alertmanager fingerprints an alert by its labels, so these must be the same for the
    firing and the resolved event of an episode (:func:`alertmanager_alert` takes care).

    Example:
        >>> import streamvae as sv
        >>> e = sv.AlertEvent("firing", "p1", "pump-7", "warning", "s", 60.0, None, 2.0,
        ...                   1.5, {}, 0.0, 60.0, "v0001")
        >>> alertmanager_labels(e)
        {'alertname': 'SensorAnomaly', 'asset': 'pump-7', 'site': 'p1', 'severity': 'warning', 'dedup_key': 'streamvae:p1:pump-7'}
    """  # noqa: E501
    return {
        "alertname": event.alertname,
        "asset": event.asset,
        "site": event.site,
        "severity": event.severity,
        "dedup_key": event.dedup_key,
    }


def _details(event: AlertEvent) -> dict[str, Any]:
    span = event.input
    return {
        "event_id": event.id,
        "status": event.status,
        "score_nats_per_value": event.score,
        "threshold_nats_per_value": event.threshold,
        "contributions": dict(event.contributions),
        "top_channel": event.top_channel,
        "window_start": format_event_time(event.window_start),
        "window_end": format_event_time(event.window_end),
        "starts_at": format_event_time(event.starts_at),
        "ends_at": None if event.ends_at is None else format_event_time(event.ends_at),
        "model_version": event.model_version,
        "reason": event.reason,
        "input": None if span is None else span.to_dict(),
    }


def alertmanager_alert(
    event: AlertEvent,
    *,
    firing: AlertEvent | None = None,
    generator_url: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """One element of Alertmanager's ``POST /api/v2/alerts`` list.

    ``startsAt`` is the episode's start and, for a resolved event, ``endsAt`` its end (event
    times of the readings, RFC 3339). A firing alert has no ``endsAt``: Alertmanager then
    keeps it for its ``resolve_timeout`` (5 min by default) after each send, which is why the
    bridge re-sends firing alerts. ``firing`` is the firing event a resolved one ends: its
    labels are used, so the resolve reaches the same alert even when the peak severity
    differs. ``generator_url`` (optional) may contain ``{asset}`` and ``{site}``.

    ``now`` (epoch seconds, the bridge passes its wall clock) caps both times: Alertmanager
    refuses a firing alert that starts after ``now + resolve_timeout`` and keeps a resolved
    one active until its ``endsAt``, so event times ahead of the receiver's clock (a skewed
    gateway, a replay at many times real speed) would be refused or resolve late. The event
    times stay in the annotations ``starts_at`` / ``ends_at``.

    Example:
        >>> import streamvae as sv
        >>> e = sv.AlertEvent("resolved", "p1", "pump-7", "warning", "s", 60.0, 660.0, 2.0,
        ...                   1.5, {}, 0.0, 60.0, "v0001", reason="recovered")
        >>> a = alertmanager_alert(e)
        >>> a["startsAt"], a["endsAt"], a["annotations"]["reason"]
        ('1970-01-01T00:01:00.000Z', '1970-01-01T00:11:00.000Z', 'recovered')
    """
    labels = alertmanager_labels(firing if firing is not None else event)
    top = event.top_channel
    annotations = {
        "summary": event.summary,
        "description": (
            f"{event.asset} at {event.site}: score {event.score:.3f} nats per value against "
            f"threshold {event.threshold:.3f} nats per value"
            + (f"; top channel {top}" if top else "")
            + f"; model {event.model_version}"
        ),
        "score": f"{event.score:.6g} nats per value",
        "threshold": f"{event.threshold:.6g} nats per value",
        "contributions": ", ".join(f"{c} {s:.0%}" for c, s in event.contributions.items()),
        "model_version": event.model_version,
        "event_id": event.id,
    }
    if top:
        annotations["top_channel"] = top
    if event.reason is not None:
        annotations["reason"] = event.reason
    annotations["starts_at"] = format_event_time(event.starts_at)
    if event.ends_at is not None:
        annotations["ends_at"] = format_event_time(event.ends_at)
    cap = math.inf if now is None else now
    starts = min(event.starts_at, cap)
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": format_event_time(starts),
    }
    if event.ends_at is not None:
        alert["endsAt"] = format_event_time(max(min(event.ends_at, cap), starts))
    if generator_url:
        alert["generatorURL"] = generator_url.format_map(
            {
                "asset": urllib.parse.quote(event.asset, safe=""),
                "site": urllib.parse.quote(event.site, safe=""),
            }
        )
    return alert


def pagerduty_dedup_key(event: AlertEvent) -> str:
    """The alert's ``dedup_key`` (``streamvae:<site>:<asset>``: one incident per asset and
    episode, trigger and resolve alike); beyond PagerDuty's 255 characters it is shortened
    to a prefix and its SHA-256, the same for every event of the asset.

    Example:
        >>> import streamvae as sv
        >>> e = sv.AlertEvent("firing", "p1", "a" * 300, "warning", "s", 60.0, None, 2.0,
        ...                   1.5, {}, 0.0, 60.0, "v0001")
        >>> len(pagerduty_dedup_key(e))
        255
    """
    key = event.dedup_key
    if len(key) <= DEDUP_KEY_LIMIT:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return key[: DEDUP_KEY_LIMIT - len(digest) - 1] + ":" + digest


def pagerduty_event(
    event: AlertEvent, routing_key: Secret, *, client_url: str | None = None
) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: ``trigger`` for a firing event, ``resolve`` for a
    resolved one, ``dedup_key`` = the alert's dedup key (so the resolve closes the incident
    the trigger opened, and a re-sent trigger updates it instead of paging again).

    A trigger carries ``payload`` (summary cut to 1024 characters, ``source`` the asset,
    ``severity`` mapped onto PagerDuty's critical/error/warning/info, ``timestamp`` the
    event time, ``component`` the top channel, ``group`` the site, ``class`` the alert
    name, ``custom_details`` scores in nats per value, contributions, window, model, input
    offsets). A resolve needs no payload. The routing key is revealed only into this dict.

    Example:
        >>> import streamvae as sv
        >>> e = sv.AlertEvent("firing", "p1", "pump-7", "critical", "x" * 2000, 60.0, None,
        ...                   9.0, 2.0, {"flow": 1.0}, 0.0, 60.0, "v0001")
        >>> ev = pagerduty_event(e, Secret("k" * 32))
        >>> len(ev["payload"]["summary"]), ev["payload"]["severity"], ev["dedup_key"]
        (1024, 'critical', 'streamvae:p1:pump-7')
    """
    out: dict[str, Any] = {
        "routing_key": routing_key.reveal(),
        "event_action": "trigger" if event.status == "firing" else "resolve",
        "dedup_key": pagerduty_dedup_key(event),
    }
    if event.status == "firing":
        payload: dict[str, Any] = {
            "summary": truncate(event.summary, SUMMARY_LIMIT),
            "source": event.asset,
            "severity": _PD_SEVERITY.get(event.severity, "error"),
            "timestamp": event.time,
            "group": event.site,
            "class": event.alertname,
            "custom_details": _details(event),
        }
        if event.top_channel:
            payload["component"] = event.top_channel
        out["payload"] = payload
        out["client"] = "streamvae"
        if client_url:
            out["client_url"] = client_url
    return out


def read_routing_key(path: str | Path) -> Secret:
    """The PagerDuty routing (integration) key from a file of its own (a mounted secret),
    surrounding whitespace stripped; 32 characters. Never logged: a :class:`Secret`.

    Example:
        >>> import os, tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".key", delete=False) as f:
        ...     _ = f.write("short\\n")
        >>> read_routing_key(f.name)
        Traceback (most recent call last):
        ...
        consumers.bridge.BridgeError: --routing-key-file: the file holds 5 characters; a PagerDuty routing key has 32 (Integration Key on the service's Events API v2 integration)
        >>> os.unlink(f.name)
    """  # noqa: E501
    where = "--routing-key-file"
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise BridgeError(f"{where}: no such file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BridgeError(f"{where}: cannot read {str(path)!r}: {exc}") from None
    if len(text) != ROUTING_KEY_LENGTH or any(c.isspace() for c in text):
        raise BridgeError(
            f"{where}: the file holds {len(text)} characters"
            + (" with whitespace inside" if any(c.isspace() for c in text) else "")
            + f"; a PagerDuty routing key has {ROUTING_KEY_LENGTH} (Integration Key on the "
            "service's Events API v2 integration)"
        )
    return Secret(text)


# ---------------------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class Response:
    """What a receiver answered: HTTP ``status``, the ``body`` text, ``retry_after_s`` from
    a ``Retry-After`` header (seconds) when there was one, ``seconds`` the round trip.

    Example:
        >>> classify(Response(202, '{"status":"success"}').status)
        'accepted'
    """

    status: int
    body: str
    retry_after_s: float | None = None
    seconds: float = 0.0


def classify(status: int) -> Literal["accepted", "retry", "rejected"]:
    """2xx is accepted; 408, 425, 429 and 5xx are worth retrying (the receiver is busy or
    broken, the event may be fine); any other status rejects the event for good (a 4xx says
    the request itself is wrong, sending it again gives the same answer).

    Example:
        >>> classify(200), classify(503), classify(429), classify(400)
        ('accepted', 'retry', 'retry', 'rejected')
    """
    if 200 <= status < 300:
        return "accepted"
    if status in (408, 425, 429) or status >= 500:
        return "retry"
    return "rejected"


def retry_after_s(header: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110);
    None when absent or unreadable. ``now`` (epoch seconds) is for the date form.

    Example:
        >>> retry_after_s("7"), retry_after_s("Thu, 01 Jan 1970 00:01:00 GMT", now=30.0)
        (7.0, 30.0)
    """
    if header is None or not header.strip():
        return None
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        current = time.time() if now is None else now
        seconds = when.timestamp() - current
    return max(0.0, seconds) if math.isfinite(seconds) else None


def post_json(
    url: str, body: Any, *, timeout_s: float = 10.0, headers: Mapping[str, str] | None = None
) -> Response:
    """POST ``body`` as JSON with the standard library; any HTTP answer is a
    :class:`Response` (4xx/5xx included); no answer at all (refused, reset, timed out, a
    broken reply) raises :class:`TransientError`.

    Example:
        >>> post_json("http://127.0.0.1:9/", [], timeout_s=1.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        consumers.bridge.TransientError: POST http://127.0.0.1:9/: ...
    """
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "streamvae-bridge")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            text = answer.read().decode("utf-8", errors="replace")
            return Response(answer.status, text, None, time.monotonic() - started)
    except urllib.error.HTTPError as err:
        try:
            text = err.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException):
            text = ""
        hint = retry_after_s(err.headers.get("Retry-After") if err.headers else None)
        return Response(err.code, text, hint, time.monotonic() - started)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise TransientError(f"POST {url}: {reason}") from None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n (from 0) waits ``initial_s × multiplier^n``
    capped at ``max_s``, then scaled by a random factor in [1 − jitter, 1], so bridges that
    lost the same receiver do not come back in lockstep. A receiver's ``Retry-After`` wins
    when it gives one (at most ``max_retry_after_s``). Retries never give up by themselves:
    an alert that is not delivered is not committed; SIGTERM ends the wait.

    Example:
        >>> p = RetryPolicy(initial_s=1.0, max_s=8.0, jitter=0.0)
        >>> [p.delay(n, random.Random(0)) for n in range(5)]
        [1.0, 2.0, 4.0, 8.0, 8.0]
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_retry_after_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("initial_s", "max_s", "max_retry_after_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"RetryPolicy.{name} must be a positive number of seconds")
        if self.max_s < self.initial_s:
            raise ValueError(
                f"RetryPolicy.max_s ({self.max_s} s) must be >= initial_s ({self.initial_s} s)"
            )
        if not self.multiplier >= 1.0:
            raise ValueError(f"RetryPolicy.multiplier must be >= 1, got {self.multiplier}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"RetryPolicy.jitter must be in [0, 1], got {self.jitter}")

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        base = min(self.max_s, self.initial_s * self.multiplier ** min(attempt, 64))
        return base * (1.0 - self.jitter * rng.random())


# ---------------------------------------------------------------------------- state


Verdict = Literal["new", "duplicate", "stale"]
_RANK: Final = {"firing": 0, "resolved": 1}


class AlertLedger:
    """What a bridge knows about the alerts of the partitions it owns, rebuilt from the topic
    after every (re)start or rebalance.

    - ``seen``: event ids already handled, at most ``capacity`` of them (oldest forgotten
      first), so a duplicate (the topic is at-least-once) is not delivered twice;
    - ``firing``: per dedup key, the firing event of the episode in progress (what
      Alertmanager must be re-sent; a resolve is sent with its labels);
    - a per-key guard, bounded by the number of assets: an event older than the latest
      episode step seen for its key (a replayed firing event after its resolve, a resolve of
      an earlier episode) is ``stale`` and skipped, even once its id was forgotten.

    Example:
        >>> import streamvae as sv
        >>> f = sv.AlertEvent("firing", "p1", "pump-7", "warning", "s", 60.0, None, 2.0,
        ...                   1.5, {}, 0.0, 60.0, "v0001")
        >>> ledger = AlertLedger(capacity=100)
        >>> ledger.verdict(f)
        'new'
        >>> ledger.record(f, partition=0)
        >>> ledger.verdict(f), [e.asset for e in ledger.firing()]
        ('duplicate', ['pump-7'])
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"AlertLedger capacity must be >= 1 event id, got {capacity}")
        self.capacity = capacity
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._progress: dict[str, tuple[float, int]] = {}
        self._firing: dict[str, tuple[int, AlertEvent]] = {}

    def verdict(self, event: AlertEvent) -> Verdict:
        """``new`` (deliver it), ``duplicate`` (its id was handled) or ``stale`` (an earlier
        step of its key's lifecycle than one already handled)."""
        if event.id in self._seen:
            return "duplicate"
        last = self._progress.get(event.dedup_key)
        if last is not None and (event.starts_at, _RANK[event.status]) <= last:
            return "stale"
        return "new"

    def record(self, event: AlertEvent, partition: int, *, accepted: bool = True) -> None:
        """Remember ``event`` as handled: delivered, or read from the history before the
        committed offset; ``accepted=False`` for one the receiver rejected for good (never
        re-sent as firing)."""
        self._seen[event.id] = None
        self._seen.move_to_end(event.id)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        step = (event.starts_at, _RANK[event.status])
        if step > self._progress.get(event.dedup_key, (-math.inf, -1)):
            self._progress[event.dedup_key] = step
            if event.status == "firing" and accepted:
                self._firing[event.dedup_key] = (partition, event)
            else:
                self._firing.pop(event.dedup_key, None)

    @property
    def firing_count(self) -> int:
        """How many alerts are firing (safe to read from another thread)."""
        return len(self._firing)

    def firing_event(self, dedup_key: str) -> AlertEvent | None:
        """The firing event of the episode in progress for ``dedup_key``, if any."""
        held = self._firing.get(dedup_key)
        return None if held is None else held[1]

    def firing(self, partition: int | None = None) -> list[AlertEvent]:
        """Firing events now (of one partition, or all), oldest episode first."""
        held = [e for p, e in self._firing.values() if partition is None or p == partition]
        return sorted(held, key=lambda e: (e.starts_at, e.dedup_key))

    def drop_partition(self, partition: int) -> None:
        """Forget the firing alerts of a partition this bridge no longer owns (its new owner
        re-sends them); seen ids stay (they only ever save a delivery)."""
        for key in [k for k, (p, _) in self._firing.items() if p == partition]:
            del self._firing[key]
            self._progress.pop(key, None)


# ---------------------------------------------------------------------------- targets


def _http_url(url: str, flag: str) -> str:
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BridgeError(
            f"{flag}: {url!r} is not an http(s) URL; give scheme, host and port, e.g. "
            "http://alertmanager:9093"
        )
    return url.strip().rstrip("/")


class Target(Protocol):
    """Where a bridge sends alerts (:class:`AlertmanagerTarget`, :class:`PagerDutyTarget`):
    ``send`` one event (with the firing event a resolved one ends), ``resend`` the firing
    ones every ``resend_interval_s`` seconds (None: the receiver needs no re-sends).

    Example:
        >>> [t.resend_interval_s for t in (AlertmanagerTarget("http://am:9093"),
        ...                                PagerDutyTarget(Secret("k" * 32)))]
        [60.0, None]
    """

    kind: str
    url: str
    resend_interval_s: float | None

    def send(self, event: AlertEvent, firing: AlertEvent | None) -> Response: ...

    def resend(self, events: Sequence[AlertEvent]) -> Response: ...


class AlertmanagerTarget:
    """Alertmanager's ``POST <url>/api/v2/alerts``; firing alerts are re-sent every
    ``resend_interval_s`` (keep it well below Alertmanager's ``resolve_timeout``, 5 min by
    default, or a quiet firing alert resolves itself there).

    Example:
        >>> AlertmanagerTarget("http://am:9093/").endpoint
        'http://am:9093/api/v2/alerts'
    """

    kind = "alertmanager"

    def __init__(
        self,
        url: str,
        *,
        resend_interval_s: float = 60.0,
        generator_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = _http_url(url, "--url")
        path = "/api/v2/alerts"
        self.endpoint = self.url if self.url.endswith(path) else self.url + path
        if not (math.isfinite(resend_interval_s) and resend_interval_s > 0):
            raise BridgeError(
                f"--resend-interval must be a positive number of seconds, got {resend_interval_s}"
            )
        self.resend_interval_s: float | None = resend_interval_s
        if generator_url is not None:
            try:
                example = generator_url.format_map({"asset": "a", "site": "s"})
            except (KeyError, ValueError, IndexError) as exc:
                raise BridgeError(
                    f"--generator-url: {generator_url!r} may only use {{asset}} and {{site}} "
                    f"placeholders ({exc!r}); write a literal brace as {{{{ or }}}}"
                ) from None
            _http_url(example, "--generator-url")
        self.generator_url = generator_url
        self.timeout_s = timeout_s

    def send(self, event: AlertEvent, firing: AlertEvent | None) -> Response:
        alert = alertmanager_alert(
            event, firing=firing, generator_url=self.generator_url, now=time.time()
        )
        return post_json(self.endpoint, [alert], timeout_s=self.timeout_s)

    def resend(self, events: Sequence[AlertEvent]) -> Response:
        now = time.time()
        alerts = [alertmanager_alert(e, generator_url=self.generator_url, now=now) for e in events]
        return post_json(self.endpoint, alerts, timeout_s=self.timeout_s)


class PagerDutyTarget:
    """PagerDuty Events API v2: ``POST <url>/v2/enqueue`` (``url`` defaults to the public
    endpoint; point it at a proxy or a test server). The routing key stays a
    :class:`~consumers.settings.Secret`: never in a repr or a log line.

    Example:
        >>> t = PagerDutyTarget(Secret("k" * 32), url="http://127.0.0.1:8080")
        >>> t.endpoint, t
        ('http://127.0.0.1:8080/v2/enqueue', PagerDutyTarget(url='http://127.0.0.1:8080', routing_key='********'))
    """  # noqa: E501

    kind = "pagerduty"
    resend_interval_s: float | None = None  # PagerDuty keeps an incident open until resolved

    def __init__(
        self,
        routing_key: Secret,
        *,
        url: str = PAGERDUTY_EVENTS_URL,
        client_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = _http_url(url, "--url")
        self.endpoint = self.url if self.url.endswith("/v2/enqueue") else self.url + "/v2/enqueue"
        self._key = routing_key
        self.client_url = client_url
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"PagerDutyTarget(url={self.url!r}, routing_key='********')"

    def send(self, event: AlertEvent, firing: AlertEvent | None) -> Response:
        body = pagerduty_event(event, self._key, client_url=self.client_url)
        return post_json(self.endpoint, body, timeout_s=self.timeout_s)

    def resend(self, events: Sequence[AlertEvent]) -> Response:
        raise NotImplementedError("PagerDuty keeps incidents open: nothing is re-sent")


# ---------------------------------------------------------------------------- the loop


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    """How a bridge runs: its consumer ``group``, delivery ``retry``, ``dedupe_capacity``
    (event ids remembered), ``progress_interval_s`` between progress lines, ``poll_ms``;
    ``metrics_port`` serves Prometheus metrics on ``metrics_host`` (-1 off, 0 any free port).

    Example:
        >>> BridgeOptions(group="streamvae.bridge.pagerduty").dedupe_capacity
        10000
    """

    group: str
    retry: RetryPolicy = RetryPolicy()
    dedupe_capacity: int = 10_000
    progress_interval_s: float = 60.0
    poll_ms: int = 500
    metrics_host: str = "127.0.0.1"
    metrics_port: int = -1

    def __post_init__(self) -> None:
        if not self.group.strip():
            raise BridgeError("--group: the consumer group must not be empty")
        if self.dedupe_capacity < 1:
            raise BridgeError(f"dedupe capacity must be >= 1 event id, got {self.dedupe_capacity}")
        if not (math.isfinite(self.progress_interval_s) and self.progress_interval_s > 0):
            raise BridgeError("the progress interval must be a positive number of seconds")
        if self.poll_ms < 1:
            raise BridgeError(f"poll_ms must be >= 1 ms, got {self.poll_ms}")
        if not -1 <= self.metrics_port <= 65535:
            raise BridgeError(
                f"--metrics-port: -1 (off), 0 (any free port) or 1..65535, got {self.metrics_port}"
            )


@dataclass(slots=True)
class BridgeStats:
    """Counters of one bridge run (logged with every progress line and at exit).

    ``delivered``: accepted by the receiver; ``rejected``: refused for good (a 4xx other
    than 429), logged and skipped; ``duplicates`` / ``stale``: not sent again (see
    :class:`AlertLedger`); ``undecodable``: records that are not our alert schema;
    ``retries``: failed attempts retried; ``resends`` / ``resend_failures``: Alertmanager
    re-send requests.

    Example:
        >>> BridgeStats().delivered
        0
    """

    delivered: int = 0
    rejected: int = 0
    duplicates: int = 0
    stale: int = 0
    undecodable: int = 0
    retries: int = 0
    resends: int = 0
    resend_failures: int = 0
    caught_up: int = 0
    delivery_seconds: float = 0.0

    def line(self) -> str:
        mean = 1000 * self.delivery_seconds / self.delivered if self.delivered else 0.0
        return (
            f"{self.delivered} delivered (mean {mean:.0f} ms), {self.rejected} rejected, "
            f"{self.duplicates} duplicate(s) and {self.stale} stale skipped, "
            f"{self.undecodable} undecodable, {self.retries} retried attempt(s), "
            f"{self.resends} re-send(s) ({self.resend_failures} failed)"
        )


class _StatsCollector(Collector):
    """Prometheus view of a bridge's :class:`BridgeStats`, read at scrape time (one set of
    counters, no double bookkeeping)."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def collect(self) -> Iterator[Metric]:
        s, kind = self.bridge.stats, self.bridge.target.kind
        events = CounterMetricFamily(
            "streamvae_bridge_events",
            "Alert events read from the alert topic, by what became of them",
            labels=["receiver", "outcome"],
        )
        for outcome, value in (
            ("delivered", s.delivered),
            ("rejected", s.rejected),
            ("duplicate", s.duplicates),
            ("stale", s.stale),
            ("undecodable", s.undecodable),
        ):
            events.add_metric([kind, outcome], value)
        yield events
        retries = CounterMetricFamily(
            "streamvae_bridge_retries", "Failed delivery attempts retried", labels=["receiver"]
        )
        retries.add_metric([kind], s.retries)
        yield retries
        resends = CounterMetricFamily(
            "streamvae_bridge_resends",
            "Re-send requests of the firing alerts (Alertmanager)",
            labels=["receiver", "result"],
        )
        resends.add_metric([kind, "ok"], s.resends - s.resend_failures)
        resends.add_metric([kind, "failed"], s.resend_failures)
        yield resends
        seconds = CounterMetricFamily(
            "streamvae_bridge_delivery_seconds",
            "Seconds spent in accepted deliveries (divide by delivered events for the mean)",
            labels=["receiver"],
        )
        seconds.add_metric([kind], s.delivery_seconds)
        yield seconds
        firing = GaugeMetricFamily(
            "streamvae_bridge_firing_alerts", "Alerts firing now", labels=["receiver"]
        )
        firing.add_metric([kind], self.bridge.ledger.firing_count)
        yield firing


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    # kafka-python runs these on its network loop: record, do the work after poll() returns.
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        with self.bridge._lock:
            self.bridge._revoked.update(revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        with self.bridge._lock:
            self.bridge._assigned.update(assigned)


_Outcome = Literal["accepted", "rejected", "abandoned"]


class Bridge:
    """The alert topic (``kafka.alert_topic``) → one receiver, at least once, in order per
    partition, without duplicate pages (module docstring). :meth:`run` blocks until
    :meth:`stop` (from a signal handler or another thread) and returns the exit code.

    Example:
        >>> # settings = Settings.load("streamvae.toml")
        >>> # target = AlertmanagerTarget("http://alertmanager:9093")
        >>> # bridge = Bridge(settings, target, BridgeOptions(group="streamvae.bridge.am"))
        >>> # raise SystemExit(bridge.run())
    """

    def __init__(
        self,
        settings: Settings,
        target: Target,
        options: BridgeOptions,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.target, self.options = settings, target, options
        self.topic = settings.kafka.alert_topic
        self.stats = BridgeStats()
        self.ledger = AlertLedger(options.dedupe_capacity)
        self.ready = threading.Event()  # set once the first assignment is caught up
        self._rng = rng or random.Random()
        self._clock = clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._revoked: set[TopicPartition] = set()
        self._assigned: set[TopicPartition] = set()
        self._owned: set[TopicPartition] = set()
        self._pending: dict[TopicPartition, int] = {}  # next offset to commit
        self._next_resend = math.inf
        self._next_progress = 0.0
        self.metrics_url: str | None = None  # once run() serves metrics

    def stop(self) -> None:
        """Ask :meth:`run` to finish the request in flight, commit and return (thread-safe,
        async-signal-safe enough for a signal handler: it only sets an event)."""
        self._stop.set()

    # -- kafka

    def _kwargs(self) -> dict[str, Any]:
        k = self.settings.kafka
        return {
            "bootstrap_servers": list(k.bootstrap_servers),
            "client_id": f"{k.client_id}.bridge.{self.target.kind}",
            "request_timeout_ms": k.request_timeout_ms,
            **k.security.kafka_kwargs(),
        }

    def _consumer(self) -> KafkaConsumer:
        k = self.settings.kafka
        consumer = KafkaConsumer(
            group_id=self.options.group,
            enable_auto_commit=False,
            # A partition the group never committed is moved to its end by _catch_up (the
            # past is rebuilt from the history, only what fires now is delivered); "earliest"
            # applies when a committed offset fell out of retention: deliver, do not skip.
            auto_offset_reset="earliest",
            max_poll_records=500,
            session_timeout_ms=k.session_timeout_ms,
            heartbeat_interval_ms=k.heartbeat_interval_ms,
            max_poll_interval_ms=k.max_poll_interval_ms,
            fetch_max_wait_ms=k.fetch_max_wait_ms,
            **self._kwargs(),
        )
        consumer.subscribe([self.topic], listener=_Listener(self))
        return consumer

    def _history(
        self, ends: Mapping[TopicPartition, int | None]
    ) -> tuple[dict[TopicPartition, list[Any]], dict[TopicPartition, int]]:
        """Every record of each partition before its offset in ``ends`` (None: to the end of
        the partition now), read without a group; and where each read stopped.

        "The end" is where the reader's position passes the broker's end offset, not the end
        offset itself: some Kafka-protocol brokers (Tansu 0.6) report the last batch's base
        offset + 1 there, short of the records in that batch; positions move by whole
        batches, so they land on the true end either way."""
        out: dict[TopicPartition, list[Any]] = {tp: [] for tp in ends}
        if not ends:
            return out, {}
        reader = KafkaConsumer(group_id=None, enable_auto_commit=False, **self._kwargs())
        try:
            parts = list(ends)
            reader.assign(parts)
            reader.seek_to_beginning(*parts)
            latest = reader.end_offsets(parts)
            targets = {tp: latest[tp] if e is None else e for tp, e in ends.items()}
            deadline = self._clock() + 120.0
            while any(reader.position(tp) < end for tp, end in targets.items()):
                if self._stop.is_set():
                    break
                if self._clock() > deadline:
                    raise KafkaError(
                        f"reading the history of {self.topic} took over 120 s; is the broker "
                        "reachable and the topic readable by this principal? (Or the group's "
                        "committed offset lies beyond the partition's end, as after a topic "
                        "was recreated: reset the bridge group's offsets.)"
                    )
                for tp, batch in reader.poll(timeout_ms=500).items():
                    stop_at = ends[tp]
                    out[tp].extend(r for r in batch if stop_at is None or r.offset < stop_at)
            bounds = {tp: reader.position(tp) if e is None else e for tp, e in ends.items()}
        finally:
            reader.close()
        return out, bounds

    def _decode(self, record: Any) -> AlertEvent | None:
        try:
            return AlertEvent.from_cloudevent(json.loads(record.value))
        except (InputError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            # Bad input never stops the stream (DESIGN §5): json.loads of a tombstone is a
            # TypeError, of 100,000 nested brackets a RecursionError.
            self.stats.undecodable += 1
            _log.warning(
                "skipping %s/%d@%d: not a streamvae alert event (%s)",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return None

    def _take_rebalance(self) -> tuple[set[TopicPartition], set[TopicPartition]]:
        with self._lock:
            revoked, assigned = set(self._revoked), set(self._assigned)
            self._revoked.clear()
            self._assigned.clear()
        return revoked, assigned

    def _apply_revocations(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self._owned.discard(tp)
            self._pending.pop(tp, None)
            self.ledger.drop_partition(tp.partition)
        if revoked:
            _log.info("partitions revoked: %s", _names(revoked))

    def _catch_up(
        self,
        consumer: KafkaConsumer,
        assigned: set[TopicPartition],
        records: Mapping[TopicPartition, list[Any]],
    ) -> dict[TopicPartition, list[Any]] | None:
        """Rebuild the ledger of newly assigned partitions from their history before the
        group's committed offset. A partition the group never committed is read to its end
        and continues from there, delivering only the alerts firing at that point (not the
        past). Returns ``records`` without those now read as history; None when stopped."""
        started = self._clock()
        ends: dict[TopicPartition, int | None] = {tp: consumer.committed(tp) for tp in assigned}
        fresh = {tp for tp, end in ends.items() if end is None}
        history, bounds = self._history(ends)
        if self._stop.is_set():
            return None
        count = 0
        for tp, batch in history.items():
            for record in batch:
                event = self._decode(record)
                if event is not None:
                    self.ledger.record(event, tp.partition)
                    count += 1
        self._owned |= assigned
        self.stats.caught_up += count
        _log.info(
            "assigned %s: read %d earlier event(s) in %.0f ms; %d alert(s) firing",
            _names(assigned),
            count,
            1000 * (self._clock() - started),
            self.ledger.firing_count,
        )
        kept = dict(records)
        for tp in sorted(fresh, key=lambda t: t.partition):
            bound = bounds[tp]
            polled = kept.pop(tp, [])
            if polled and polled[-1].offset >= bound:
                kept[tp] = [r for r in polled if r.offset >= bound]
            else:
                consumer.seek(tp, bound)
            now_firing = self.ledger.firing(tp.partition)
            if now_firing:
                _log.info(
                    "%s/%d: this group never committed here; delivering the %d alert(s) firing "
                    "at offset %d, not the past",
                    tp.topic,
                    tp.partition,
                    len(now_firing),
                    bound,
                )
            for event in now_firing:
                if self._deliver(consumer, event, tp) == "abandoned":
                    return None
            self._pending[tp] = bound
        self._commit(consumer)
        if self.target.resend_interval_s is not None:
            self._next_resend = self._clock()  # Alertmanager: re-send what is firing, now
        return kept

    def _commit(self, consumer: KafkaConsumer) -> None:
        owned = {tp: o for tp, o in self._pending.items() if not self._lost(tp)}
        self._pending.clear()
        if not owned:
            return
        try:
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in owned.items()})
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on (a rebalance): the next owner re-sends from the last commit,
            # and the receivers' dedup (PagerDuty dedup_key, Alertmanager labels) absorbs it.
            _log.warning("commit failed (%s); the partition's next owner re-sends", exc)

    # -- delivery

    def _wait(self, consumer: KafkaConsumer, seconds: float, tp: TopicPartition) -> bool:
        """Sleep ``seconds`` while the group keeps this member (paused polls). False when
        stopped or when ``tp`` was revoked meanwhile."""
        deadline = self._clock() + seconds
        held = consumer.assignment()
        consumer.pause(*held)
        try:
            while not self._stop.is_set():
                left = deadline - self._clock()
                if left <= 0:
                    break
                got = consumer.poll(timeout_ms=max(1, int(min(left, 0.5) * 1000)))
                for part, batch in got.items():  # new partitions are not paused: hand back
                    consumer.seek(part, batch[0].offset)
                with self._lock:
                    if tp in self._revoked:
                        return False
        finally:
            mine = consumer.assignment()
            consumer.resume(*(p for p in held if p in mine))
        return not self._stop.is_set()

    def _deliver(self, consumer: KafkaConsumer, event: AlertEvent, tp: TopicPartition) -> _Outcome:
        firing = self.ledger.firing_event(event.dedup_key) if event.status == "resolved" else None
        attempt = 0
        what = f"{event.status} {event.asset} ({event.dedup_key})"
        while True:
            hint: float | None = None
            try:
                answer = self.target.send(event, firing)
            except TransientError as exc:
                problem = str(exc)
            else:
                verdict = classify(answer.status)
                if verdict == "accepted":
                    self.stats.delivered += 1
                    self.stats.delivery_seconds += answer.seconds
                    _log.info(
                        "delivered %s to %s in %.0f ms (HTTP %d)%s",
                        what,
                        self.target.kind,
                        1000 * answer.seconds,
                        answer.status,
                        f" after {attempt} retried attempt(s)" if attempt else "",
                    )
                    return "accepted"
                if verdict == "rejected":
                    self.stats.rejected += 1
                    _log.error(
                        "%s rejected %s for good (HTTP %d: %s); skipped and counted as "
                        "rejected (the event stays on %s/%d for a manual re-send)",
                        self.target.kind,
                        what,
                        answer.status,
                        truncate(answer.body.strip() or "no body", _BODY_SHOWN),
                        tp.topic,
                        tp.partition,
                    )
                    return "rejected"
                problem = f"HTTP {answer.status}: {truncate(answer.body.strip(), _BODY_SHOWN)}"
                hint = answer.retry_after_s
            delay = self.options.retry.delay(attempt, self._rng, hint)
            attempt += 1
            self.stats.retries += 1
            _log.warning(
                "%s did not accept %s (%s); retry %d in %.1f s%s",
                self.target.kind,
                what,
                problem,
                attempt,
                delay,
                " (its Retry-After)" if hint is not None else "",
            )
            self._commit(consumer)  # what was accepted before this one is safe meanwhile
            if not self._wait(consumer, delay, tp):
                _log.warning(
                    "gave up on %s for now (%s); not committed, so it is sent again by the "
                    "next run or owner",
                    what,
                    "stopping" if self._stop.is_set() else "partition revoked",
                )
                return "abandoned"

    def _lost(self, tp: TopicPartition) -> bool:
        with self._lock:
            return tp not in self._owned or tp in self._revoked

    def _handle(self, consumer: KafkaConsumer, tp: TopicPartition, batch: Sequence[Any]) -> None:
        """Deliver a partition's records in order, until the bridge stops or loses ``tp``
        (the rest is not committed: it is read again by the next run or owner)."""
        for record in batch:
            if self._stop.is_set() or self._lost(tp):
                return
            event = self._decode(record)
            if event is not None:
                verdict = self.ledger.verdict(event)
                if verdict == "new":
                    outcome = self._deliver(consumer, event, tp)
                    if outcome == "abandoned":
                        return
                    self.ledger.record(event, tp.partition, accepted=outcome == "accepted")
                else:
                    if verdict == "duplicate":
                        self.stats.duplicates += 1
                    else:
                        self.stats.stale += 1
                    _log.info(
                        "skipping %s %s (%s): %s",
                        event.status,
                        event.asset,
                        event.id[:12],
                        "its id was already handled"
                        if verdict == "duplicate"
                        else "a later step of this alert was already handled",
                    )
            self._pending[tp] = record.offset + 1

    def _resend(self) -> None:
        if self.target.resend_interval_s is None or self._clock() < self._next_resend:
            return
        firing = self.ledger.firing()
        ok = True
        for start in range(0, len(firing), _RESEND_BATCH):
            chunk = firing[start : start + _RESEND_BATCH]
            try:
                answer = self.target.resend(chunk)
                problem = "" if classify(answer.status) == "accepted" else f"HTTP {answer.status}"
            except TransientError as exc:
                problem = str(exc)
            self.stats.resends += 1
            if problem:
                ok = False
                self.stats.resend_failures += 1
                _log.warning(
                    "re-sending %d firing alert(s) to %s failed (%s); trying again in %.0f s",
                    len(chunk),
                    self.target.kind,
                    problem,
                    min(self.target.resend_interval_s, self.options.retry.max_s),
                )
        if firing and ok:
            _log.debug("re-sent %d firing alert(s) to %s", len(firing), self.target.kind)
        interval = self.target.resend_interval_s
        self._next_resend = self._clock() + (
            interval if ok else min(interval, self.options.retry.max_s)
        )

    def _progress(self, started: float) -> None:
        now = self._clock()
        if now < self._next_progress:
            return
        self._next_progress = now + self.options.progress_interval_s
        if now - started < 1.0:
            return
        _log.info(
            "bridge %s after %.0f s: %s; %d alert(s) firing",
            self.target.kind,
            now - started,
            self.stats.line(),
            len(self.ledger.firing()),
        )

    def _serve_metrics(self) -> Any:
        if self.options.metrics_port < 0:
            return None
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_StatsCollector(self))
        host, port = self.options.metrics_host, self.options.metrics_port
        try:
            server, _ = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise BridgeError(
                f"--metrics-port: cannot serve metrics on {host}:{port} ({exc}); pick a free "
                "port, 0 for any, or -1 for none"
            ) from None
        self.metrics_url = f"http://{host}:{server.server_address[1]}/metrics"
        _log.info("serving Prometheus metrics on %s", self.metrics_url)
        return server

    def run(self) -> int:
        """Consume, deliver, commit until :meth:`stop`; 0 after a clean stop."""
        started = self._clock()
        self._next_progress = started + self.options.progress_interval_s
        _log.info(
            "bridge %s: %s → %s as group %s (retry %.1f–%.0f s, re-send %s)",
            self.target.kind,
            self.topic,
            self.target.url,
            self.options.group,
            self.options.retry.initial_s,
            self.options.retry.max_s,
            "off"
            if self.target.resend_interval_s is None
            else f"every {self.target.resend_interval_s:g} s",
        )
        server = self._serve_metrics()
        consumer = self._consumer()
        if not consumer.partitions_for_topic(self.topic):
            _log.warning(
                "the alert topic %s does not exist (yet); waiting for it (is kafka.alert_topic "
                "the one `streamvae run` publishes to?)",
                self.topic,
            )
        try:
            while not self._stop.is_set():
                records = consumer.poll(timeout_ms=self.options.poll_ms)
                revoked, assigned = self._take_rebalance()
                self._apply_revocations(revoked)
                if assigned:
                    kept = self._catch_up(consumer, assigned, records)
                    if kept is None:
                        break
                    records = kept
                    self.ready.set()
                for tp, batch in records.items():
                    if self._stop.is_set():
                        break
                    self._handle(consumer, tp, batch)
                self._commit(consumer)
                self._resend()
                self._progress(started)
        finally:
            self._commit(consumer)
            consumer.close()
            if server is not None:
                server.shutdown()
                server.server_close()
            _log.info(
                "bridge %s stopped after %.0f s: %s",
                self.target.kind,
                self._clock() - started,
                self.stats.line(),
            )
        return 0


def _names(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(tps, key=lambda t: t.partition))


def default_group(settings: Settings, kind: str) -> str:
    """``<kafka.group_id>.bridge.<kind>``: a bridge's own consumer group.

    Example:
        >>> s = Settings.load(env={"STREAMVAE_KAFKA_BOOTSTRAP_SERVERS": "k:9092",
        ...     "STREAMVAE_KAFKA_TOPICS": "t", "STREAMVAE_DETECTOR_WINDOW_CHANNELS": "a"})
        >>> default_group(s, "pagerduty")
        'streamvae.bridge.pagerduty'
    """
    return f"{settings.kafka.group_id}.bridge.{kind}"


def run_cli(args: argparse.Namespace) -> int:
    """``streamvae bridge alertmanager|pagerduty``: settings, logging, signals, the loop.

    SIGTERM and SIGINT stop it cleanly (exit 0); a bad flag, file or setting raises
    :class:`BridgeError` or :class:`~consumers.settings.SettingsError` before anything
    connects.

    Example:
        >>> # streamvae bridge alertmanager --url http://127.0.0.1:9093 --config streamvae.toml
    """
    import faulthandler
    import signal

    from consumers.logs import setup_logging

    settings = Settings.load(args.config)
    setup_logging(args.log_format or settings.run.log_format, settings.run.log_level)
    target: Target
    if args.receiver == "alertmanager":
        target = AlertmanagerTarget(
            args.url,
            resend_interval_s=args.resend_interval,
            generator_url=args.generator_url,
            timeout_s=args.timeout,
        )
    else:
        target = PagerDutyTarget(
            read_routing_key(args.routing_key_file),
            url=args.url or PAGERDUTY_EVENTS_URL,
            client_url=args.client_url,
            timeout_s=args.timeout,
        )
    try:
        retry = RetryPolicy(initial_s=args.retry_initial, max_s=args.retry_max)
    except ValueError as exc:
        raise BridgeError(f"--retry-initial/--retry-max: {exc}") from None
    options = BridgeOptions(
        group=args.group or default_group(settings, target.kind),
        retry=retry,
        progress_interval_s=args.progress_interval,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
    )
    bridge = Bridge(settings, target, options)

    def on_signal(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        _log.info("received %s: finishing the request in flight, committing, leaving", name)
        bridge.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    faulthandler.register(signal.SIGUSR1)
    try:
        return bridge.run()
    except KafkaError as exc:
        raise BridgeError(
            f"Kafka: {exc!r}; check kafka.bootstrap_servers and kafka.security, and that "
            f"{settings.kafka.alert_topic} exists"
        ) from None
