"""The bus state families: what a bus's counters and state say, as Prometheus samples (the collector, the real
exposition format and parser; the live path is tests/e2e/test_slcan_reconnect.py)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.adapters.prometheus_collector import (
    LOOP_LAG_BUCKETS_S,
    DurationHistogram,
    PrometheusCollector,
    SelfMetricSources,
)
from gateway.domain.snapshot import BusStatistics
from gateway.runtime.bus_counters import BusErrorState
from gateway.runtime.hub import SnapshotHub
from tests.factories import make_snapshot


async def test_a_bus_down_after_bus_off_and_one_up_again_read_as_they_are() -> None:
    down = BusStatistics("packs", 10, 9, MappingProxyType({}), 0, 3, up=False, error_state=int(BusErrorState.OFF),
                         error_frames=4, failures=2, bus_off=1, reconnects=1, state_changed_wall_time=1.7e9)
    healthy = BusStatistics("inverter", 5, 5, MappingProxyType({}), 0, 8, state_changed_wall_time=1.6e9)
    hub = SnapshotHub()
    await hub.publish(replace(make_snapshot(1), buses=(down, healthy)))
    registry = CollectorRegistry()
    registry.register(PrometheusCollector(hub, SelfMetricSources(DurationHistogram(),
                                                                 DurationHistogram(LOOP_LAG_BUCKETS_S))))
    samples = {(s.name, s.labels["bus"]): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples if family.name.startswith("bmsgw_can_")}

    expected = {
        "bmsgw_can_bus_up": (0.0, 1.0),
        "bmsgw_can_bus_state": (2.0, 0.0),
        "bmsgw_can_error_frames_total": (4.0, 0.0),
        "bmsgw_can_bus_failures_total": (2.0, 0.0),
        "bmsgw_can_bus_off_total": (1.0, 0.0),
        "bmsgw_can_bus_reconnects_total": (1.0, 0.0),
        "bmsgw_can_bus_last_change_timestamp_seconds": (1.7e9, 1.6e9),
    }
    for name, (packs, inverter) in expected.items():
        assert (samples[(name, "packs")], samples[(name, "inverter")]) == (packs, inverter), name
