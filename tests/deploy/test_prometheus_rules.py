"""deploy/prometheus: the scrape config and alert rules pass promtool, their unit tests pass, and every metric
they use is one the gateway exports."""

from __future__ import annotations

import re
from typing import Any

import yaml

from gateway.adapters.prometheus_collector import DurationHistogram, PrometheusCollector, SelfMetricSources
from gateway.runtime.hub import SnapshotHub
from tests.deploy.promtool import DEPLOY, RULES, promtool
from tests.factories import make_snapshot

METRIC = re.compile(r"\bbmsgw_[a-z0-9_]+")


def test_promtool_accepts_the_scrape_config_and_its_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 14 rules found" in checked.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    tested = promtool("test", "rules", "bms-gateway.test.yml", cwd=DEPLOY / "tests")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_rule_is_unit_tested() -> None:
    tests: dict[str, Any] = yaml.safe_load((DEPLOY / "tests" / "bms-gateway.test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]
              if case.get("exp_alerts")}
    assert tested == set(_rules())


async def test_the_rules_use_only_metrics_the_gateway_exports() -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(packs=2))
    exported = {sample.name for family in PrometheusCollector(hub, SelfMetricSources(DurationHistogram())).collect()
                for sample in family.samples}
    used = {name for expression in _rules().values() for name in METRIC.findall(expression)}
    assert used, "no bmsgw_ metric found in the rules"
    assert used <= exported, f"not exported: {sorted(used - exported)}"


def _rules() -> dict[str, str]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return {rule["alert"]: rule["expr"] for group in document["groups"] for rule in group["rules"]}
