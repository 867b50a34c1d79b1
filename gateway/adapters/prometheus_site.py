"""Site-level, CAN-bus and gateway self metric families, built from one snapshot at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.adapters.prometheus_packs import SECONDS_PER_HOUR
from gateway.domain.snapshot import BusStatistics, GatewaySnapshot, SiteSnapshot

_SITE_GAUGES: tuple[tuple[str, str, Callable[[SiteSnapshot], float]], ...] = (
    ("bmsgw_site_packs_configured", "Number of packs configured at the site.", lambda s: s.pack_count),
    ("bmsgw_site_packs_online", "Number of packs whose data is fresh.", lambda s: s.packs_online),
    ("bmsgw_site_soc_ratio", "Site state of charge over the online packs (0..1).", lambda s: s.soc),
    ("bmsgw_site_soh_ratio", "Site state of health over the online packs (0..1).", lambda s: s.soh),
    ("bmsgw_site_voltage_volts", "Site DC voltage.", lambda s: s.voltage_v),
    ("bmsgw_site_current_amperes", "Site current; positive = charging.", lambda s: s.current_a),
    ("bmsgw_site_power_watts", "Site power; positive = charging.", lambda s: s.power_w),
    ("bmsgw_site_capacity_coulombs", "Usable capacity of the online packs in coulombs (/3600 for Ah).",
     lambda s: s.capacity_ah * SECONDS_PER_HOUR),
    ("bmsgw_site_charge_current_limit_amperes", "Largest charge current the site allows now.",
     lambda s: s.charge_current_limit_a),
    ("bmsgw_site_discharge_current_limit_amperes", "Largest discharge current the site allows now.",
     lambda s: s.discharge_current_limit_a),
    ("bmsgw_site_charge_voltage_limit_volts", "Highest voltage the site allows while charging.",
     lambda s: s.charge_voltage_limit_v),
    ("bmsgw_site_discharge_voltage_limit_volts", "Lowest voltage the site allows while discharging.",
     lambda s: s.discharge_voltage_limit_v),
    ("bmsgw_site_charge_power_limit_watts", "Largest charge power the site allows now.",
     lambda s: s.charge_power_limit_w),
    ("bmsgw_site_discharge_power_limit_watts", "Largest discharge power the site allows now.",
     lambda s: s.discharge_power_limit_w),
    ("bmsgw_site_packs_eligible", "Packs online, admitted, with the contactor closed (sharing the site current).",
     lambda s: float(s.packs_eligible)),
    ("bmsgw_site_packs_admitted", "Packs admitted.", lambda s: float(s.packs_admitted)),
    ("bmsgw_site_ems_heartbeat_state", "EMS heartbeat on the Modbus command path: 0 not supervised, 1 received, "
     "2 lost (limits zero).", lambda s: float(s.ems_heartbeat)),
    ("bmsgw_site_alarm_severity", "Highest active alarm severity: 0 none, 1 warning, 2 alarm, 3 trip.",
     lambda s: float(s.highest_severity)),
)

_BUS_COUNTERS: tuple[tuple[str, str, Callable[[BusStatistics], int]], ...] = (
    ("bmsgw_can_frames_received", "CAN frames read from the bus.", lambda b: b.frames_received),
    ("bmsgw_can_frames_decoded", "CAN frames decoded into signals.", lambda b: b.frames_decoded),
    ("bmsgw_can_frames_dropped", "CAN frames dropped because the receive queue was full.",
     lambda b: b.frames_dropped_queue_full),
    ("bmsgw_can_frames_sent", "CAN frames written to the bus.", lambda b: b.frames_sent),
    ("bmsgw_can_error_frames", "CAN error frames received (bus errors reported by the controller).",
     lambda b: b.error_frames),
    ("bmsgw_can_bus_failures", "Times the bus was lost (interface error or bus-off) and closed.",
     lambda b: b.failures),
    ("bmsgw_can_bus_off", "Times the bus's controller went bus-off.", lambda b: b.bus_off),
    ("bmsgw_can_bus_reconnects", "Times a lost bus was opened again.", lambda b: b.reconnects),
)
_BUS_GAUGES: tuple[tuple[str, str, Callable[[BusStatistics], float]], ...] = (
    ("bmsgw_can_bus_up", "1 while the bus is open, 0 while a lost bus waits to be reopened.",
     lambda b: float(b.up)),
    ("bmsgw_can_bus_state", "Controller error state as error frames (or, for bus-off, the interface) report it: "
     "0 error-active, 1 error-passive, 2 bus-off.", lambda b: float(b.error_state)),
    ("bmsgw_can_bus_last_change_timestamp_seconds", "Unix time the bus last went up or down or changed error state.",
     lambda b: b.state_changed_wall_time),
)


def site_families(site: SiteSnapshot) -> Iterator[Metric]:
    for name, documentation, getter in _SITE_GAUGES:
        yield GaugeMetricFamily(name, documentation, value=getter(site))


def bus_families(buses: Sequence[BusStatistics]) -> Iterator[Metric]:
    for name, documentation, getter in _BUS_COUNTERS:
        counter = CounterMetricFamily(name, documentation, labels=["bus"])
        for bus in buses:
            counter.add_metric([bus.bus], getter(bus))
        yield counter
    for name, documentation, gauge_getter in _BUS_GAUGES:
        gauge = GaugeMetricFamily(name, documentation, labels=["bus"])
        for bus in buses:
            gauge.add_metric([bus.bus], gauge_getter(bus))
        yield gauge
    rejected = CounterMetricFamily(
        "bmsgw_can_frames_rejected", "CAN frames rejected by decoding or integrity checks.",
        labels=["bus", "reason"],
    )
    for bus in buses:
        for reason, count in sorted(bus.frames_rejected.items()):
            rejected.add_metric([bus.bus, reason], count)
    yield rejected


def snapshot_families(snapshot: GatewaySnapshot) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "bmsgw_snapshot_sequence", "Sequence number of the latest snapshot.", value=snapshot.sequence
    )
    yield GaugeMetricFamily(
        "bmsgw_snapshot_timestamp_seconds", "Unix time at which the latest snapshot was taken.",
        value=snapshot.wall_time,
    )
    yield GaugeMetricFamily(
        "bmsgw_tick_last_duration_seconds", "Duration of the engine tick that produced the latest snapshot.",
        value=snapshot.tick_duration_s,
    )
