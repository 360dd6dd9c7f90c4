"""The Prometheus alert rules and the Grafana dashboard in deploy/monitoring load, are
well formed, and ask only for metrics this code exposes (a renamed metric would leave
an alert that never fires: this test is what catches it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import adapters.metrics  # noqa: F401 - registers every metric of API and worker

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
_METRIC = re.compile(r"\b(cogep_[a-z0-9_]+)")
_EXTERNAL = {"up"}  # Prometheus' own series


def exposed() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
        # series a histogram or counter has even before the first observation
        names.update(family.name + s for s in ("_total", "_bucket", "_count", "_sum"))
    return names


def check_expr(expr: str) -> None:
    assert expr.count("(") == expr.count(")"), expr
    assert expr.count("{") == expr.count("}"), expr
    unknown = set(_METRIC.findall(expr)) - exposed()
    assert not unknown, f"{expr!r} asks for metrics the code does not expose: {unknown}"
    assert _METRIC.search(expr) or any(m in expr for m in _EXTERNAL), expr


def test_the_alert_rules_are_well_formed_and_ask_for_real_metrics() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names))
    # what the operations issue asks to be alerted on
    for wanted in ("OldestPending", "FailureRate", "StalledLeases", "NoLiveWorker"):
        assert any(wanted in n for n in names), wanted
    for alert in alerts:
        assert set(alert) >= {"alert", "expr", "for", "labels", "annotations"}, alert
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert re.fullmatch(r"\d+[smh]", alert["for"])
        assert alert["annotations"]["summary"]
        check_expr(alert["expr"])


def test_the_dashboard_loads_and_its_panels_ask_for_real_metrics() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 8
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            check_expr(target["expr"])


def test_the_scrape_configuration_loads_the_rules_and_finds_the_workers() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["cogep-worker"]["dns_sd_configs"][0]["port"] == 9108
    assert 'job="cogep-worker"' in (MONITORING / "alerts.yml").read_text()
