"""Everything in a snapshot is published in the OPC UA address space of the native node map.

Adding a field to PackSnapshot / SiteSnapshot fails here until mappings/opcua/native.yaml publishes
it (or it is added, with a reason, to the exclusion lists below).
"""

from __future__ import annotations

import dataclasses

import pytest

from gateway.codec.node_map import load_node_map
from gateway.codec.node_model import NodeMap
from gateway.domain.identity import PackIdentity
from gateway.domain.snapshot import PackSnapshot, SiteSnapshot
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.factories import attributes_of

NOT_A_VARIABLE: dict[str, dict[str, str]] = {
    "pack": {
        "pack_id": "the browse name and NodeId segment of the pack object",
        "index": "position in the configuration; the NodeId uses the pack id instead",
        "identity": "published as the properties of the Identity object",
        "alarms": "published as AlarmMaskWarning / AlarmMaskAlarm / AlarmMaskTrip and HighestSeverity",
        "active_alarms": "published as ActiveAlarms (text) and ActiveAlarmCount",
        "present_rules": "published as the pack's alarm conditions (Alarms folder, events)",
        "active_alarm_code": "the Modbus encoding of the active-alarm list; OPC UA has ActiveAlarms",
        "active_alarm_status": "the Modbus encoding of the active-alarm list; OPC UA has ActiveAlarms",
        "active_alarm_cell": "the Modbus encoding of the active-alarm list; OPC UA has ActiveAlarms",
        "request_flags": "the Modbus encoding of CoolingRequest / HeatingRequest / ContactorOpenRequest",
        "admitted": "published as AdmissionStatus (admitted or admitted by an operator)",
    },
    "site": {
        "alarm_masks": "published as AlarmMaskWarning / AlarmMaskAlarm / AlarmMaskTrip",
    },
}


@pytest.fixture(scope="module")
def native() -> NodeMap:
    return load_node_map(DEFAULT_MAPPINGS_DIR, "native")


@pytest.mark.parametrize("kind", ["pack", "site"])
def test_every_snapshot_attribute_is_a_node_or_excluded(native: NodeMap, kind: str) -> None:
    if kind == "pack":
        offered = attributes_of(PackSnapshot)
        published = {v.source for v in native.pack} | {v.source for g in native.arrays for v in g.variables}
    else:
        offered = attributes_of(SiteSnapshot)
        published = {v.source for v in native.site}
    excluded = set(NOT_A_VARIABLE[kind])
    missing = offered - published - excluded
    assert not missing, f"{kind} attributes nowhere in the OPC UA node map: {sorted(missing)} (publish them in " \
        "mappings/opcua/native.yaml or add them to NOT_A_VARIABLE with a reason)"
    assert not excluded & published, "an excluded attribute is published: remove it from the exclusions"
    assert excluded <= offered, "the exclusion list names attributes that no longer exist"


def test_every_identity_field_is_a_property(native: NodeMap) -> None:
    published = {p.source.removeprefix("identity.") for p in native.identity.properties}
    assert published == {field.name for field in dataclasses.fields(PackIdentity)}
