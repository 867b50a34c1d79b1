"""The register map codec: loading, validation errors, and encoding snapshots into register images.

Images are decoded here by hand (struct), independently of the encoder.
"""

from __future__ import annotations

import copy
import math
import struct
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
import yaml
from numpy.typing import NDArray

from gateway.codec.register_map import RegisterMap, load_register_map, parse_register_map
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.identity import PackIdentity
from gateway.domain.states import Chemistry
from gateway.errors import MappingError
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.factories import make_pack, make_snapshot

NATIVE_FILE = DEFAULT_MAPPINGS_DIR / "modbus" / "native.yaml"
UINT16_NI, INT16_NI, UINT32_NI, INT32_NI = 0xFFFF, 0x8000, 0xFFFF_FFFF, 0x8000_0000


@pytest.fixture(scope="module")
def native() -> RegisterMap:
    return load_register_map(DEFAULT_MAPPINGS_DIR, "native")


def native_raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(NATIVE_FILE.read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def words(image: NDArray[np.uint16], unit_map: Any, name: str) -> list[int]:
    entry = unit_map.entry(name)
    return [int(word) for word in image[entry.address : entry.end]]


def u32(image: NDArray[np.uint16], unit_map: Any, name: str, word_order: str = "big") -> int:
    high, low = words(image, unit_map, name)
    if word_order == "little":
        high, low = low, high
    return (high << 16) | low


def i32(image: NDArray[np.uint16], unit_map: Any, name: str, word_order: str = "big") -> int:
    value: int = struct.unpack(">i", struct.pack(">I", u32(image, unit_map, name, word_order)))[0]
    return value


def steps(value: float, step: float) -> int:
    """What an integrator expects: the nearest raw value, halves away from zero."""
    scaled = value / step
    return int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))


def i16(word: int) -> int:
    value: int = struct.unpack(">h", struct.pack(">H", word))[0]
    return value


# --- loading -------------------------------------------------------------------------------------


def test_native_map_loads_with_both_units(native: RegisterMap) -> None:
    assert native.name == "native"
    assert native.version == 1
    assert native.word_order == "big"
    assert native.site.kind == "site"
    assert native.pack.kind == "pack"
    assert native.pack.entry("cell_voltage").count == 32
    assert native.pack.entry("cell_soc").count == 32
    assert native.pack.entry("temperature").count == 48
    assert native.pack.size == 314
    assert native.site.size == 43
    assert native.pack.holding_reserved.contains(0, 16)
    assert not native.pack.holding_reserved.contains(15, 2)


def test_native_map_keeps_32_bit_values_on_even_addresses(native: RegisterMap) -> None:
    for unit in (native.site, native.pack):
        for entry in unit.entries:
            if entry.words_per_value == 2:
                assert entry.address % 2 == 0, entry.name


# --- encoding a pack ------------------------------------------------------------------------------


def test_pack_scaling_and_signs(native: RegisterMap) -> None:
    snapshot = make_snapshot(2, sequence=70_000)
    pack = snapshot.packs[0]
    image = native.encode_pack(pack, snapshot)
    unit = native.pack
    assert image.dtype == np.uint16
    assert image.shape == (314,)
    assert words(image, unit, "map_version") == [1]
    assert u32(image, unit, "snapshot_sequence") == 70_000
    assert words(image, unit, "pack_state") == [1]
    assert words(image, unit, "online") == [1]
    assert words(image, unit, "data_age") == [1]  # 0.05 s in 0.1 s steps: half rounds away from zero
    assert words(image, unit, "contactor_state") == [2]
    assert i32(image, unit, "pack_current") == -425  # discharging: negative, 0.1 A
    assert i32(image, unit, "pack_power") == steps(pack.pack_voltage_v * -42.5, 1)
    assert words(image, unit, "pack_voltage") == [steps(pack.pack_voltage_v, 0.01)]
    assert words(image, unit, "soc") == [5600]
    assert words(image, unit, "soh") == [10000]
    assert words(image, unit, "cell_soc_min") == [5500]
    assert words(image, unit, "cell_soc_max") == [5810]
    assert words(image, unit, "capacity") == [2000]
    assert words(image, unit, "charge_current_limit") == [2000]
    assert words(image, unit, "discharge_current_limit") == [4000]
    assert words(image, unit, "charge_voltage_limit") == [13440]
    assert words(image, unit, "discharge_voltage_limit") == [8000]
    assert words(image, unit, "cell_voltage_min") == [3600]
    assert words(image, unit, "cell_voltage_max") == [steps(pack.cell_voltage_max_v, 0.001)]
    assert words(image, unit, "temperature_min") == [250]
    assert words(image, unit, "temperature_max") == [257]
    assert u32(image, unit, "ah_charged") == 125
    assert u32(image, unit, "ah_discharged") == 303  # 30.25 Ah: half rounds away from zero
    assert u32(image, unit, "wh_charged") == 1440
    assert u32(image, unit, "wh_discharged") == 3500
    assert u32(image, unit, "equivalent_full_cycles") == 11
    assert u32(image, unit, "pack_fault_flags") == 0


def test_pack_arrays_are_vectors_padded_with_not_implemented(native: RegisterMap) -> None:
    snapshot = make_snapshot(1)
    pack = snapshot.packs[0]
    image = native.encode_pack(pack, snapshot)
    cells = words(image, native.pack, "cell_voltage")
    assert cells == [steps(v, 0.001) for v in pack.cell_voltage_v]
    assert words(image, native.pack, "cell_soc") == [steps(s, 0.0001) for s in pack.cell_soc]
    temperatures = words(image, native.pack, "temperature")
    assert temperatures[:8] == [steps(t, 0.1) for t in pack.temperature_c]
    assert temperatures[8:] == [INT16_NI] * 40


def test_arrays_longer_than_their_count_are_cut(native: RegisterMap) -> None:
    pack = make_pack(0, cells=32, sensors=48)
    pack = replace(pack, cell_voltage_v=pack.cell_voltage_v + (4.0,) * 8)
    image = native.encode_pack(pack, None)
    assert len(words(image, native.pack, "cell_voltage")) == 32
    assert words(image, native.pack, "temperature")[47] == steps(pack.temperature_c[47], 0.1)


def test_negative_temperatures_are_twos_complement(native: RegisterMap) -> None:
    pack = replace(make_pack(0, sensors=4), temperature_c=(-12.3, -0.04, 3276.7, -0.05))
    image = native.encode_pack(pack, None)
    temperatures = words(image, native.pack, "temperature")
    assert [i16(word) for word in temperatures[:4]] == [-123, 0, 32767, -1]
    assert temperatures[0] == 0xFF85
    assert i16(words(image, native.pack, "temperature_min")[0]) == -123


def test_nan_reads_as_not_implemented_for_every_type(native: RegisterMap) -> None:
    snapshot = make_snapshot(2, offline=(1,))
    pack = replace(snapshot.packs[1], soc=math.nan, ah_charged=math.nan, data_age_s=math.inf)
    image = native.encode_pack(pack, snapshot)
    unit = native.pack
    assert words(image, unit, "pack_voltage") == [UINT16_NI]
    assert words(image, unit, "soc") == [UINT16_NI]
    assert words(image, unit, "data_age") == [UINT16_NI]
    assert words(image, unit, "temperature_min") == [INT16_NI]
    assert words(image, unit, "pack_current") == [0x8000, 0x0000]
    assert words(image, unit, "pack_power") == [0x8000, 0x0000]
    assert u32(image, unit, "ah_charged") == UINT32_NI
    assert set(words(image, unit, "cell_voltage")) == {UINT16_NI}
    assert set(words(image, unit, "temperature")) == {INT16_NI}
    assert words(image, unit, "online") == [0]


def test_values_outside_the_type_are_not_implemented_never_clamped(native: RegisterMap) -> None:
    pack = replace(make_pack(0), pack_voltage_v=700.0, charge_current_limit_a=-1.0,
                   temperature_c=(3300.0, -3300.0), pack_current_a=3e8, ah_charged=5e8)
    image = native.encode_pack(pack, None)
    unit = native.pack
    assert words(image, unit, "pack_voltage") == [UINT16_NI]
    assert words(image, unit, "charge_current_limit") == [UINT16_NI]
    assert words(image, unit, "temperature")[:2] == [INT16_NI, INT16_NI]
    assert u32(image, unit, "pack_current") == INT32_NI
    assert u32(image, unit, "ah_charged") == UINT32_NI
    assert words(image, unit, "pack_voltage") != [0xFFFE]


def test_the_largest_valid_values_are_not_the_sentinels(native: RegisterMap) -> None:
    pack = replace(make_pack(0), pack_voltage_v=655.34, pack_current_a=-214748364.7)
    image = native.encode_pack(pack, None)
    assert words(image, native.pack, "pack_voltage") == [0xFFFE]
    assert i32(image, native.pack, "pack_current") == -0x7FFF_FFFF


def test_the_sequence_counter_wraps_instead_of_going_unknown(native: RegisterMap) -> None:
    for sequence, published in [(0xFFFF_FFFE, 0xFFFF_FFFE), (0xFFFF_FFFF, 0), (0xFFFF_FFFF + 41, 41)]:
        snapshot = make_snapshot(1, sequence=sequence)
        assert u32(native.encode_site(snapshot), native.site, "snapshot_sequence") == published


def test_alarm_masks_per_severity(native: RegisterMap) -> None:
    alarms = {AlarmCode.CELL_OVERVOLTAGE: Severity.WARNING, AlarmCode.COMMUNICATION_LOSS: Severity.WARNING,
              AlarmCode.DISCHARGE_OVERCURRENT: Severity.ALARM, AlarmCode.PACK_REPORTED_FAULT: Severity.TRIP}
    pack = make_pack(0, alarms=alarms)
    image = native.encode_pack(pack, None)
    unit = native.pack
    assert u32(image, unit, "alarm_warning_mask") == (1 << 0) | (1 << 6)
    assert u32(image, unit, "alarm_alarm_mask") == 1 << 5
    assert u32(image, unit, "alarm_trip_mask") == 1 << 8
    assert u32(image, unit, "alarm_any_mask") == (1 << 0) | (1 << 6) | (1 << 5) | (1 << 8)
    assert words(image, unit, "highest_severity") == [3]
    quiet = native.encode_pack(make_pack(0), None)
    assert u32(quiet, unit, "alarm_any_mask") == 0
    assert words(quiet, unit, "highest_severity") == [0]


def test_identity_fields(native: RegisterMap) -> None:
    image = native.encode_pack(make_pack(3), None)
    unit = native.pack
    assert u32(image, unit, "serial_number") == 1003
    assert words(image, unit, "firmware_major") + words(image, unit, "firmware_minor") + \
        words(image, unit, "firmware_patch") == [1, 2, 3]
    assert words(image, unit, "chemistry") == [int(Chemistry.NMC)]
    assert words(image, unit, "cell_count") + words(image, unit, "sensor_count") == [32, 8]
    assert words(image, unit, "nominal_capacity") == [2000]


def test_unknown_or_odd_identities_are_not_implemented(native: RegisterMap) -> None:
    unit = native.pack
    anonymous = native.encode_pack(replace(make_pack(0), identity=None), None)
    for name in ("serial_number", "firmware_major", "chemistry", "cell_count", "nominal_capacity"):
        assert set(words(anonymous, unit, name)) == {UINT16_NI}, name
    odd = PackIdentity("SN-42A", "v2.10", Chemistry.LFP, 24, 6, 230.0)
    image = native.encode_pack(replace(make_pack(0), identity=odd), None)
    assert u32(image, unit, "serial_number") == UINT32_NI
    assert words(image, unit, "firmware_major") + words(image, unit, "firmware_minor") + \
        words(image, unit, "firmware_patch") == [2, 10, UINT16_NI]
    huge = PackIdentity("99999999999", "1", Chemistry.LFP, 24, 6, 230.0)
    image = native.encode_pack(replace(make_pack(0), identity=huge), None)
    assert u32(image, unit, "serial_number") == UINT32_NI


def test_an_absent_pack_reads_not_implemented_but_keeps_the_heartbeat(native: RegisterMap) -> None:
    snapshot = make_snapshot(2, sequence=9)
    image = native.encode_pack(None, snapshot)
    for entry in native.pack.entries:
        values = words(image, native.pack, entry.name)
        if entry.name == "map_version":
            assert values == [1]
        elif entry.name == "snapshot_sequence":
            assert values == [0, 9]
        else:
            not_implemented = {"uint16": [UINT16_NI], "int16": [INT16_NI], "uint32": [0xFFFF, 0xFFFF],
                               "int32": [0x8000, 0]}[entry.type]
            assert values == not_implemented * entry.values, entry.name
    nothing_known = native.pack.not_implemented_image()
    assert nothing_known[0] == UINT16_NI  # every entry, the map version included
    assert np.array_equal(nothing_known[1:], native.encode_pack(None, None)[1:])


def test_reserved_gaps_read_zero(native: RegisterMap) -> None:
    image = native.encode_pack(None, None)
    assert image[27] == 0


# --- encoding the site ---------------------------------------------------------------------------


def test_site_values(native: RegisterMap) -> None:
    snapshot = make_snapshot(4, sequence=5, offline=(3,))
    masks = MappingProxyType({Severity.WARNING: 0b10, Severity.TRIP: 0b100})
    site = replace(snapshot.site, alarm_masks=masks, highest_severity=Severity.TRIP)
    snapshot = replace(snapshot, site=site)
    image = native.encode_site(snapshot)
    unit = native.site
    assert words(image, unit, "pack_count") == [4]
    assert words(image, unit, "packs_online") == [3]
    assert words(image, unit, "highest_severity") == [3]
    assert i32(image, unit, "site_current") == -1275
    assert i32(image, unit, "site_power") == steps(site.voltage_v * site.current_a, 1)
    assert words(image, unit, "site_voltage") == [steps(site.voltage_v, 0.01)]
    assert words(image, unit, "site_soc") == [5600]
    assert u32(image, unit, "site_capacity") == 6000
    assert u32(image, unit, "charge_current_limit") == 6000
    assert u32(image, unit, "discharge_current_limit") == 12000
    assert u32(image, unit, "alarm_warning_mask") == 0b10
    assert u32(image, unit, "alarm_alarm_mask") == 0  # severity absent from the mapping: none active
    assert u32(image, unit, "alarm_trip_mask") == 0b100
    assert u32(image, unit, "alarm_any_mask") == 0b110
    assert u32(image, unit, "snapshot_time") == math.floor(snapshot.wall_time)


def test_site_before_any_snapshot(native: RegisterMap) -> None:
    image = native.encode_site(None)
    assert words(image, native.site, "map_version") == [1]
    assert u32(image, native.site, "snapshot_sequence") == UINT32_NI
    assert words(image, native.site, "site_soc") == [UINT16_NI]


def test_little_word_order(native: RegisterMap) -> None:
    raw = native_raw()
    raw["word_order"] = "little"
    little = parse_register_map(raw, name="little", source="test")
    snapshot = make_snapshot(1, sequence=0x0001_0002)
    big_image = native.encode_pack(snapshot.packs[0], snapshot)
    little_image = little.encode_pack(snapshot.packs[0], snapshot)
    assert words(big_image, native.pack, "snapshot_sequence") == [0x0001, 0x0002]
    assert words(little_image, little.pack, "snapshot_sequence") == [0x0002, 0x0001]
    assert words(little_image, little.pack, "pack_current") == [0x10000 - 425, 0xFFFF]
    assert i32(little_image, little.pack, "pack_current", "little") == -425
    assert words(little_image, little.pack, "soc") == words(big_image, native.pack, "soc")


def test_unit_conversions_follow_the_published_unit() -> None:
    raw = native_raw()
    entries = raw["pack"]["input_registers"]
    entries.append({"address": 400, "name": "cell_voltage_max_mv", "source": "cell_voltage_max_v",
                    "type": "uint16", "unit": "mV", "description": "same in mV"})
    entries.append({"address": 401, "name": "energy", "source": "wh_charged", "type": "uint16",
                    "unit": "kWh", "scale": 0.1, "description": "kWh in 0.1 steps"})
    converted = parse_register_map(raw, name="converted", source="test")
    pack = replace(make_pack(0), wh_charged=12_340.0)
    image = converted.encode_pack(pack, None)
    assert words(image, converted.pack, "cell_voltage_max_mv") == [steps(pack.cell_voltage_max_v, 0.001)]
    assert words(image, converted.pack, "energy") == [123]


# --- invalid map files ---------------------------------------------------------------------------


def _entry(raw: dict[str, Any], unit: str, name: str) -> dict[str, Any]:
    for entry in raw[unit]["input_registers"]:
        if entry["name"] == name:
            found: dict[str, Any] = entry
            return found
    raise KeyError(name)


def _index(raw: dict[str, Any], unit: str, name: str) -> int:
    return [e["name"] for e in raw[unit]["input_registers"]].index(name)


def _load_broken(tmp_path: Path, raw: dict[str, Any]) -> MappingError:
    (tmp_path / "modbus").mkdir(exist_ok=True)
    text = yaml.safe_dump(raw, allow_unicode=True)
    (tmp_path / "modbus" / "broken.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_register_map(tmp_path, "broken")
    for problem in raised.value.problems:
        assert problem.source == str(tmp_path / "modbus" / "broken.yaml")
        assert problem.fix
    return raised.value


def test_unknown_source_names_the_key_and_suggests(tmp_path: Path) -> None:
    raw = native_raw()
    _entry(raw, "pack", "cell_soc_min")["source"] = "soc_minimum"
    error = _load_broken(tmp_path, raw)
    [problem] = error.problems
    assert problem.key == f"pack.input_registers[{_index(raw, 'pack', 'cell_soc_min')}].source"
    assert "soc_minimum" in problem.message
    assert "soc_min" in problem.fix


def test_a_pack_source_is_unknown_on_the_site(tmp_path: Path) -> None:
    raw = native_raw()
    raw["site"]["input_registers"][1]["source"] = "cell_voltage_max_v"
    [problem] = _load_broken(tmp_path, raw).problems
    assert problem.key == "site.input_registers[1].source"
    assert "unknown site source" in problem.message


def test_bad_type_is_rejected(tmp_path: Path) -> None:
    raw = native_raw()
    raw["site"]["input_registers"][0]["type"] = "uint8"
    [problem] = _load_broken(tmp_path, raw).problems
    assert problem.key == "site.input_registers[0].type"
    assert "uint16" in problem.fix


def test_overlapping_registers_are_rejected(tmp_path: Path) -> None:
    raw = native_raw()
    _entry(raw, "pack", "pack_current")["address"] = 7  # int32 over contactor_state (7) and address 8
    error = _load_broken(tmp_path, raw)
    keys = {problem.key for problem in error.problems}
    assert f"pack.input_registers[{_index(raw, 'pack', 'pack_current')}].address" in keys
    assert any("overlap" in p.message and "contactor_state" in p.message for p in error.problems)


def test_arrays_overlapping_the_next_entry_are_rejected(tmp_path: Path) -> None:
    raw = native_raw()
    _entry(raw, "pack", "cell_voltage")["count"] = 33
    error = _load_broken(tmp_path, raw)
    [problem] = error.problems
    assert problem.key == f"pack.input_registers[{_index(raw, 'pack', 'cell_soc')}].address"
    assert "'cell_voltage'" in problem.message


@pytest.mark.parametrize(("change", "key_suffix", "words_in_message"), [
    (lambda e: e.pop("count"), "count", "array"),
    (lambda e: e.update(unit="V"), "unit", "does not fit"),
    (lambda e: e.update(scale=0), "scale", "greater than 0"),
    (lambda e: e.update(sclae=0.1), "sclae", "Extra inputs"),
    (lambda e: e.update(address=-1), "address", "greater than or equal to 0"),
    (lambda e: e.pop("description"), "description", "Field required"),
])
def test_entry_mistakes_name_the_key(tmp_path: Path, change: Any, key_suffix: str,
                                     words_in_message: str) -> None:
    raw = native_raw()
    change(_entry(raw, "pack", "cell_soc"))
    problems = _load_broken(tmp_path, raw).problems
    index = _index(raw, "pack", "cell_soc")
    assert any(p.key == f"pack.input_registers[{index}].{key_suffix}" and words_in_message in p.message
               for p in problems), [str(p) for p in problems]


def test_count_on_a_single_value_is_rejected(tmp_path: Path) -> None:
    raw = native_raw()
    _entry(raw, "site", "site_soc")["count"] = 2
    [problem] = _load_broken(tmp_path, raw).problems
    assert problem.key == f"site.input_registers[{_index(raw, 'site', 'site_soc')}].count"


def test_counters_need_unsigned_types(tmp_path: Path) -> None:
    raw = native_raw()
    _entry(raw, "site", "snapshot_sequence")["type"] = "int32"
    [problem] = _load_broken(tmp_path, raw).problems
    assert problem.key.endswith(".type")
    assert "unsigned" in problem.message


def test_duplicate_names_and_addresses_past_the_end(tmp_path: Path) -> None:
    raw = native_raw()
    renamed = _index(raw, "pack", "soh")
    _entry(raw, "pack", "soh")["name"] = "soc"
    raw["pack"]["input_registers"].append({"address": 65535, "name": "far", "source": "ah_charged",
                                           "type": "uint32", "unit": "Ah", "description": "too far"})
    problems = _load_broken(tmp_path, raw).problems
    keys = {problem.key for problem in problems}
    assert f"pack.input_registers[{renamed}].name" in keys
    assert f"pack.input_registers[{len(raw['pack']['input_registers']) - 1}].address" in keys


@pytest.mark.parametrize(("top_level", "key"), [
    ({"word_order": "middle"}, "word_order"),
    ({"version": 0}, "version"),
    ({"site": None}, "site"),
    ({"pack": {"input_registers": []}}, "pack.input_registers"),
])
def test_top_level_mistakes_name_the_key(tmp_path: Path, top_level: dict[str, Any], key: str) -> None:
    raw = native_raw()
    raw.update(top_level)
    problems = _load_broken(tmp_path, raw).problems
    assert key in {problem.key for problem in problems}, [str(p) for p in problems]


def test_a_missing_map_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as raised:
        load_register_map(tmp_path, "nonexistent")
    [problem] = raised.value.problems
    assert "nonexistent.yaml" in problem.source
    assert "mappings_dir" in problem.fix
