"""Every register map entry reads something real, and everything in a snapshot is published.

Adding a field to PackSnapshot / SiteSnapshot / PackIdentity fails here until the native map
publishes it (or it is added, with a reason, to the exclusion lists below).
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from gateway.codec.register_map import RegisterMap, load_register_map
from gateway.codec.register_sources import ArraySource, ScalarSource, Source, UnitKind, sources_for
from gateway.domain.identity import PackIdentity
from gateway.domain.snapshot import PackSnapshot, SiteSnapshot
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.factories import attributes_of, make_snapshot

NOT_PUBLISHED_ON_MODBUS: dict[str, dict[str, str]] = {
    "pack": {
        "pack_id": "text; the pack's unit id identifies it (see the unit id table in docs/modbus.md)",
        "cell_model": "text identifier of the configured cell model; configuration, not measurement",
        "cell_soc_sigma": "per-cell uncertainty is diagnostic detail; OPC UA and Prometheus carry it",
        "time_at_temperature_s": "usage histogram; OPC UA and Prometheus carry it",
        "time_at_soc_s": "usage histogram; OPC UA and Prometheus carry it",
        "active_alarms": "published as the active_alarm_code / _status / _cell lists",
        "present_rules": "per rule: the alarm bitfields and the active-alarm list cover it per code",
        "active_alarm_text": "the OPC UA text form of the same list",
        "cooling_request": "published as bit 0 of request_flags",
        "heating_request": "published as bit 1 of request_flags",
        "contactor_open_request": "published as bit 2 of request_flags",
        "admitted": "published as admission_status (2 admitted, 3 admitted by an operator)",
        "admission_reason_text": "the OPC UA text form of admission_reasons",
    },
    "site": {},
}
EMPTY_WHEN_HEALTHY = {"active_alarm_code", "active_alarm_status", "active_alarm_cell"}  # no alarm is present
SNAPSHOT_TYPES: dict[UnitKind, type[PackSnapshot] | type[SiteSnapshot]] = {
    "pack": PackSnapshot, "site": SiteSnapshot,
}


@pytest.fixture(scope="module")
def native() -> RegisterMap:
    return load_register_map(DEFAULT_MAPPINGS_DIR, "native")


def published_sources(register_map: RegisterMap, kind: UnitKind) -> list[Source]:
    vocabulary = sources_for(kind, register_map.version)
    unit = register_map.pack if kind == "pack" else register_map.site
    return [vocabulary[entry.source] for entry in unit.entries]


@pytest.mark.parametrize("kind", ["pack", "site"])
def test_every_entry_reads_attributes_that_exist(native: RegisterMap, kind: UnitKind) -> None:
    snapshot = make_snapshot(2)
    subject = snapshot.packs[0] if kind == "pack" else snapshot.site
    offered = attributes_of(SNAPSHOT_TYPES[kind])
    for source in published_sources(native, kind):
        for attribute in source.reads:
            assert attribute in offered, f"{source.name} reads {attribute}, which {kind} snapshots lack"
            assert hasattr(subject, attribute)
        if isinstance(source, ScalarSource):
            value = source.get(subject, snapshot)
            assert isinstance(value, float)
            assert not math.isnan(value), f"{source.name} is unknown for a healthy snapshot"
        elif source.name not in EMPTY_WHEN_HEALTHY:
            assert len(source.get(subject)) > 0


@pytest.mark.parametrize("kind", ["pack", "site"])
def test_the_whole_vocabulary_exists_on_the_snapshot_types(kind: UnitKind) -> None:
    offered = attributes_of(SNAPSHOT_TYPES[kind])
    for source in sources_for(kind, 1).values():
        assert set(source.reads) <= offered, source.name
        assert isinstance(source, ScalarSource | ArraySource)


@pytest.mark.parametrize("kind", ["pack", "site"])
def test_every_snapshot_field_is_published_or_excluded(native: RegisterMap, kind: UnitKind) -> None:
    published = {attribute for source in published_sources(native, kind) for attribute in source.reads}
    excluded = set(NOT_PUBLISHED_ON_MODBUS[kind])
    offered = attributes_of(SNAPSHOT_TYPES[kind])
    missing = offered - published - excluded
    assert not missing, f"{kind} attributes nowhere in the native map: {sorted(missing)} (publish them in " \
        "mappings/modbus/native.yaml or add them to NOT_PUBLISHED_ON_MODBUS with a reason)"
    assert not excluded & published, "an excluded attribute is published: remove it from the exclusions"
    assert excluded <= offered, "the exclusion list names attributes that no longer exist"


def test_every_identity_field_is_published(native: RegisterMap) -> None:
    published = {entry.source.removeprefix("identity.") for entry in native.pack.entries
                 if entry.source.startswith("identity.")}
    published = {"firmware_version" if name.startswith("firmware_") else name for name in published}
    assert published == {field.name for field in dataclasses.fields(PackIdentity)}


def test_every_alarm_severity_has_a_mask_on_both_units(native: RegisterMap) -> None:
    for unit in (native.pack, native.site):
        sources = {entry.source for entry in unit.entries}
        assert {"alarm_mask.warning", "alarm_mask.alarm", "alarm_mask.trip"} <= sources
        assert {"map.version", "snapshot.sequence", "highest_severity"} <= sources
