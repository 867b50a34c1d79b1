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

from gateway.codec.node_map import load_node_map, load_node_map_file
from gateway.codec.node_model import DataType, NodeMap, pack_path, site_path, unece_unit_id
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
        "wh_discharged", "equivalent_full_cycles",
    }
    assert required <= pack_sources
    assert {g.browse_name for g in native.arrays} == {"Cells", "Temperatures"}
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
    expected_count = len(native.pack) + 32 * 2 + 8 + len(native.identity.properties)
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


def test_offline_pack_live_values_are_bad_held_values_good(native: NodeMap) -> None:
    values = pack_values(native, make_pack(0, online=False))
    for variable in native.pack:
        quality = values[variable.id].quality
        assert quality is (Quality.NO_COMMUNICATION if variable.live else Quality.GOOD), variable.id
    assert values["cells/cell05/soc"].quality is Quality.NO_COMMUNICATION  # known, but a pack reading
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
