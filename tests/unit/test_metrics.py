"""The metrics registry and the health server, probed over real HTTP as Kubernetes probes it."""

from __future__ import annotations

import math
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from consumers.metrics import HealthServer, ServiceMetrics

TIMEOUT_S = 5.0

EXPECTED_METRICS = {
    "streamvae_records_consumed_total": "counter",
    "streamvae_records_invalid_total": "counter",
    "streamvae_dlq_records_total": "counter",
    "streamvae_windows_scored_total": "counter",
    "streamvae_records_processed_total": "counter",
    "streamvae_alerts_total": "counter",
    "streamvae_commits_total": "counter",
    "streamvae_checkpoints_total": "counter",
    "streamvae_rebalances_total": "counter",
    "streamvae_backpressure_pauses_total": "counter",
    "streamvae_consumer_lag_records": "gauge",
    "streamvae_active_alerts": "gauge",
    "streamvae_assigned_partitions": "gauge",
    "streamvae_in_flight_records": "gauge",
    "streamvae_threshold_nats": "gauge",
    "streamvae_model_info": "gauge",
    "streamvae_inference_seconds": "histogram",
    "streamvae_end_to_end_seconds": "histogram",
    "streamvae_batch_seconds": "histogram",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of one request; error statuses are answers, not raises."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers["Content-Type"], err.read()


def thresholds(metrics: ServiceMetrics) -> dict[str, float]:
    """The exported streamvae_threshold_nats series, by asset label, parsed from /metrics."""
    text = metrics.exposition().decode()
    return {
        sample.labels["asset"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "streamvae_threshold_nats"
        for sample in family.samples
    }


@pytest.fixture
def metrics() -> ServiceMetrics:
    return ServiceMetrics()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def serve(metrics: ServiceMetrics, clock: FakeClock) -> Iterator[Callable[..., HealthServer]]:
    """Start servers on 127.0.0.1:<ephemeral>; every one is stopped when the test ends."""
    started: list[HealthServer] = []

    def start(
        ready: Callable[[], tuple[bool, str]] = lambda: (True, "ready"), **kwargs: Any
    ) -> HealthServer:
        server = HealthServer(metrics, ready, host="127.0.0.1", port=0, clock=clock, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def test_healthz_is_ok_without_any_broker(serve: Callable[..., HealthServer]) -> None:
    # No broker exists in this test and readiness says so: liveness must not care.
    server = serve(ready=lambda: (False, "no partitions assigned"))
    assert get(server.url + "/healthz")[::2] == (200, b"ok\n")


def test_healthz_turns_503_when_the_loop_stops_beating(
    serve: Callable[..., HealthServer], clock: FakeClock
) -> None:
    server = serve(stale_after_s=30.0)
    clock.now += 29.0
    assert get(server.url + "/healthz")[0] == 200
    server.beat()
    clock.now += 30.5
    status, _, body = get(server.url + "/healthz")
    assert status == 503
    assert b"30.5 s" in body
    server.beat()
    assert get(server.url + "/healthz")[0] == 200


def test_readyz_reports_the_reason_while_not_ready(serve: Callable[..., HealthServer]) -> None:
    state = {"ready": False, "reason": "loading model state"}
    server = serve(ready=lambda: (state["ready"], state["reason"]))
    assert get(server.url + "/readyz")[::2] == (503, b"loading model state\n")
    state.update(ready=True, reason="3 partitions assigned")
    assert get(server.url + "/readyz")[::2] == (200, b"3 partitions assigned\n")


def test_readyz_is_503_when_the_readiness_check_raises(serve: Callable[..., HealthServer]) -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("state store unreachable")

    status, _, body = get(serve(ready=broken).url + "/readyz")
    assert status == 503
    assert b"state store unreachable" in body


def test_metrics_exposes_every_streamvae_metric_name(
    serve: Callable[..., HealthServer], metrics: ServiceMetrics
) -> None:
    metrics.records_consumed.labels(topic="readings", partition="0").inc(3)
    metrics.set_model("v0001", "sha256:abc")
    status, content_type, body = get(serve().url + "/metrics")
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST
    text = body.decode()
    for name, kind in EXPECTED_METRICS.items():
        assert f"# TYPE {name} {kind}\n" in text, name
    assert 'streamvae_records_consumed_total{partition="0",topic="readings"} 3.0' in text
    assert 'streamvae_model_info{content_hash="sha256:abc",version="v0001"} 1.0' in text


def test_histogram_buckets_span_the_documented_ranges(metrics: ServiceMetrics) -> None:
    text = metrics.exposition().decode()
    assert 'streamvae_inference_seconds_bucket{le="0.0001"}' in text
    assert 'streamvae_inference_seconds_bucket{le="5.0"}' in text
    assert 'streamvae_end_to_end_seconds_bucket{le="0.001"}' in text
    assert 'streamvae_end_to_end_seconds_bucket{le="60.0"}' in text


def test_head_answers_like_get_without_a_body(serve: Callable[..., HealthServer]) -> None:
    assert get(serve().url + "/healthz", method="HEAD")[::2] == (200, b"")


def test_threshold_series_are_bounded_and_the_rest_is_aggregated() -> None:
    metrics = ServiceMetrics(max_threshold_assets=4)
    metrics.set_thresholds({"a": 1.0, "b": 2.0})
    assert thresholds(metrics) == {"a": 1.0, "b": 2.0}

    # Six assets for four series: three named, the rest as one maximum. "a" and "b" were
    # exported already and keep their series although "a" is the lowest threshold now, and
    # the free slot goes to the highest new threshold ("y"), not to the first name ("c").
    metrics.set_thresholds({"a": 1.0, "b": 2.0, "c": 3.0, "x": 4.0, "y": 9.0, "z": 5.0})
    assert thresholds(metrics) == {"a": 1.0, "b": 2.0, "y": 9.0, "_other": 5.0}

    # The same call again, in another order: the same series (stable graphs).
    metrics.set_thresholds({"z": 5.5, "y": 9.0, "x": 4.0, "c": 3.0, "b": 2.5, "a": 1.5})
    assert thresholds(metrics) == {"a": 1.5, "b": 2.5, "y": 9.0, "_other": 5.5}

    # An asset that disappears loses its series; its slot goes to the next highest.
    metrics.set_thresholds({"a": 1.0, "c": 3.0, "x": 4.0, "y": 9.0, "z": 5.0})
    assert thresholds(metrics) == {"a": 1.0, "y": 9.0, "z": 5.0, "_other": 4.0}

    # Back within the bound: every asset named, no aggregate.
    metrics.set_thresholds({"a": 1.0, "y": 9.0})
    assert thresholds(metrics) == {"a": 1.0, "y": 9.0}


def test_an_overflow_moves_the_lowest_exported_threshold_into_the_aggregate() -> None:
    metrics = ServiceMetrics(max_threshold_assets=3)
    metrics.set_thresholds({"a": 1.0, "b": 2.0, "c": 3.0})
    assert thresholds(metrics) == {"a": 1.0, "b": 2.0, "c": 3.0}
    metrics.set_thresholds({"a": 1.0, "b": 2.0, "c": 3.0, "d": 0.5})
    assert thresholds(metrics) == {"b": 2.0, "c": 3.0, "_other": 1.0}


def test_threshold_series_never_exceed_the_bound_for_a_large_fleet() -> None:
    metrics = ServiceMetrics(max_threshold_assets=10)
    fleet = {f"pump-{i:04d}": float(i) for i in range(1000)}
    metrics.set_thresholds(fleet)
    series = thresholds(metrics)
    assert len(series) == 10
    assert series["_other"] == max(v for a, v in fleet.items() if a not in series)


def test_non_finite_thresholds_are_not_exported(metrics: ServiceMetrics) -> None:
    metrics.set_thresholds({"warming": math.inf, "broken": math.nan, "pump-1": -0.8})
    assert thresholds(metrics) == {"pump-1": -0.8}
    # An exported asset whose threshold becomes infinite again (recalibrating) is removed.
    metrics.set_thresholds({"pump-1": math.inf})
    assert thresholds(metrics) == {}


def test_unknown_path_is_404(serve: Callable[..., HealthServer]) -> None:
    assert get(serve().url + "/admin")[0] == 404


def test_post_is_405(serve: Callable[..., HealthServer]) -> None:
    assert get(serve().url + "/metrics", method="POST", data=b"x=1")[0] == 405


def test_two_instances_do_not_share_a_registry() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()  # the global registry would refuse this
    first.windows_scored.inc(5)
    assert first.registry is not second.registry
    assert b"streamvae_windows_scored_total 5.0" in first.exposition()
    assert b"streamvae_windows_scored_total 0.0" in second.exposition()


def test_stop_releases_the_port(metrics: ServiceMetrics) -> None:
    server = HealthServer(metrics, ready=lambda: (True, "ok"), port=0).start()
    port = server.port
    server.stop()
    server.stop()  # idempotent
    with HealthServer(metrics, ready=lambda: (True, "ok"), port=port) as again:
        assert get(again.url + "/healthz")[0] == 200


def test_a_port_in_use_is_a_clear_error(metrics: ServiceMetrics) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = HealthServer(metrics, ready=lambda: (True, "ok"), port=port)
        with pytest.raises(OSError, match=rf"127\.0\.0\.1:{port}.*run\.metrics_port"):
            server.start()
        server.stop()  # nothing was started: still safe
