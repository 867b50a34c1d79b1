"""End to end: a real Prometheus server scrapes the running gateway with deploy/prometheus's alert rules, and the
pack-communication rule fires for the pack that falls silent (simulator fault `silent`), not for its neighbour."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.promtool import RULES, tool
from tests.e2e.gateway_process import GatewayProcess
from tests.ports import free_tcp_port
from tests.sites import simulated_packs

pytestmark = pytest.mark.e2e

SILENT_AFTER_S = 8.0
PROMETHEUS = """
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{rules}"]
scrape_configs:
  - job_name: bms-gateway
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""


def test_a_real_prometheus_fires_the_communication_rule_for_the_silent_pack(tmp_path: Path) -> None:
    binary = tool("prometheus")
    config = tmp_path / "site.toml"
    silent = f'[{{kind = "silent", start_s = {SILENT_AFTER_S}}}]'
    config.write_text('site_name = "alerts"\n' + simulated_packs("alerts", ["talks", "falls-silent"],
                                                                 {"falls-silent": silent}))
    gateway = GatewayProcess.start(tmp_path, config)
    prometheus_port = free_tcp_port()
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS.format(rules=RULES, port=gateway.prometheus_port))
    with (tmp_path / "prometheus.log").open("w") as log:  # the child keeps its own copy of the descriptor
        server = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        api = f"http://127.0.0.1:{prometheus_port}/api/v1"
        assert _until(lambda: _query(api, 'min(bmsgw_pack_up{job="bms-gateway"})') == 1.0, 20), \
            "both packs were never up in Prometheus"
        firing = _until(lambda: _firing(api), 40)
        assert firing, f"no alert fired; gateway log:\n{gateway.log()[-2000:]}"
        assert [alert["labels"]["pack"] for alert in firing] == ["falls-silent"]
        assert firing[0]["labels"]["severity"] == "page"
        assert firing[0]["annotations"]["summary"].startswith("Pack falls-silent on 127.0.0.1:")
        assert _query(api, 'bmsgw_pack_up{pack="talks"}') == 1.0
    finally:
        server.terminate()
        server.wait(timeout=15)
        gateway.stop()


def _firing(api: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = _get(f"{api}/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == "BmsPackCommunicationLost" and a["state"] == "firing"]


def _query(api: str, expression: str) -> float | None:
    result = _get(f"{api}/query?query={urllib.parse.quote(expression)}")["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _get(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            document: dict[str, Any] = json.load(response)
            return document
    except OSError:
        return {"data": {"result": [], "alerts": []}}


def _until(check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    return None
