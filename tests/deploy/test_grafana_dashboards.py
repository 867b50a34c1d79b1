"""deploy/grafana: the dashboards are what the generator writes, query only metrics the gateway exports, lay their
panels out without overlap, and type-check against @grafana/schema's Dashboard with tsc."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.event_log import WriteCounts
from gateway.adapters.prometheus_collector import (
    LOOP_LAG_BUCKETS_S,
    DurationHistogram,
    PrometheusCollector,
    SelfMetricSources,
)
from gateway.runtime.hub import SnapshotHub
from tests.external_tools import EXTERNAL_DIR, node_with
from tests.factories import make_snapshot

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
METRIC = re.compile(r"\bbmsgw_[a-z0-9_]+")


def test_the_dashboards_are_what_the_generator_writes() -> None:
    checked = subprocess.run([sys.executable, str(GRAFANA / "generate_dashboards.py"), "--check"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert [path.name for path in DASHBOARDS] == ["fleet.json", "gateway.json", "pack.json"]


async def test_every_query_uses_only_metrics_the_gateway_exports() -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(packs=2))
    sources = SelfMetricSources(DurationHistogram(), DurationHistogram(LOOP_LAG_BUCKETS_S), ClientTraffic(),
                                WriteCounts(), opcua=ClientTraffic)
    exported = {sample.name for family in PrometheusCollector(hub, sources).collect() for sample in family.samples}
    for path in DASHBOARDS:
        expressions = _expressions(json.loads(path.read_text()))
        assert expressions, path.name
        used = {name for expression in expressions for name in METRIC.findall(expression)}
        assert used <= exported, f"{path.name} queries metrics the gateway does not export: {sorted(used - exported)}"


def test_panels_fit_the_grid_without_overlapping() -> None:
    for path in DASHBOARDS:
        cells: set[tuple[int, int]] = set()
        for panel in json.loads(path.read_text())["panels"]:
            box = panel["gridPos"]
            assert box["x"] + box["w"] <= 24, (path.name, panel["title"])
            columns, rows = range(box["x"], box["x"] + box["w"]), range(box["y"], box["y"] + box["h"])
            covered = {(x, y) for x in columns for y in rows}
            assert not covered & cells, (path.name, panel["title"])
            cells |= covered


def test_provisioning_points_at_the_dashboards_and_a_prometheus() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert [source["type"] for source in datasources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "bms-gateway.yml").read_text())
    assert providers["providers"][0]["type"] == "file"


@pytest.mark.external
def test_the_dashboards_type_check_against_grafana_schema(tmp_path: Path) -> None:
    node = node_with(["@grafana/schema", "typescript"], "for the Grafana schema check")
    checked = _check(node, *DASHBOARDS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout.splitlines()[-1]) == {"files": 3, "errors": 0}

    broken = json.loads(DASHBOARDS[0].read_text())
    broken["graphTooltip"] = "shared"  # a number in the schema
    broken["panels"][0]["gridPos"]["w"] = "6"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    refused = _check(node, tmp_path / "broken.json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout.splitlines()[-1]) == {"files": 1, "errors": 2}


def _check(node: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([node, "grafana_schema_check.mjs", *map(str, paths)], cwd=EXTERNAL_DIR, capture_output=True,
                          text=True, timeout=300, check=False)


def _expressions(document: Any) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets and variable queries."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("expr", "query") and isinstance(value, str):
                found.append(value)
            else:
                found += _expressions(value)
    elif isinstance(document, list):
        for item in document:
            found += _expressions(item)
    return found
