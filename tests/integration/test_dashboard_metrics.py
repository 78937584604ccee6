"""The Grafana dashboard and the Prometheus rules in ``deploy/`` query only metrics that a real
``streamvae run`` exports: a renamed metric must break this test, not a dashboard in production.

One service (a few hundred readings on a real broker; no model, so nothing is trained: every
metric family is declared from the start) is scraped once; every metric name in the
dashboard's PromQL and in ``deploy/prometheus/rules.yml`` must be in that scrape (a
histogram's ``_bucket``/``_sum``/``_count`` and a counter's ``_total`` count as its family's
names).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration import harness as h

pytestmark = pytest.mark.slow

DEPLOY = h.ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "streamvae.json"
RULES = DEPLOY / "prometheus" / "rules.yml"
READINGS_PER_ASSET = 60

# Series Prometheus itself attaches to every scrape target, not the service's to export.
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
    | {"offset", "bool", "inf", "nan"}
)


def dashboard_queries(path: Path = DASHBOARD) -> list[str]:
    """Every PromQL expression of a Grafana dashboard: panel targets and query variables."""
    doc = json.loads(path.read_text())
    out: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            out.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(doc["panels"])
    for var in doc.get("templating", {}).get("list", []):
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", text or "")
        if m:
            out.append(m.group(1))
    return out


def rule_queries(path: Path = RULES) -> list[str]:
    """Every ``expr`` of a Prometheus rules file."""
    doc = yaml.safe_load(path.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Strings, label matchers ``{...}``, ranges ``[...]`` and ``by (...)``-style label lists are
    removed first; what is left that is an identifier, not a keyword and not a function call
    is a metric name. Deliberately strict: a misspelt ``streamvea_x`` is a name, and fails.
    """
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()", text):
        word = m.group(1)
        if word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def exported_names(exposition: str) -> set[str]:
    """Every name a scrape of ``exposition`` makes queryable: sample names, plus the names of
    families declared without samples yet (a labelled counter before its first increment)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        m = re.match(r"# TYPE (\S+) (\w+)", line)
        if m:
            name, kind = m.groups()
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}_{s}" for s in ("bucket", "sum", "count"))
            elif kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def scraped(kafka_bootstrap: str, kafka_admin: Any, tmp_path_factory: Any) -> set[str]:
    """The names in one /metrics scrape of a service that has consumed a few readings."""
    tmp = tmp_path_factory.mktemp("dashboard")
    with h.fed_service(kafka_bootstrap, kafka_admin, tmp, READINGS_PER_ASSET) as (service, _):
        status, text = service.get("/metrics")
        assert status == 200
        assert service.terminate() == 0
    return exported_names(text)


def test_the_metric_name_parser_finds_names_and_skips_labels_functions_and_keywords():
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(streamvae_x_bucket{instance=~"a|b"}[5m])))'
        " > on (job) group_left streamvea_typo unless up"
    )
    assert metric_names(expr) == {"streamvae_x_bucket", "streamvea_typo", "up"}


def test_every_metric_the_grafana_dashboard_queries_is_exported_by_the_service(scraped):
    queries = dashboard_queries()
    assert len(queries) >= 20  # the parser found the panels
    missing = {
        name: expr
        for expr in queries
        for name in metric_names(expr)
        if name not in scraped and name not in PROMETHEUS_OWN
    }
    assert not missing, f"the dashboard queries metrics the service does not export: {missing}"


def test_every_metric_the_prometheus_alert_rules_use_is_exported_by_the_service(scraped):
    queries = rule_queries()
    assert queries
    missing = {
        name: expr
        for expr in queries
        for name in metric_names(expr)
        if name not in scraped and name not in PROMETHEUS_OWN
    }
    assert not missing, f"the alert rules use metrics the service does not export: {missing}"
