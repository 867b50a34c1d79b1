"""The OPC UA node map: the native file is valid and complete, values and qualities, load errors."""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.bms.usage import SOC_BAND_EDGES, TEMPERATURE_BAND_EDGES_C
from gateway.codec.node_map import load_node_map, load_node_map_file
from gateway.codec.node_model import ArrayGroup, DataType, NodeMap, pack_path, site_path, unece_unit_id
from gateway.codec.node_sources import sources
from gateway.codec.node_values import NodeValue, Quality, convert, element_count, pack_values, site_values
from gateway.domain.alarms import Severity
from gateway.domain.identity import PackIdentity
from gateway.domain.snapshot import PackSnapshot, SiteSnapshot
from gateway.errors import MappingError
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.factories import make_pack, make_snapshot

NATIVE_FILE = DEFAULT_MAPPINGS_DIR / "opcua" / "native.yaml"
PYTHON_TYPES = {DataType.DOUBLE: float, DataType.BOOLEAN: bool, DataType.INT32: int, DataType.UINT32: int,
                DataType.STRING: str}


@pytest.fixture(scope="module")
def native() -> NodeMap:
    return load_node_map(DEFAULT_MAPPINGS_DIR, "native")


@pytest.fixture
def raw() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(NATIVE_FILE.read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


def _attribute_exists(cls: type, name: str) -> bool:
    fields = {field.name for field in dataclasses.fields(cls)}
    return name in fields or isinstance(getattr(cls, name, None), property)


def test_every_source_in_the_native_file_exists_on_the_snapshot(raw: dict[str, Any]) -> None:
    """Checked against the snapshot classes directly, independently of the loader's source catalog."""
    entries: list[tuple[type, str]] = [(SiteSnapshot, e["source"]) for e in raw["site"]["variables"]]
    entries += [(PackSnapshot, e["source"]) for e in raw["pack"]["variables"]]
    for group in raw["pack"]["arrays"]:
        for entry in group.get("variables") or [group["variable"]]:
            entries.append((PackSnapshot, entry["source"]))
    entries += [(PackSnapshot, e["source"]) for e in raw["pack"]["identity"]["properties"]]
    assert len(entries) > 50
    for cls, source in entries:
        head, _, tail = source.partition(".")
        if head == "alarm_mask":
            assert Severity[tail.upper()] is not Severity.NONE, source
        elif head == "identity":
            assert _attribute_exists(PackIdentity, tail), source
        else:
            assert _attribute_exists(cls, source), f"{cls.__name__} has no {source}"


def test_native_map_publishes_what_the_brief_requires(native: NodeMap) -> None:
    pack_sources = {v.source for v in native.pack}
    required = {
        "soc", "soh", "pack_voltage_v", "pack_current_a", "power_w", "charge_current_limit_a",
        "discharge_current_limit_a", "charge_voltage_limit_v", "discharge_voltage_limit_v",
        "cell_voltage_min_v", "cell_voltage_max_v", "temperature_min_c", "temperature_max_c", "soc_min",
        "soc_max", "capacity_ah", "state", "online", "data_age_s", "contactor_state", "alarm_mask.warning",
        "alarm_mask.alarm", "alarm_mask.trip", "ah_charged", "ah_discharged", "wh_charged",
        "wh_discharged", "equivalent_full_cycles", "soc_sigma", "soh_resistance", "current_bias_a",
    }
    assert required <= pack_sources
    arrays = {g.browse_name: {v.source for v in g.variables} for g in native.arrays}
    assert arrays == {
        "Cells": {"cell_voltage_v", "cell_soc", "cell_soc_sigma", "cell_capacity_ah", "cell_resistance_ohm"},
        "Temperatures": {"temperature_c"},
        "TimeAtTemperature": {"time_at_temperature_s"},
        "TimeAtSoC": {"time_at_soc_s"},
    }
    assert [p.browse_name for p in native.identity.properties] == [
        "SerialNumber", "FirmwareVersion", "Chemistry", "CellCount", "SensorCount", "NominalCapacity"]
    for variable in (*native.site, *native.pack, *(v for g in native.arrays for v in g.variables)):
        assert variable.description
        assert (variable.data_type is DataType.DOUBLE) == (variable.unit is not None), variable.id
        if variable.eu_range is not None:
            assert variable.eu_range[0] < variable.eu_range[1]
    state = next(v for v in native.pack if v.id == "state")
    assert state.enum is not None
    assert state.enum.text_of(4) == "COMM_LOST"


def test_loader_catalog_agrees(native: NodeMap) -> None:
    assert all(v.source in sources("site") for v in native.site)
    assert all(v.source in sources("pack") for v in native.pack)
    assert all(v.source in sources("array") for g in native.arrays for v in g.variables)
    assert all(p.source in sources("identity") for p in native.identity.properties)


@pytest.mark.parametrize(("code", "unit_id"), [
    ("VLT", 0x564C54), ("AMP", 0x414D50), ("WTT", 0x575454), ("CEL", 0x43454C), ("AMH", 0x414D48),
    ("C62", 0x433632), ("SEC", 0x534543), ("WHR", 0x574852), ("P1", 0x5031),
])
def test_unece_unit_ids(code: str, unit_id: int) -> None:
    assert unece_unit_id(code) == unit_id


def test_every_node_of_an_online_pack_is_good_and_typed(native: NodeMap) -> None:
    pack = make_pack(0)
    values = pack_values(native, pack)
    expected_count = len(native.pack) + 32 * 5 + 8 + 10 + 10 + len(native.identity.properties)
    assert len(values) == expected_count
    assert element_count(native.arrays[0], pack) == 32
    assert {value.quality for value in values.values()} == {Quality.GOOD}
    typed = {v.id: v.data_type for v in native.pack}
    for key, value in values.items():
        if key in typed:
            assert type(value.value) is PYTHON_TYPES[typed[key]], key
    assert values["soc"] == NodeValue(0.56, Quality.GOOD)
    assert values["power"].value == pytest.approx(pack.pack_voltage_v * -42.5)
    assert values["cells/cell01/voltage"] == NodeValue(3.6, Quality.GOOD)
    assert values["cells/cell32/soc"].value == pytest.approx(0.581)
    assert values["temperatures/temperature08"].value == pytest.approx(25.7)
    assert values["state"] == NodeValue(1, Quality.GOOD)
    assert values["contactor_state"] == NodeValue(2, Quality.GOOD)
    assert values["identity/chemistry"] == NodeValue("NMC", Quality.GOOD)
    assert values["identity/cell_count"] == NodeValue(32, Quality.GOOD)
    assert values["soc_sigma"] == NodeValue(0.012, Quality.GOOD)
    assert values["soh_resistance"] == NodeValue(0.93, Quality.GOOD)
    assert values["current_bias"] == NodeValue(-0.42, Quality.GOOD)
    assert values["cells/cell32/soc_sigma"].value == pytest.approx(0.0131)
    assert values["cells/cell32/capacity"].value == pytest.approx(204.1)
    assert values["cells/cell32/resistance"].value == pytest.approx(0.000746)
    assert values["time_at_temperature/band06"] == NodeValue(7200.0, Quality.GOOD)
    assert values["time_at_soc/band10"] == NodeValue(90.0, Quality.GOOD)


def test_offline_pack_live_values_are_bad_held_values_good(native: NodeMap) -> None:
    values = pack_values(native, make_pack(0, online=False))
    for variable in native.pack:
        quality = values[variable.id].quality
        assert quality is (Quality.NO_COMMUNICATION if variable.live else Quality.GOOD), variable.id
    assert values["cells/cell05/soc"].quality is Quality.NO_COMMUNICATION  # known, but a pack reading
    assert values["cells/cell05/soc_sigma"].quality is Quality.NO_COMMUNICATION  # goes with the SoC
    assert values["soc_sigma"].quality is Quality.NO_COMMUNICATION
    # what the estimator has learned is the gateway's own value, like SoH and capacity
    assert values["soh_resistance"] == NodeValue(0.93, Quality.GOOD)
    assert values["current_bias"] == NodeValue(-0.42, Quality.GOOD)
    assert values["cells/cell05/capacity"].value == pytest.approx(201.4)
    assert values["cells/cell05/capacity"].quality is Quality.GOOD
    assert values["cells/cell05/resistance"].quality is Quality.GOOD
    assert values["time_at_temperature/band05"] == NodeValue(3600.0, Quality.GOOD)
    assert values["time_at_soc/band02"] == NodeValue(10.0, Quality.GOOD)
    assert values["charge_current_limit"] == NodeValue(0.0, Quality.GOOD)
    assert values["online"] == NodeValue(False, Quality.GOOD)
    assert values["identity/serial_number"].quality is Quality.GOOD


def test_unknown_values_are_never_published_as_numbers(native: NodeMap) -> None:
    pack = dataclasses.replace(make_pack(0), soh=math.nan, identity=None, temperature_c=(20.0, math.nan))
    values = pack_values(native, pack)
    assert values["soh"].quality is Quality.NO_COMMUNICATION  # not live, but unknown
    assert values["temperatures/temperature02"].quality is Quality.NO_COMMUNICATION
    assert values["identity/serial_number"] == NodeValue("", Quality.WAITING_FOR_DATA)
    assert values["identity/nominal_capacity"].quality is Quality.WAITING_FOR_DATA
    site = dataclasses.replace(make_snapshot(packs=1, offline=(0,)).site, voltage_v=math.nan)
    site_nodes = site_values(native, site)
    assert site_nodes["voltage"].quality is Quality.NO_COMMUNICATION
    assert site_nodes["power"].quality is Quality.NO_COMMUNICATION
    assert site_nodes["packs_online"] == NodeValue(0, Quality.GOOD)


def test_same_as_is_what_a_client_would_see() -> None:
    nan = NodeValue(math.nan, Quality.NO_COMMUNICATION)
    assert nan.same_as(NodeValue(math.nan, Quality.NO_COMMUNICATION))
    assert not nan.same_as(NodeValue(math.nan, Quality.GOOD))
    assert not nan.same_as(None)
    assert not NodeValue(1, Quality.GOOD).same_as(NodeValue(True, Quality.GOOD))
    assert NodeValue(0.5, Quality.GOOD).same_as(NodeValue(0.5, Quality.GOOD))
    assert not NodeValue(0.5, Quality.GOOD).same_as(NodeValue(0.6, Quality.GOOD))
    # a Bad value carries no number: a change behind it publishes nothing new
    assert NodeValue(0.5, Quality.NO_COMMUNICATION).same_as(NodeValue(0.6, Quality.NO_COMMUNICATION))


def test_integers_are_clamped_to_their_type(native: NodeMap) -> None:
    fault_flags = next(v for v in native.pack if v.source == "pack_fault_flags")
    assert convert(fault_flags, -5).value == 0
    assert convert(fault_flags, 2**40).value == 2**32 - 1


def test_node_ids_are_unique_and_stable(native: NodeMap) -> None:
    snapshot = make_snapshot(packs=2)
    paths = [site_path(key) for key in site_values(native, snapshot.site)]
    for pack in snapshot.packs:
        paths += [pack_path(pack.pack_id, key) for key in pack_values(native, pack)]
    assert len(paths) == len(set(paths))
    assert all(re.fullmatch(r"site(/[a-z0-9_.-]+)+", path) for path in paths)
    assert "site/soc" in paths
    assert "site/packs/pack-01/soc" in paths
    assert "site/packs/pack-02/cells/cell32/voltage" in paths
    assert "site/packs/pack-01/temperatures/temperature08" in paths
    assert "site/packs/pack-01/identity/serial_number" in paths


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _problems(tmp_path: Path, data: dict[str, Any]) -> list[tuple[str, str, str]]:
    path = _write(tmp_path, data)
    with pytest.raises(MappingError) as raised:
        load_node_map_file(path)
    assert all(problem.source == str(path) for problem in raised.value.problems)
    assert str(path) in str(raised.value)
    return [(p.key, p.message, p.fix) for p in raised.value.problems]


def _pack_variable(raw: dict[str, Any], variable_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(e for e in raw["pack"]["variables"] if e["id"] == variable_id)
    return entry


def test_unknown_source_names_key_and_fix(tmp_path: Path, raw: dict[str, Any]) -> None:
    _pack_variable(raw, "soc")["source"] = "state_of_charge"
    [(key, message, fix)] = _problems(tmp_path, raw)
    assert key == "pack.variables[3].source"
    assert "'state_of_charge' is not a pack source" in message
    assert "soc" in fix
    assert "pack_voltage_v" in fix


def test_type_unit_range_and_enum_checks(tmp_path: Path, raw: dict[str, Any]) -> None:
    _pack_variable(raw, "online")["data_type"] = "Double"
    del _pack_variable(raw, "voltage")["unit"]
    _pack_variable(raw, "current")["unit"] = "XYZ"
    _pack_variable(raw, "power")["range"] = [10, -10]
    _pack_variable(raw, "fault_flags")["unit"] = "VLT"
    _pack_variable(raw, "contactor_state")["enum"] = "PackState"
    _pack_variable(raw, "highest_severity")["enum"] = "Colour"
    problems = {key: (message, fix) for key, message, fix in _problems(tmp_path, raw)}
    assert problems["pack.variables[1].data_type"][1] == "use data_type Boolean"
    assert problems["pack.variables[5].unit"][0] == "is required on a Double (AnalogItemType) variable"
    assert "not defined under units" in problems["pack.variables[6].unit"][0]
    assert "not below high" in problems["pack.variables[7].range"][0]
    assert "only allowed on Double" in problems["pack.variables[20].unit"][0]
    assert problems["pack.variables[19].enum"][1] == "use enum: ContactorState"
    assert "unknown enumeration 'Colour'" in problems["pack.variables[21].enum"][0]
    assert len(problems) == 7  # every problem reported at once


def test_duplicates_and_patterns(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["pack"]["variables"][1]["id"] = "state"
    raw["pack"]["arrays"][0]["element"] = "Cell"
    raw["pack"]["arrays"][1]["element"] = "Temp-{n}"
    raw["pack"]["identity"]["properties"][1]["browse_name"] = "SerialNumber"
    problems = {key: message for key, message, _ in _problems(tmp_path, raw)}
    assert problems["pack"] == "id 'state' is used twice"
    assert problems["pack.arrays[0].element"] == "does not contain the element number {n}"
    assert "not a valid browse name" in problems["pack.arrays[1].element"]
    assert problems["pack.identity.properties"] == "browse_name 'SerialNumber' is used twice"


def test_shape_errors_come_from_pydantic_with_key_and_fix(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["pack"]["variables"][0]["colour"] = "red"
    raw["site"]["variables"][0]["data_type"] = "Float"
    raw["pack"]["arrays"][0]["variable"] = {"source": "cell_soc", "data_type": "Double"}
    problems = {key: fix for key, _, fix in _problems(tmp_path, raw)}
    assert problems["pack.variables[0].colour"].startswith("remove this key")
    assert "Double" in problems["site.variables[0].data_type"]
    assert "pack.arrays[0]" in problems


def test_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as raised:
        load_node_map(tmp_path, "native")
    [problem] = raised.value.problems
    assert problem.key == "(file)"
    assert "mappings_dir" in problem.fix


def _group(node_map: NodeMap, group_id: str) -> ArrayGroup:
    return next(g for g in node_map.arrays if g.id == group_id)


@pytest.mark.parametrize(("group_id", "source", "edges", "unit"), [
    ("time_at_temperature", "time_at_temperature_s", TEMPERATURE_BAND_EDGES_C, "CEL"),
    ("time_at_soc", "time_at_soc_s", SOC_BAND_EDGES, "C62"),
])
def test_histogram_bands_are_the_ones_the_estimator_counts(native: NodeMap, group_id: str, source: str,
                                                           edges: tuple[float, ...], unit: str) -> None:
    """The edges are data in the map; they must be exactly gateway.bms.usage's, or SCADA mislabels bands."""
    group = _group(native, group_id)
    assert group.bands is not None
    assert group.bands.edges == edges
    assert group.bands.unit.code == unit
    assert [v.source for v in group.variables] == [source]
    assert not group.variables[0].live  # a lifetime counter the gateway holds
    pack = make_pack(0)
    assert group.bands.count == len(getattr(pack, source)) == element_count(group, pack)
    values = pack_values(native, pack)
    for n, seconds in enumerate(getattr(pack, source), start=1):
        assert values[f"{group_id}/band{n:02d}"] == NodeValue(seconds, Quality.GOOD)
    assert f"{group_id}/band{group.bands.count + 1:02d}" not in values


def test_band_names_say_which_range_they_count(native: NodeMap) -> None:
    temperature = _group(native, "time_at_temperature")
    bands = temperature.bands
    assert bands is not None
    assert bands.bounds(1) == (-math.inf, -20.0)
    assert bands.bounds(5) == (10.0, 20.0)
    assert bands.bounds(10) == (60.0, math.inf)
    assert temperature.element_text(1) == "time online with the hottest sensor under -20 °C"
    assert temperature.element_text(5) == "time online with the hottest sensor from 10 °C to under 20 °C"
    assert temperature.element_text(10) == "time online with the hottest sensor at or above 60 °C"
    assert temperature.band_edges_key == "time_at_temperature/band_edges"
    soc = _group(native, "time_at_soc")
    assert soc.element_text(2) == "time online with the pack SoC from 0.1 to under 0.2"
    assert soc.bands is not None
    assert soc.bands.unit_text == "as ratios (unit 1, C62)"
    with pytest.raises(IndexError):
        bands.bounds(11)


def test_a_histogram_has_at_most_one_element_per_band(native: NodeMap) -> None:
    group = _group(native, "time_at_soc")
    longer = dataclasses.replace(make_pack(0), time_at_soc_s=tuple(float(n) for n in range(12)))
    assert element_count(group, longer) == 10
    assert "time_at_soc/band11" not in pack_values(native, longer)
    empty = dataclasses.replace(make_pack(0), time_at_soc_s=())
    assert element_count(group, empty) == 0
    assert not any(key.startswith("time_at_soc/") for key in pack_values(native, empty))


def test_band_checks(tmp_path: Path, raw: dict[str, Any]) -> None:
    arrays = {group["id"]: group for group in raw["pack"]["arrays"]}
    arrays["time_at_temperature"]["bands"]["edges"] = [0, 10, 10, 20]
    arrays["time_at_soc"]["bands"]["unit"] = "PCT"
    arrays["time_at_soc"]["element_description"] = "time at SoC band {n}"
    arrays["cells"]["element_description"] = "series cell {n} {band}"
    problems = {key: (message, fix) for key, message, fix in _problems(tmp_path, raw)}
    assert "not a strictly increasing" in problems["pack.arrays[2].bands.edges"][0]
    assert "not defined under units" in problems["pack.arrays[3].bands.unit"][0]
    assert problems["pack.arrays[3].element_description"] == (
        "does not name the band of the element", "add {band} (it reads e.g. 'from 10 °C to under 20 °C')")
    assert problems["pack.arrays[0].element_description"][0] == "uses {band}, but the array has no bands"
    assert len(problems) == 4
