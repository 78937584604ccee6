"""Prometheus metrics and the liveness/readiness endpoints of the Kafka service.

Every :class:`ServiceMetrics` owns a private :class:`~prometheus_client.CollectorRegistry`
instead of registering into prometheus_client's process-global default registry: the global
one refuses a second metric of the same name, so two service instances in one process (or
two tests) would collide, and it also exports process/platform collectors that this service
does not promise. :class:`HealthServer` serves that registry, plus ``/healthz`` and
``/readyz``, from the standard library's HTTP server in a daemon thread, so the endpoints
keep answering while the Kafka loop is busy and need no extra dependency.

Liveness and readiness answer different questions on purpose. ``/healthz`` only says "the
process loop still turns" (the loop calls :meth:`HealthServer.beat`); it never asks the
broker, because a broker outage is not cured by restarting every consumer, and Kubernetes
restarts a pod whose liveness probe fails. ``/readyz`` says "this instance can do useful
work" (model and state loaded, partitions assigned) and is what a rolling update waits for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final, Self, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

__all__ = ["HealthServer", "ServiceMetrics"]

_log = logging.getLogger("streamvae.metrics")

OTHER_ASSET: Final = "_other"
"""The ``asset`` label of the one series that aggregates the thresholds not exported alone."""

# One scoring batch: a handful of windows through a small CPU model takes well under a
# millisecond, a large batch or a cold model seconds.
_INFERENCE_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
# Kafka timestamp to alert: milliseconds when the consumer keeps up, up to a minute while
# it catches up after a restart or a rebalance (beyond that, consumer lag says more).
_END_TO_END_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
# One poll batch (deserialise, window, score, alert, commit): milliseconds to tens of seconds.
_BATCH_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

_POLL_INTERVAL_S: Final = 0.05  # how fast serve_forever notices stop(); the default is 0.5 s
_MAX_DISCARDED_BODY: Final = 64 * 1024


class ServiceMetrics:
    """All ``streamvae_*`` metrics of one service instance, in its own registry.

    Attributes are prometheus_client metric objects, updated directly by the service
    (``m.records_consumed.labels(topic=..., partition=...).inc()``); they are thread-safe, so
    the Kafka loop can update them while :class:`HealthServer` scrapes. Per-asset thresholds
    are the exception: they go through :meth:`set_thresholds`, which bounds their cardinality
    (a fleet of 10,000 assets must not become 10,000 time series in Prometheus).

    Example:
        >>> m = ServiceMetrics()
        >>> m.records_consumed.labels(topic="t", partition="0").inc()
        >>> b"streamvae_records_consumed_total" in m.exposition()
        True
    """

    def __init__(self, max_threshold_assets: int = 100) -> None:
        if (
            isinstance(max_threshold_assets, bool)
            or not isinstance(max_threshold_assets, int)
            or max_threshold_assets < 1
        ):
            raise ValueError(
                f"max_threshold_assets must be an integer >= 1, got {max_threshold_assets!r}"
            )
        self.max_threshold_assets: Final = max_threshold_assets
        self.registry: Final = CollectorRegistry()
        r = self.registry

        self.records_consumed: Final = Counter(
            "streamvae_records_consumed",
            "Records read from Kafka, per topic and partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.records_invalid: Final = Counter(
            "streamvae_records_invalid",
            "Records that could not be used, by reason code (e.g. invalid_json).",
            ["reason"],
            registry=r,
        )
        self.dlq_records: Final = Counter(
            "streamvae_dlq_records", "Records written to the dead-letter topic.", registry=r
        )
        self.windows_scored: Final = Counter(
            "streamvae_windows_scored", "Windows scored by the model.", registry=r
        )
        self.records_processed: Final = Counter(
            "streamvae_records_processed",
            "Records fully processed (decoded, scored or dead-lettered, alerts sent).",
            registry=r,
        )
        self.alerts: Final = Counter(
            "streamvae_alerts",
            "Alert events published, by status (firing/resolved).",
            ["status"],
            registry=r,
        )
        self.commits: Final = Counter(
            "streamvae_commits",
            "Kafka offset commits, by result (ok/error).",
            ["result"],
            registry=r,
        )
        self.checkpoints: Final = Counter(
            "streamvae_checkpoints",
            "State checkpoints written, by result (ok/error).",
            ["result"],
            registry=r,
        )
        self.retrains: Final = Counter(
            "streamvae_retrains",
            "Retrains of the group's model finished on this instance, by result "
            "(promoted/rejected).",
            ["result"],
            registry=r,
        )
        self.models_refused: Final = Counter(
            "streamvae_models_refused",
            "Artefacts on the models topic refused (unreadable, tampered, or for other windows); "
            "the current model keeps serving",
            ["reason"],
            registry=r,
        )
        self.model_swaps: Final = Counter(
            "streamvae_model_swaps",
            "Newer group models this instance swapped its detectors to (from the models topic).",
            registry=r,
        )
        self.rebalances: Final = Counter(
            "streamvae_rebalances",
            "Consumer-group rebalance callbacks, by kind (assigned/revoked).",
            ["kind"],
            registry=r,
        )
        self.partitions_paused: Final = Counter(
            "streamvae_backpressure_pauses",
            "Times partitions were paused because too many records were in flight.",
            registry=r,
        )

        self.consumer_lag: Final = Gauge(
            "streamvae_consumer_lag_records",
            "Records between the last processed offset and the end of each partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.active_alerts: Final = Gauge(
            "streamvae_active_alerts", "Assets with a firing alert.", registry=r
        )
        self.assigned_partitions: Final = Gauge(
            "streamvae_assigned_partitions", "Partitions assigned to this instance.", registry=r
        )
        self.in_flight_records: Final = Gauge(
            "streamvae_in_flight_records",
            "Records consumed but not yet processed (backpressure pauses above a limit).",
            registry=r,
        )
        self.threshold: Final = Gauge(
            "streamvae_threshold_nats",
            f"Current anomaly threshold per asset (nats); at most {max_threshold_assets} series,"
            f' the rest aggregated as asset="{OTHER_ASSET}" (their maximum).',
            ["asset"],
            registry=r,
        )
        self.model_info: Final = Info("streamvae_model", "The model being served.", registry=r)
        self.warmup_progress: Final = Gauge(
            "streamvae_warmup_progress_ratio",
            "How far the first model's warm-up is (0..1; 1 once every active shard scores): "
            "the least advanced shard that has readings.",
            registry=r,
        )
        self.training_progress: Final = Gauge(
            "streamvae_first_training_progress_ratio",
            "Epochs of the first model's training done over the maximum (0..1; early "
            "stopping jumps to 1).",
            registry=r,
        )
        self.scores_published: Final = Counter(
            "streamvae_scores_published",
            "Scored windows sent to kafka.scores_topic (when set).",
            registry=r,
        )

        self.inference_seconds: Final = Histogram(
            "streamvae_inference_seconds",
            "Time to score one batch of windows.",
            buckets=_INFERENCE_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds: Final = Histogram(
            "streamvae_end_to_end_seconds",
            "From a record's Kafka timestamp to the end of its processing (alert published).",
            buckets=_END_TO_END_BUCKETS,
            registry=r,
        )
        self.batch_seconds: Final = Histogram(
            "streamvae_batch_seconds",
            "Time to process one poll batch end to end.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )

        self._threshold_lock = threading.Lock()
        self._exported_assets: set[str] = set()
        self._other_exported = False

    def set_thresholds(self, values: Mapping[str, float]) -> None:
        """Export per-asset thresholds as at most ``max_threshold_assets`` series.

        Every label value is a time series Prometheus keeps for weeks, so the count is bounded.
        Which assets get their own series is chosen for stable graphs, not re-ranked on every
        call: assets exported before keep their series; new assets are added while there is
        room, highest threshold first (ties by name), so the choice is deterministic and does
        not depend on the mapping's order. When not every asset fits, one slot goes to an
        aggregated series ``asset="_other"`` holding the maximum of the remaining thresholds
        (an alerting rule on the maximum still sees the worst of them), so at most
        ``max_threshold_assets - 1`` assets are named; to free that slot when the overflow
        starts, the exported asset with the lowest threshold is moved into ``_other``.

        Non-finite values are skipped: a threshold is +inf while its asset warms up, and an
        infinite gauge breaks every graph and aggregation over it. The series of assets that
        are absent from ``values`` (or not finite any more) are removed. An asset literally
        named ``_other`` is never exported alone; it is counted in the aggregate.
        """
        finite: dict[str, float] = {}
        for asset, value in values.items():
            v = float(value)
            if math.isfinite(v):
                finite[str(asset)] = v
        limit = self.max_threshold_assets
        named_candidates = {a: v for a, v in finite.items() if a != OTHER_ASSET}

        with self._threshold_lock:
            if len(named_candidates) <= limit and OTHER_ASSET not in finite:
                chosen = set(named_candidates)
            else:
                room = limit - 1  # one series is the aggregate
                kept = [a for a in self._exported_assets if a in named_candidates]
                if len(kept) > room:
                    # Keep the highest thresholds; the lowest move into the aggregate.
                    kept.sort(key=lambda a: (-named_candidates[a], a))
                    kept = kept[:room]
                chosen = set(kept)
                new = sorted(
                    (a for a in named_candidates if a not in chosen),
                    key=lambda a: (-named_candidates[a], a),
                )
                chosen.update(new[: room - len(chosen)])

            for asset in self._exported_assets - chosen:
                with contextlib.suppress(KeyError):
                    self.threshold.remove(asset)
            for asset in chosen:
                self.threshold.labels(asset=asset).set(finite[asset])
            self._exported_assets = chosen

            rest = [v for a, v in finite.items() if a not in chosen]
            if rest:
                self.threshold.labels(asset=OTHER_ASSET).set(max(rest))
                self._other_exported = True
            elif self._other_exported:
                with contextlib.suppress(KeyError):
                    self.threshold.remove(OTHER_ASSET)
                self._other_exported = False

    def set_model(self, version: str, content_hash: str) -> None:
        """Publish which model is served (``streamvae_model_info{version, content_hash}``).

        A dashboard can then mark model swaps and tell which artefact produced an alert.
        """
        self.model_info.info({"version": str(version), "content_hash": str(content_hash)})

    def exposition(self) -> bytes:
        """The registry in Prometheus text format, as ``/metrics`` serves it."""
        return generate_latest(self.registry)


class _Server(ThreadingHTTPServer):
    """The stdlib server, carrying the :class:`HealthServer` its handlers answer for."""

    daemon_threads = True  # a hung scrape must not keep the process alive at exit
    allow_reuse_port = False  # a second instance on the same port must fail, not share it

    def __init__(self, address: tuple[str, int], health: HealthServer, family: int) -> None:
        self.address_family = family
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "streamvae-health"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        # BaseHTTPRequestHandler writes every request to stderr; a probe every few seconds
        # would drown the service's own log.
        _log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _not_allowed(self) -> None:
        self._discard_body()
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED, b"method not allowed\n", extra={"Allow": "GET, HEAD"}
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _discard_body(self) -> None:
        # Reading a small body before answering lets the client see the 405 rather than a
        # connection reset.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if 0 < length <= _MAX_DISCARDED_BODY:
            with contextlib.suppress(OSError):
                self.rfile.read(length)

    def _answer(self, *, send_body: bool) -> None:
        health = cast(_Server, self.server).health
        path = self.path.split("?", 1)[0]
        try:
            if path == "/healthz":
                alive, reason = health._liveness()
                status = HTTPStatus.OK if alive else HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, f"{reason}\n".encode(), send_body=send_body)
            elif path == "/readyz":
                ready, reason = health._readiness()
                status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, f"{reason}\n".encode(), send_body=send_body)
            elif path == "/metrics":
                body = health.metrics.exposition()
                self._send(HTTPStatus.OK, body, CONTENT_TYPE_LATEST, send_body=send_body)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", send_body=send_body)
        except Exception as exc:  # an endpoint must answer, never kill the server thread
            _log.exception("health endpoint %s failed", path)
            text = f"internal error: {type(exc).__name__}\n".encode()
            with contextlib.suppress(OSError):
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, text, send_body=send_body)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        send_body: bool = True,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class HealthServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` over HTTP, served from a daemon thread.

    ``/healthz`` is liveness: 200 ``ok`` while the service loop calls :meth:`beat` at least
    every ``stale_after_s`` seconds, 503 once it stops, so Kubernetes restarts a wedged loop;
    it never depends on the broker. Startup counts as a beat, which gives the service
    ``stale_after_s`` to load its model before the first loop iteration. ``/readyz`` is 200
    when ``ready()`` returns ``(True, reason)``, else 503 with the reason as text (an
    exception in ``ready`` is a 503 too). ``/metrics`` serves :meth:`ServiceMetrics.exposition`.
    Other paths are 404; methods other than GET and HEAD are 405.

    It binds the loopback address by default; pass ``host="0.0.0.0"`` (or ``"::"``) where a
    probe or scraper must reach it from outside the pod's network namespace.

    Example:
        >>> import urllib.request
        >>> with HealthServer(ServiceMetrics(), ready=lambda: (True, "ok"), port=0) as s:
        ...     s.url.startswith("http://127.0.0.1:")
        ...     urllib.request.urlopen(s.url + "/healthz").read()
        True
        b'ok\\n'
    """

    def __init__(
        self,
        metrics: ServiceMetrics,
        ready: Callable[[], tuple[bool, str]],
        host: str = "127.0.0.1",
        port: int = 0,
        stale_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (isinstance(port, int) and 0 <= port <= 65535):
            raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
        if not (math.isfinite(stale_after_s) and stale_after_s > 0):
            raise ValueError(f"stale_after_s must be a positive number, got {stale_after_s!r}")
        self.metrics: Final = metrics
        self.host: Final = host
        self._requested_port: Final = port
        self.stale_after_s: Final = float(stale_after_s)
        self._ready = ready
        self._clock = clock
        self._last_beat = clock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> Self:
        """Bind (port 0 = an ephemeral port) and serve from a daemon thread; returns ``self``.

        Raises:
            OSError: the address cannot be bound (e.g. the port is in use); the message names
                the address and the setting to change.
            RuntimeError: the server is already running.
        """
        with self._lock:
            if self._server is not None:
                raise RuntimeError(f"the health server is already running on {self.url}")
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            try:
                server = _Server((self.host, self._requested_port), self, family)
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"cannot serve /metrics, /healthz and /readyz on "
                    f"{self.host}:{self._requested_port}: {exc.strerror or exc}; set "
                    f"run.metrics_port to a free port (0 picks an ephemeral one)",
                ) from exc
            self._last_beat = self._clock()
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL_S},
                name=f"streamvae-health-{server.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one chosen when ``port=0``)."""
        if self._server is None:
            raise RuntimeError("the health server is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def beat(self) -> None:
        """Record that the service loop is alive; call it once per loop iteration."""
        self._last_beat = self._clock()

    def stop(self) -> None:
        """Stop serving and release the port; safe to call more than once."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _liveness(self) -> tuple[bool, str]:
        age = self._clock() - self._last_beat
        if age > self.stale_after_s:
            return False, (
                f"stale: the service loop last reported {age:.1f} s ago "
                f"(limit {self.stale_after_s:g} s)"
            )
        return True, "ok"

    def _readiness(self) -> tuple[bool, str]:
        try:
            ready, reason = self._ready()
        except Exception as exc:
            _log.warning("the readiness check raised", exc_info=True)
            return False, f"readiness check failed: {type(exc).__name__}: {exc}"
        return bool(ready), str(reason) or ("ready" if ready else "not ready")
