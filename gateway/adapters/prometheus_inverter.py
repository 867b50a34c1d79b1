"""The inverter output (gateway/runtime/inverter_output.py) as metric families: what the inverter is told, and
whether it is there."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.codec.battery_can import BatteryFigures
from gateway.runtime.inverter_output import InverterLinkCounters

_SENT: tuple[tuple[str, str, Callable[[BatteryFigures], float]], ...] = (
    ("bmsgw_inverter_charge_voltage_limit_volts", "CVL in the last frame set sent to the inverter.",
     lambda f: f.charge_voltage_limit_v),
    ("bmsgw_inverter_charge_current_limit_amperes", "CCL in the last frame set sent to the inverter.",
     lambda f: f.charge_current_limit_a),
    ("bmsgw_inverter_discharge_current_limit_amperes", "DCL in the last frame set sent to the inverter.",
     lambda f: f.discharge_current_limit_a),
    ("bmsgw_inverter_discharge_voltage_limit_volts", "DVL in the last frame set sent to the inverter.",
     lambda f: f.discharge_voltage_limit_v),
    ("bmsgw_inverter_soc_ratio", "SoC in the last frame set sent to the inverter (0..1).", lambda f: f.soc),
    ("bmsgw_inverter_charge_enabled", "Charge enable flag sent to the inverter (0/1).",
     lambda f: float(f.charge_enable)),
    ("bmsgw_inverter_discharge_enabled", "Discharge enable flag sent to the inverter (0/1).",
     lambda f: float(f.discharge_enable)),
)


def inverter_families(counters: InverterLinkCounters, now: float | None = None) -> Iterator[Metric]:
    labels = [counters.bus]
    now = time.monotonic() if now is None else now
    sets = CounterMetricFamily("bmsgw_inverter_frame_sets_sent", "Complete frame sets sent to the inverter (each is "
                               "also the keep-alive it supervises).", labels=["bus"])
    sets.add_metric(labels, counters.frame_sets_sent)
    yield sets
    failures = CounterMetricFamily("bmsgw_inverter_send_failures", "Frame sets of which a frame could not be sent.",
                                   labels=["bus"])
    failures.add_metric(labels, counters.send_failures)
    yield failures
    safe = GaugeMetricFamily("bmsgw_inverter_safe_state", "1 while the inverter is held in the safe state (limits 0, "
                             "charge and discharge disabled): no, stale or unusable site data, or stopping.",
                             labels=["bus"])
    safe.add_metric(labels, float(counters.safe_state))
    yield safe
    keepalive = GaugeMetricFamily("bmsgw_inverter_keepalive_age_seconds", "Time since the inverter's last keep-alive "
                                  "frame (+Inf if none yet).", labels=["bus"])
    keepalive.add_metric(labels, counters.keepalive_age_s(now) if counters.last_keepalive > -math.inf else math.inf)
    yield keepalive
    conditions = GaugeMetricFamily("bmsgw_inverter_conditions", "Alarm and warning conditions in the last frame set.",
                                   labels=["bus", "severity"])
    conditions.add_metric([counters.bus, "alarm"], counters.alarms)
    conditions.add_metric([counters.bus, "warning"], counters.warnings)
    yield conditions
    figures = counters.last_figures
    for name, documentation, getter in _SENT:
        gauge = GaugeMetricFamily(name, documentation, labels=["bus"])
        gauge.add_metric(labels, getter(figures) if figures is not None else math.nan)
        yield gauge
