"""A real Prometheus scrapes a real ``streamvae run``: what the service exports is what an
operator's Prometheus stores, the shipped alert rules evaluate on it, and every query of the
shipped Grafana dashboard is PromQL that Prometheus accepts.

Prometheus is Debian's ``prometheus`` binary (``scripts/setup.sh`` installs it), started on a
free loopback port with a temporary config (scrape every 1 s, ``deploy/prometheus/rules.yml``
evaluated every 1 s) and a temporary TSDB; it dies with the test process (PR_SET_PDEATHSIG) and
is stopped at the end of the module.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.broker import free_loopback_port, kill_with_parent
from tests.integration import harness as h
from tests.integration.test_dashboard_metrics import RULES, dashboard_queries

pytestmark = pytest.mark.slow

READINGS_PER_ASSET = 50
JOB = "streamvae"  # the job name deploy/prometheus/rules.yml selects (up{job="streamvae"})


class Prometheus:
    """A Prometheus server process and its HTTP API on 127.0.0.1.

    Why a class: the fixture, the readiness wait and the queries share the port and the log,
    and a failed start must show Prometheus's own words.

    Example (what the fixture below does)::

        server = Prometheus("/usr/bin/prometheus", tmp_dir, "127.0.0.1:9108")
        wait_for(server.ready, 30, "prometheus")
        server.value("sum(streamvae_records_consumed_total)")  # 300.0, or None before a scrape
        server.stop()
    """

    def __init__(self, binary: str, workdir: Path, target: str) -> None:
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=kill_with_parent,
        )

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as r:
                body = r.read()
        except urllib.error.HTTPError as e:  # a bad query is a 400 with a JSON body
            body = e.read()
        return json.loads(body)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def value(self, promql: str) -> float | None:
        """The single value of an instant query, or None while it has no result."""
        doc = self.get("/api/v1/query", query=promql)
        assert doc["status"] == "success", doc
        result = doc["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="module")
def service(
    kafka_bootstrap: str, kafka_admin: Any, tmp_path_factory: Any
) -> Iterator[h.ServiceProcess]:
    """A running service that has consumed every reading produced to its topic."""
    tmp = tmp_path_factory.mktemp("prometheus-service")
    with h.fed_service(kafka_bootstrap, kafka_admin, tmp, READINGS_PER_ASSET) as (svc, _):
        yield svc
        assert svc.terminate() == 0


@pytest.fixture(scope="module")
def prometheus(service: h.ServiceProcess, tmp_path_factory: Any) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "no 'prometheus' binary on PATH: run scripts/setup.sh (it installs Debian's "
            "prometheus package) or apt-get install prometheus"
        )
    server = Prometheus(binary, tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{service.port}")
    try:
        h.wait_for(server.ready, 30, "prometheus to be ready", every_s=0.2)
        yield server
    finally:
        server.stop()


def test_prometheus_stores_the_readings_the_service_consumed(prometheus):
    expected = float(len(h.ASSETS) * READINGS_PER_ASSET)
    h.wait_for(
        lambda: (
            prometheus.value(f'sum(streamvae_records_consumed_total{{job="{JOB}"}})') == expected
        ),
        30,
        f"Prometheus to report {expected:.0f} consumed readings",
        every_s=0.5,
    )
    partitions = prometheus.get(
        "/api/v1/series", **{"match[]": "streamvae_records_consumed_total"}
    )["data"]
    assert {s["partition"] for s in partitions} == {str(p) for p in range(h.PARTITIONS)}


def test_every_shipped_alert_rule_evaluates_without_error_on_the_services_series(prometheus):
    def groups() -> list[dict[str, Any]]:
        return list(prometheus.get("/api/v1/rules")["data"]["groups"])

    def all_evaluated() -> bool:
        rules = [r for g in groups() for r in g["rules"]]
        return bool(rules) and all(r.get("lastEvaluation", "").startswith("2") for r in rules)

    h.wait_for(all_evaluated, 30, "every rule to be evaluated once", every_s=0.5)
    rules = [r for g in groups() for r in g["rules"]]
    assert len(rules) == len(yaml.safe_load(RULES.read_text())["groups"][0]["rules"])
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not broken, f"rules that Prometheus failed to evaluate: {broken}"
    # A healthy service that keeps up trips none of its own alerts.
    assert {r["name"]: r["state"] for r in rules if r["state"] != "inactive"} == {}


def test_every_grafana_dashboard_query_is_promql_prometheus_accepts(prometheus):
    # Grafana's variables, as Grafana substitutes them before it sends a query.
    grafana = {"$__rate_interval": "1m", "$instance": ".*"}
    rejected = {}
    for expr in dashboard_queries():
        query = re.sub(r"\$\w+", lambda m: grafana.get(m.group(0), m.group(0)), expr)
        doc = prometheus.get("/api/v1/query", query=query)
        if doc["status"] != "success":
            rejected[expr] = doc.get("error")
    assert not rejected, f"dashboard queries Prometheus rejects: {rejected}"


def test_the_service_is_up_for_prometheus(prometheus):
    h.wait_for(lambda: prometheus.value(f'up{{job="{JOB}"}}') == 1.0, 30, "the target to be up")
