"""The metric names reviewed against the Prometheus naming conventions, as a test a new metric must pass:
one prefix, base units as suffixes, `_ratio` for 0..1, `_total` on counters, `_info` with identity labels, and
every gauge without a unit on a reviewed list of dimensionless quantities (counts, states, flags, masks)."""

from __future__ import annotations

import re

from prometheus_client.metrics_core import Metric

from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.event_log import WriteCounts
from gateway.adapters.prometheus_collector import (
    LOOP_LAG_BUCKETS_S,
    DurationHistogram,
    PrometheusCollector,
    SelfMetricSources,
)
from gateway.domain.identity import PackIdentity
from gateway.runtime.hub import SnapshotHub
from tests.factories import make_snapshot

BASE_UNITS = ("_volts", "_amperes", "_watts", "_seconds", "_celsius", "_ratio", "_coulombs", "_joules", "_ohms")
NOT_BASE_UNITS = re.compile(r"_(percent|hours?|minutes?|milli\w*|kilo\w*|ah|wh|kwh|mv|ma|kw|kelvin|degrees)(_|$)")
DIMENSIONLESS_GAUGES = {  # reviewed: a count, an enum state, a flag or a bit mask
    "bmsgw_modbus_clients_connected", "bmsgw_opcua_clients_connected", "bmsgw_opcua_sessions",
    "bmsgw_snapshot_sequence", "bmsgw_site_packs_configured", "bmsgw_site_packs_online", "bmsgw_site_packs_eligible",
    "bmsgw_site_packs_admitted", "bmsgw_site_ems_heartbeat_state", "bmsgw_site_alarm_severity", "bmsgw_pack_up",
    "bmsgw_pack_state", "bmsgw_pack_contactor_state", "bmsgw_pack_balancing_status", "bmsgw_pack_balancing_cells",
    "bmsgw_pack_admission_status", "bmsgw_pack_admission_reasons", "bmsgw_pack_disconnect_requested",
    "bmsgw_pack_balancing_enabled", "bmsgw_pack_balancing_mask", "bmsgw_pack_alarm_active",
    "bmsgw_pack_alarm_severity", "bmsgw_pack_alarm_latched", "bmsgw_pack_alarm_unacknowledged",
    "bmsgw_pack_request", "bmsgw_can_bus_up", "bmsgw_can_bus_state",
}


async def _families() -> list[Metric]:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(2))
    sources = SelfMetricSources(DurationHistogram(), DurationHistogram(LOOP_LAG_BUCKETS_S), ClientTraffic(),
                                WriteCounts(), opcua=ClientTraffic)
    return list(PrometheusCollector(hub, sources).collect())


async def test_every_name_has_the_prefix_and_no_unit_other_than_a_base_unit() -> None:
    for family in await _families():
        assert family.name.startswith("bmsgw_"), family.name
        assert not NOT_BASE_UNITS.search(family.name), f"{family.name}: use a base unit"


async def test_counters_end_in_total_and_gauges_carry_a_base_unit_or_are_reviewed_dimensionless() -> None:
    for family in await _families():
        names = {sample.name for sample in family.samples}
        if family.type == "counter":
            assert names <= {f"{family.name}_total", f"{family.name}_created"}, names
        elif family.type == "gauge":
            assert family.name.endswith(BASE_UNITS) or family.name in DIMENSIONLESS_GAUGES, family.name
        elif family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name


async def test_state_of_charge_and_health_are_ratios() -> None:
    for family in await _families():
        if family.type == "gauge" and re.search(r"_(soc|soh)(_|$)", family.name):
            assert family.name.endswith("_ratio"), family.name


async def test_identity_is_an_info_metric_with_identity_labels() -> None:
    families = {family.name: family for family in await _families()}
    assert families["bmsgw_build"].type == "info"
    pack = families["bmsgw_pack"]
    assert pack.type == "info"
    sample = pack.samples[0]
    assert sample.name == "bmsgw_pack_info"
    assert sample.value == 1
    identity = make_snapshot(1).packs[0].identity
    assert isinstance(identity, PackIdentity)
    assert {"pack", "cell_model", "serial", "firmware", "chemistry"} <= set(sample.labels)
    assert sample.labels["serial"] == identity.serial_number
