"""Per-pack and per-cell Prometheus metric families, built from one snapshot at scrape time.

Every per-pack series carries the label `pack` (the configured pack id). Unknown values (never seen,
or stale because the pack is offline) are exported as NaN; `bmsgw_pack_up` says which packs are
fresh. Charge is exported in coulombs (1 Ah = 3600 C) and energy in joules (1 Wh = 3600 J), the
Prometheus base units; see docs/metrics.md.

The usage histograms (time at temperature / SoC) are counters of seconds with a `band` label
"<low>..<high>" built from the estimator's band edges (gateway.bms.usage): the low edge is included,
the open ends are "-Inf" and "+Inf", e.g. band="20..30", band="60..+Inf".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import pairwise

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from gateway.bms.usage import SOC_BAND_EDGES, TEMPERATURE_BAND_EDGES_C
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.snapshot import PackSnapshot

SECONDS_PER_HOUR = 3600.0

# Severities that get an `bmsgw_pack_alarm_active` series each (NONE is the absence of all three).
ALARM_SEVERITIES: tuple[Severity, ...] = (Severity.WARNING, Severity.ALARM, Severity.TRIP)

_Getter = Callable[[PackSnapshot], float]

_PACK_GAUGES: tuple[tuple[str, str, _Getter], ...] = (
    ("bmsgw_pack_up", "1 if the pack's data is fresh (online), 0 if never seen or stale.",
     lambda p: 1.0 if p.online else 0.0),
    ("bmsgw_pack_state", "Pack state: 0 not seen, 1 normal, 2 warning, 3 alarm, 4 communication lost.",
     lambda p: float(p.state)),
    ("bmsgw_pack_contactor_state", "Contactor state: 0 open, 1 precharge, 2 closed, 3 fault, 15 unknown.",
     lambda p: float(p.contactor_state)),
    ("bmsgw_pack_data_age_seconds", "Age of the oldest required signal of the pack (+Inf: never received).",
     lambda p: p.data_age_s),
    ("bmsgw_pack_soc_ratio", "State of charge of the pack (0..1).", lambda p: p.soc),
    ("bmsgw_pack_soh_ratio", "State of health of the pack (0..1).", lambda p: p.soh),
    ("bmsgw_pack_voltage_volts", "Pack terminal voltage.", lambda p: p.pack_voltage_v),
    ("bmsgw_pack_current_amperes", "Pack current; positive = charging, negative = discharging.",
     lambda p: p.pack_current_a),
    ("bmsgw_pack_power_watts", "Pack power (voltage x current); positive = charging.", lambda p: p.power_w),
    ("bmsgw_pack_charge_current_limit_amperes", "Largest charge current the BMS allows now.",
     lambda p: p.charge_current_limit_a),
    ("bmsgw_pack_discharge_current_limit_amperes", "Largest discharge current the BMS allows now.",
     lambda p: p.discharge_current_limit_a),
    ("bmsgw_pack_charge_voltage_limit_volts", "Highest pack voltage the BMS allows while charging.",
     lambda p: p.charge_voltage_limit_v),
    ("bmsgw_pack_discharge_voltage_limit_volts", "Lowest pack voltage the BMS allows while discharging.",
     lambda p: p.discharge_voltage_limit_v),
    ("bmsgw_pack_capacity_coulombs", "Usable pack capacity in coulombs (divide by 3600 for Ah).",
     lambda p: p.capacity_ah * SECONDS_PER_HOUR),
    ("bmsgw_pack_cell_soc_min_ratio", "Lowest cell state of charge in the pack (0..1).",
     lambda p: p.soc_min),
    ("bmsgw_pack_cell_soc_max_ratio", "Highest cell state of charge in the pack (0..1).",
     lambda p: p.soc_max),
    ("bmsgw_pack_soc_sigma_ratio", "One-sigma uncertainty of the pack state of charge (0..1).",
     lambda p: p.soc_sigma),
    ("bmsgw_pack_soh_resistance_ratio",
     "State of health by resistance (1 new, 0 at the end-of-life resistance growth).",
     lambda p: p.soh_resistance),
    ("bmsgw_pack_current_bias_amperes",
     "Estimated current-sensor error; true current = measured current + bias.",
     lambda p: p.current_bias_a),
    ("bmsgw_pack_charge_power_limit_watts", "Largest charge power the BMS allows now.",
     lambda p: p.charge_power_limit_w),
    ("bmsgw_pack_discharge_power_limit_watts", "Largest discharge power the BMS allows now.",
     lambda p: p.discharge_power_limit_w),
    ("bmsgw_pack_charge_current_limit_10s_amperes", "Largest charge current the cell model allows for 10 s.",
     lambda p: p.charge_current_limit_10s_a),
    ("bmsgw_pack_discharge_current_limit_10s_amperes", "Largest discharge current the cell model allows for 10 s.",
     lambda p: p.discharge_current_limit_10s_a),
    ("bmsgw_pack_charge_current_limit_30s_amperes", "Largest charge current the cell model allows for 30 s.",
     lambda p: p.charge_current_limit_30s_a),
    ("bmsgw_pack_discharge_current_limit_30s_amperes", "Largest discharge current the cell model allows for 30 s.",
     lambda p: p.discharge_current_limit_30s_a),
    ("bmsgw_pack_resistance_ohms", "Predicted pack voltage change per ampere over 30 s.",
     lambda p: p.pack_resistance_ohm),
    ("bmsgw_pack_balancing_status", "Balancing: 0 off, 1 waiting, 2 active, 3 balanced, 4 blocked by temperature, "
     "5 blocked, 6 uncertain.", lambda p: float(p.balancing_status)),
    ("bmsgw_pack_balancing_cells", "Cells bleeding now.", lambda p: float(p.balancing_cells)),
    ("bmsgw_pack_admission_status", "Admission: 0 not admitted, 1 pending, 2 admitted, 3 admitted by an operator.",
     lambda p: float(p.admission_status)),
    ("bmsgw_pack_admission_reasons", "What the admission gate finds now (bitfield, docs/admission.md).",
     lambda p: float(p.admission_reasons)),
    ("bmsgw_pack_disconnect_requested", "1 while a client's disconnect request holds (limits zero).",
     lambda p: float(p.disconnect_requested)),
    ("bmsgw_pack_balancing_enabled", "1 balancing allowed, 0 switched off by a client.",
     lambda p: float(p.balancing_enabled)),
    ("bmsgw_pack_balancing_mask", "Cells bleeding now: bit n = cell n + 1.", lambda p: float(p.balancing_mask)),
    ("bmsgw_pack_balancing_excess_coulombs", "Charge above the lowest cell, summed over the cells (/3600 for Ah).",
     lambda p: p.balancing_excess_ah * SECONDS_PER_HOUR),
    ("bmsgw_pack_cell_soc_spread_ratio", "Highest minus lowest cell state of charge (0..1).",
     lambda p: p.cell_soc_spread),
    ("bmsgw_pack_balancing_remaining_seconds", "Bleeding time still needed to bring the cells within target.",
     lambda p: p.balancing_remaining_s),
)

_PACK_COUNTERS: tuple[tuple[str, str, _Getter], ...] = (
    ("bmsgw_pack_charged_coulombs", "Charge put into the pack, in coulombs (divide by 3600 for Ah).",
     lambda p: p.ah_charged * SECONDS_PER_HOUR),
    ("bmsgw_pack_discharged_coulombs", "Charge taken out of the pack, in coulombs (divide by 3600 for Ah).",
     lambda p: p.ah_discharged * SECONDS_PER_HOUR),
    ("bmsgw_pack_charged_joules", "Energy put into the pack, in joules (divide by 3600 for Wh).",
     lambda p: p.wh_charged * SECONDS_PER_HOUR),
    ("bmsgw_pack_discharged_joules", "Energy taken out of the pack, in joules (divide by 3600 for Wh).",
     lambda p: p.wh_discharged * SECONDS_PER_HOUR),
    ("bmsgw_pack_equivalent_full_cycles",
     "Equivalent full cycles: (charged + discharged charge) / (2 x capacity).",
     lambda p: p.equivalent_full_cycles),
)


def pack_families(packs: Sequence[PackSnapshot], *, cells: bool = True) -> Iterator[Metric]:
    """Every pack family; `cells=False` leaves out the per-cell and per-sensor series (`bmsgw_cell_*`)."""
    for name, documentation, getter in _PACK_GAUGES:
        gauge = GaugeMetricFamily(name, documentation, labels=["pack"])
        for pack in packs:
            gauge.add_metric([pack.pack_id], getter(pack))
        yield gauge
    for name, documentation, getter in _PACK_COUNTERS:
        counter = CounterMetricFamily(name, documentation, labels=["pack"])
        for pack in packs:
            counter.add_metric([pack.pack_id], getter(pack))
        yield counter
    yield _info(packs)
    yield from _alarms(packs)
    if cells:
        yield from _cells(packs)
    yield from _usage_histograms(packs)


def _info(packs: Sequence[PackSnapshot]) -> Metric:
    info = InfoMetricFamily(
        "bmsgw_pack", "Pack identity, value 1; a label is present only once known.", labels=["pack"]
    )
    for pack in packs:
        labels: dict[str, str] = {}
        if pack.cell_model:
            labels["cell_model"] = pack.cell_model
        if pack.identity is not None:
            labels["serial"] = pack.identity.serial_number
            labels["firmware"] = pack.identity.firmware_version
            labels["chemistry"] = pack.identity.chemistry.name.lower()
        info.add_metric([pack.pack_id], labels)
    return info


def _alarms(packs: Sequence[PackSnapshot]) -> Iterator[Metric]:
    active = GaugeMetricFamily(
        "bmsgw_pack_alarm_active",
        "1 if the alarm is active at exactly this severity, else 0; every (pack, alarm, severity) "
        "series is always present.",
        labels=["pack", "alarm", "severity"],
    )
    level = GaugeMetricFamily(
        "bmsgw_pack_alarm_severity",
        "Severity of the alarm: 0 inactive, 1 warning, 2 alarm, 3 trip.",
        labels=["pack", "alarm"],
    )
    for pack in packs:
        for code in AlarmCode:
            severity = pack.alarms.get(code, Severity.NONE)
            level.add_metric([pack.pack_id, code.label], float(severity))
            for candidate in ALARM_SEVERITIES:
                value = 1.0 if severity == candidate else 0.0
                active.add_metric([pack.pack_id, code.label, candidate.name.lower()], value)
    yield active
    yield level
    latched = GaugeMetricFamily("bmsgw_pack_alarm_latched", "1 if a trip of this alarm is latched until an "
                                "authorised reset, else 0.", labels=["pack", "alarm"])
    unacknowledged = GaugeMetricFamily("bmsgw_pack_alarm_unacknowledged", "1 if the alarm is present and not "
                                       "acknowledged, else 0.", labels=["pack", "alarm"])
    for pack in packs:
        for code in AlarmCode:
            latched.add_metric([pack.pack_id, code.label], float(bool(pack.latched_mask & code.bit)))
            unacknowledged.add_metric([pack.pack_id, code.label], float(bool(pack.unacknowledged_mask & code.bit)))
    yield latched
    yield unacknowledged
    requests = GaugeMetricFamily("bmsgw_pack_request", "1 while the gateway requests it: cooling, heating, "
                                 "contactor_open.", labels=["pack", "request"])
    for pack in packs:
        requests.add_metric([pack.pack_id, "cooling"], float(pack.cooling_request))
        requests.add_metric([pack.pack_id, "heating"], float(pack.heating_request))
        requests.add_metric([pack.pack_id, "contactor_open"], float(pack.contactor_open_request))
    yield requests


_CellGetter = Callable[[PackSnapshot], Sequence[float]]

_CELL_GAUGES: tuple[tuple[str, str, _CellGetter], ...] = (
    ("bmsgw_cell_voltage_volts", "Cell voltage.", lambda p: p.cell_voltage_v),
    ("bmsgw_cell_soc_ratio", "Cell state of charge (0..1).", lambda p: p.cell_soc),
    ("bmsgw_cell_soc_sigma_ratio", "One-sigma uncertainty of the cell state of charge (0..1).",
     lambda p: p.cell_soc_sigma),
    ("bmsgw_cell_capacity_coulombs", "Learned cell capacity in coulombs (divide by 3600 for Ah).",
     lambda p: tuple(ah * SECONDS_PER_HOUR for ah in p.cell_capacity_ah)),
    ("bmsgw_cell_resistance_ohms",
     "Learned cell DC resistance (10 s pulse), referred to 50 % SoC and 25 degrees Celsius.",
     lambda p: p.cell_resistance_ohm),
)

_USAGE_COUNTERS: tuple[tuple[str, str, tuple[float, ...], _CellGetter], ...] = (
    ("bmsgw_pack_time_at_temperature_seconds",
     "Time the pack has been online with its hottest sensor in the band (degrees Celsius, low edge included).",
     TEMPERATURE_BAND_EDGES_C, lambda p: p.time_at_temperature_s),
    ("bmsgw_pack_time_at_soc_seconds",
     "Time the pack has been online with its state of charge in the band (ratio 0..1, low edge included).",
     SOC_BAND_EDGES, lambda p: p.time_at_soc_s),
)


def band_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """The `band` label of each band: "-Inf..<e0>", "<e0>..<e1>", ..., "<en>..+Inf"."""
    bounds = ["-Inf", *(f"{edge:g}" for edge in edges), "+Inf"]
    return tuple(f"{low}..{high}" for low, high in pairwise(bounds))


def _cells(packs: Sequence[PackSnapshot]) -> Iterator[Metric]:
    for name, documentation, getter in _CELL_GAUGES:
        gauge = GaugeMetricFamily(name, documentation, labels=["pack", "cell"])
        for pack in packs:
            for number, value in enumerate(getter(pack), start=1):
                gauge.add_metric([pack.pack_id, str(number)], value)
        yield gauge
    temperature = GaugeMetricFamily(
        "bmsgw_cell_temperature_celsius", "Temperature of one pack sensor.", labels=["pack", "sensor"]
    )
    for pack in packs:
        for number, value in enumerate(pack.temperature_c, start=1):
            temperature.add_metric([pack.pack_id, str(number)], value)
    yield temperature


def _usage_histograms(packs: Sequence[PackSnapshot]) -> Iterator[Metric]:
    for name, documentation, edges, getter in _USAGE_COUNTERS:
        labels = band_labels(edges)
        counter = CounterMetricFamily(name, documentation, labels=["pack", "band"])
        for pack in packs:
            # a snapshot without usage history has no bands; otherwise one value per band, in order
            for band, seconds in zip(labels, getter(pack), strict=False):
                counter.add_metric([pack.pack_id, band], seconds)
        yield counter
