"""Writes the Grafana dashboards of deploy/grafana/dashboards/ (JSON, Grafana's dashboard schema).

    python3 deploy/grafana/generate_dashboards.py          # rewrite the JSON files
    python3 deploy/grafana/generate_dashboards.py --check  # exit 1 if a file differs from what this writes

The dashboards are built here, not edited in Grafana and exported, so that each query is written once and the tests
can read every PromQL expression (tests/deploy/test_grafana_dashboards.py: only exported metrics; the JSON types
against @grafana/schema with tsc). Three dashboards, each with a Prometheus datasource variable:

- bmsgw-fleet: the site and every pack at a glance (packs online, SoC, limits, power, alarms);
- bmsgw-pack: one pack (variable `pack`): SoC/SoH, voltage, current and limits over time, cell voltage and
  temperature heatmaps, per-cell SoC and resistance, its alarms over time;
- bmsgw-gateway: the gateway itself (engine tick, event-loop lag, CAN frames per bus, Modbus clients, event log).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24

Panel = dict[str, Any]


class Layout:
    """Places panels left to right, row by row, on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.panels: list[Panel] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def add(self, panel: Panel, width: int, height: int) -> None:
        if self._x + width > WIDTH:
            self._x, self._y, self._row_height = 0, self._y + self._row_height, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": height, "w": width, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += width
        self._row_height = max(self._row_height, height)


def target(expr: str, legend: str = "", *, instant: bool = False, ref: str = "A") -> dict[str, Any]:
    query: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "refId": ref, "legendFormat": legend or "__auto"}
    if instant:
        query.update(instant=True, range=False, format="table")
    return query


def panel(kind: str, title: str, targets: list[dict[str, Any]], unit: str = "none", *, description: str = "",
          minimum: float | None = None, maximum: float | None = None, options: dict[str, Any] | None = None,
          custom: dict[str, Any] | None = None, thresholds: list[tuple[float | None, str]] | None = None) -> Panel:
    defaults: dict[str, Any] = {"unit": unit}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if custom:
        defaults["custom"] = custom
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute",
                                  "steps": [{"color": color, "value": value} for value, color in thresholds]}
    return {"type": kind, "title": title, "description": description, "datasource": DATASOURCE, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []}, "options": options or {}}


def quantiles(buckets: str) -> list[dict[str, Any]]:
    """p99 and p50 of a histogram over 5 minutes."""
    return [target(f"histogram_quantile({q}, rate({buckets}[5m]))", f"p{round(q * 100)}", ref=ref)
            for q, ref in ((0.99, "A"), (0.5, "B"))]


SEVERITY_COLORS = [(None, "green"), (1, "yellow"), (2, "orange"), (3, "red")]
SOC_COLORS = [(None, "red"), (0.1, "orange"), (0.2, "green")]


def dashboard(uid: str, title: str, description: str, layout: Layout, variables: list[dict[str, Any]],
              tags: list[str]) -> dict[str, Any]:
    datasource_variable = {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
                           "hide": 0}
    instance_variable = {"name": "instance", "label": "Gateway", "type": "query", "datasource": DATASOURCE,
                         "query": {"query": "label_values(bmsgw_build_info, instance)", "refId": "instance"},
                         "refresh": 2, "hide": 0,
                         "includeAll": False, "multi": False, "sort": 1}
    return {
        "uid": uid, "title": title, "description": description, "tags": ["bms-gateway", *tags],
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1, "timezone": "browser",
        "refresh": "10s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource_variable, instance_variable, *variables]},
        "annotations": {"list": []}, "links": [], "panels": layout.panels,
    }


def fleet() -> dict[str, Any]:
    site = '{instance="$instance"}'
    layout = Layout()
    layout.add(panel("stat", "Packs online", [target(f"bmsgw_site_packs_online{site}", "online"),
                                              target(f"bmsgw_site_packs_configured{site}", "configured", ref="B")]),
               6, 4)
    layout.add(panel("stat", "Packs admitted", [target(f"bmsgw_site_packs_admitted{site}", "admitted")]), 4, 4)
    layout.add(panel("gauge", "Site SoC", [target(f"bmsgw_site_soc_ratio{site}", "SoC")], "percentunit",
                     minimum=0, maximum=1, thresholds=SOC_COLORS), 4, 4)
    layout.add(panel("gauge", "Site SoH", [target(f"bmsgw_site_soh_ratio{site}", "SoH")], "percentunit",
                     minimum=0, maximum=1, thresholds=[(None, "red"), (0.7, "orange"), (0.8, "green")]), 4, 4)
    layout.add(panel("stat", "Highest alarm", [target(f"bmsgw_site_alarm_severity{site}", "severity")],
                     description="0 none, 1 warning, 2 alarm, 3 trip", thresholds=SEVERITY_COLORS,
                     options={"colorMode": "background"}), 6, 4)
    layout.add(panel("timeseries", "Site power (positive = charging)",
                     [target(f"bmsgw_site_power_watts{site}", "power")], "watt"), 12, 8)
    layout.add(panel("timeseries", "Site current limits",
                     [target(f"bmsgw_site_charge_current_limit_amperes{site}", "charge limit"),
                      target(f"-bmsgw_site_discharge_current_limit_amperes{site}", "discharge limit", ref="B"),
                      target(f"bmsgw_site_current_amperes{site}", "current", ref="C")], "amp"), 12, 8)
    layout.add(panel("timeseries", "SoC by pack", [target(f"bmsgw_pack_soc_ratio{site}", "{{pack}}")],
                     "percentunit", minimum=0, maximum=1), 12, 8)
    layout.add(panel("timeseries", "Charge current limit by pack",
                     [target(f"bmsgw_pack_charge_current_limit_amperes{site}", "{{pack}}")], "amp"), 12, 8)
    packs = panel("table", "Packs", [
        target(f"bmsgw_pack_up{site}", instant=True, ref="up"),
        target(f"bmsgw_pack_soc_ratio{site}", instant=True, ref="soc"),
        target(f"bmsgw_pack_soh_ratio{site}", instant=True, ref="soh"),
        target(f"bmsgw_pack_voltage_volts{site}", instant=True, ref="voltage"),
        target(f"bmsgw_pack_current_amperes{site}", instant=True, ref="current"),
        target(f"bmsgw_pack_charge_current_limit_amperes{site}", instant=True, ref="charge_limit"),
        target(f"bmsgw_pack_discharge_current_limit_amperes{site}", instant=True, ref="discharge_limit"),
        target(f"max by (pack) (bmsgw_pack_alarm_severity{site})", instant=True, ref="severity"),
    ], description="One row per pack: up, SoC, SoH, voltage, current, limits, highest alarm severity")
    packs["transformations"] = [{"id": "merge", "options": {}},
                                {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True,
                                                                                 "instance": True, "job": True}}}]
    layout.add(packs, 24, 10)
    layout.add(panel("table", "Active alarms", [target(
        f"bmsgw_pack_alarm_severity{site} > 0", instant=True, ref="alarms")],
        description="Every alarm of every pack that is active now, with its severity (1 warning, 2 alarm, 3 trip)",
        thresholds=SEVERITY_COLORS), 24, 8)
    return dashboard("bmsgw-fleet", "bms-gateway: fleet overview",
                     "The site and every pack: online, SoC, SoH, limits, power and alarms.", layout, [], ["fleet"])


def pack() -> dict[str, Any]:
    one = '{instance="$instance", pack="$pack"}'
    pack_variable = {"name": "pack", "label": "Pack", "type": "query", "datasource": DATASOURCE,
                     "query": {"query": 'label_values(bmsgw_pack_up{instance="$instance"}, pack)', "refId": "pack"},
                     "refresh": 2, "hide": 0, "includeAll": False, "multi": False, "sort": 1}
    layout = Layout()
    layout.add(panel("stat", "Online", [target(f"bmsgw_pack_up{one}", "up")],
                     thresholds=[(None, "red"), (1, "green")], options={"colorMode": "background"}), 4, 4)
    layout.add(panel("gauge", "SoC", [target(f"bmsgw_pack_soc_ratio{one}", "SoC")], "percentunit", minimum=0,
                     maximum=1, thresholds=SOC_COLORS), 5, 4)
    layout.add(panel("gauge", "SoH", [target(f"bmsgw_pack_soh_ratio{one}", "SoH")], "percentunit", minimum=0,
                     maximum=1), 5, 4)
    layout.add(panel("stat", "Cell SoC spread", [target(f"bmsgw_pack_cell_soc_spread_ratio{one}", "spread")],
                     "percentunit"), 5, 4)
    layout.add(panel("stat", "Equivalent full cycles", [target(f"bmsgw_pack_equivalent_full_cycles_total{one}",
                                                                "cycles")]), 5, 4)
    layout.add(panel("timeseries", "SoC and SoH", [target(f"bmsgw_pack_soc_ratio{one}", "SoC"),
                                                   target(f"bmsgw_pack_soh_ratio{one}", "SoH", ref="B")],
                     "percentunit", minimum=0, maximum=1), 12, 8)
    layout.add(panel("timeseries", "Voltage", [target(f"bmsgw_pack_voltage_volts{one}", "pack voltage")], "volt"),
               12, 8)
    layout.add(panel("timeseries", "Current and limits (positive = charging)", [
        target(f"bmsgw_pack_current_amperes{one}", "current"),
        target(f"bmsgw_pack_charge_current_limit_amperes{one}", "charge limit", ref="B"),
        target(f"-bmsgw_pack_discharge_current_limit_amperes{one}", "discharge limit", ref="C"),
        target(f"bmsgw_pack_charge_current_limit_10s_amperes{one}", "charge limit 10 s", ref="D"),
        target(f"-bmsgw_pack_discharge_current_limit_10s_amperes{one}", "discharge limit 10 s", ref="E"),
    ], "amp"), 24, 9)
    heatmap_options = {"calculate": False, "yAxis": {"axisPlacement": "left"}, "cellGap": 1,
                       "color": {"mode": "scheme", "scheme": "Spectral", "reverse": True},
                       "rowsFrame": {"layout": "auto"}}
    layout.add(panel("heatmap", "Cell voltages", [target(f"bmsgw_cell_voltage_volts{one}", "{{cell}}")], "volt",
                     description="One row per cell (bmsgw_cell_*: needs [prometheus] cell_series = true)",
                     options=heatmap_options), 12, 10)
    layout.add(panel("heatmap", "Temperatures", [target(f"bmsgw_cell_temperature_celsius{one}", "{{sensor}}")],
                     "celsius", description="One row per sensor", options=heatmap_options), 12, 10)
    layout.add(panel("bargauge", "Cell SoC", [target(f"bmsgw_cell_soc_ratio{one}", "{{cell}}", instant=True)],
                     "percentunit", minimum=0, maximum=1,
                     options={"orientation": "vertical", "displayMode": "gradient"}), 12, 8)
    layout.add(panel("bargauge", "Cell resistance R0 (25 degC, 50 % SoC)",
                     [target(f"bmsgw_cell_resistance_ohms{one}", "{{cell}}", instant=True)], "ohm",
                     options={"orientation": "vertical", "displayMode": "gradient"}), 12, 8)
    layout.add(panel("state-timeline", "Alarms", [target(f"bmsgw_pack_alarm_severity{one} > 0", "{{alarm}}")],
                     description="Each alarm while present: 1 warning, 2 alarm, 3 trip (the event log has every "
                                 "transition: bms-gateway events --pack ...)", thresholds=SEVERITY_COLORS), 24, 8)
    return dashboard("bmsgw-pack", "bms-gateway: pack detail",
                     "One pack: state, limits over time, per-cell voltages, temperatures, SoC and resistance, alarms.",
                     layout, [pack_variable], ["pack"])


def gateway() -> dict[str, Any]:
    gw = '{instance="$instance"}'
    layout = Layout()
    layout.add(panel("stat", "Scraped", [target('up{job="bms-gateway", instance="$instance"}', "up")],
                     thresholds=[(None, "red"), (1, "green")], options={"colorMode": "background"}), 4, 4)
    layout.add(panel("stat", "Snapshot age", [target(f"time() - bmsgw_snapshot_timestamp_seconds{gw}", "age")], "s",
                     thresholds=[(None, "green"), (2, "orange"), (10, "red")]), 5, 4)
    layout.add(panel("stat", "Modbus clients", [target(f"bmsgw_modbus_clients_connected{gw}", "clients")]), 3, 4)
    layout.add(panel("stat", "OPC UA sessions", [target(f"bmsgw_opcua_sessions{gw}", "sessions")]), 3, 4)
    layout.add(panel("stat", "Event-log write failures (1 h)",
                     [target(f"increase(bmsgw_event_log_write_failures_total{gw}[1h])", "failures")],
                     thresholds=[(None, "green"), (1, "red")]), 5, 4)
    layout.add(panel("stat", "Version", [target(f"bmsgw_build_info{gw}", "{{version}}")],
                     options={"textMode": "name"}), 4, 4)
    layout.add(panel("timeseries", "Engine tick (budget 100 ms at 10 Hz)",
                     quantiles(f"bmsgw_tick_duration_seconds_bucket{gw}"), "s"), 12, 8)
    layout.add(panel("timeseries", "Event-loop lag", quantiles(f"bmsgw_event_loop_lag_seconds_bucket{gw}"), "s",
                     description="What a CAN frame or a request waits at worst for the event loop"), 12, 8)
    layout.add(panel("timeseries", "CAN frames per bus", [
        target(f"rate(bmsgw_can_frames_received_total{gw}[1m])", "{{bus}} received"),
        target(f"rate(bmsgw_can_frames_sent_total{gw}[1m])", "{{bus}} sent", ref="B"),
    ], "pps"), 12, 8)
    layout.add(panel("timeseries", "CAN frames lost", [
        target(f"sum by (bus, reason) (rate(bmsgw_can_frames_rejected_total{gw}[5m]))", "{{bus}} {{reason}}"),
        target(f"rate(bmsgw_can_frames_dropped_total{gw}[5m])", "{{bus}} dropped (queue full)", ref="B"),
    ], "pps"), 12, 8)
    layout.add(panel("timeseries", "Modbus requests", [
        target(f"rate(bmsgw_modbus_requests_total{gw}[1m])", "{{outcome}}"),
        target(f"rate(bmsgw_modbus_protocol_errors_total{gw}[5m])", "protocol errors", ref="B"),
    ], "reqps"), 12, 8)
    layout.add(panel("timeseries", "OPC UA requests", [
        target(f"rate(bmsgw_opcua_requests_total{gw}[1m])", "{{outcome}}"),
    ], "reqps"), 12, 8)
    layout.add(panel("timeseries", "Event log", [
        target(f"rate(bmsgw_event_log_events_written_total{gw}[5m]) * 60", "events per minute"),
    ]), 12, 8)
    return dashboard("bmsgw-gateway", "bms-gateway: gateway health",
                     "The gateway itself: scrape, snapshot age, engine tick, event-loop lag, CAN, Modbus, OPC UA, "
                     "event log.",
                     layout, [], ["health"])


DASHBOARDS = {"fleet.json": fleet, "pack.json": pack, "gateway.json": gateway}


def rendered() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    files = rendered()
    if "--check" in argv:
        stale = [name for name, text in files.items()
                 if not (OUT / name).exists() or (OUT / name).read_text() != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python3 deploy/grafana/generate_dashboards.py")
            return 1
        return 0
    OUT.mkdir(exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
