"""The common battery CAN protocol, checked byte by byte against the layout of docs/battery-can.md.

The expected bytes are unpacked here with `struct` from the documented table, not through the DBC, so a mistake
in the DBC (a start bit, a sign, a scale) fails these tests.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from gateway.codec.battery_can import BatteryCanLayout, BatteryCondition, BatteryFigures, load_battery_can
from gateway.domain.alarms import AlarmCode, Severity
from gateway.errors import MappingError
from gateway.settings import DEFAULT_MAPPINGS_DIR

# docs/battery-can.md, condition order of frame 0x35A (two bits each from bit 0; warnings from byte 4)
CONDITION_ORDER = ("general", "high_voltage", "low_voltage", "high_temperature", "low_temperature",
                   "high_temperature_charge", "low_temperature_charge", "high_discharge_current",
                   "high_charge_current", "contactor", "short_circuit", "bms_internal", "cell_imbalance")


def layout() -> BatteryCanLayout:
    return load_battery_can(DEFAULT_MAPPINGS_DIR, "battery-can-v1", "BMS-GW")


def figures(**changes: object) -> BatteryFigures:
    values: dict[str, object] = dict(
        charge_voltage_limit_v=134.4, charge_current_limit_a=180.5, discharge_current_limit_a=400.0,
        discharge_voltage_limit_v=80.0, soc=0.5634, soh=0.971, voltage_v=118.37, current_a=-42.5,
        temperature_c=31.2, cell_voltage_min_v=3.612, cell_voltage_max_v=3.655, temperature_min_c=24.6,
        temperature_max_c=31.2, charge_enable=True, discharge_enable=True, module_count=4,
    )
    values.update(changes)
    return BatteryFigures(**values)  # type: ignore[arg-type]


def frames_by_id(f: BatteryFigures) -> dict[int, bytes]:
    frames = layout().encode(f)
    by_id = {frame.arbitration_id: frame.data for frame in frames}
    assert len(by_id) == len(frames)
    return by_id


def condition_states(data: bytes, byte_offset: int) -> dict[str, int]:
    word = int.from_bytes(data[byte_offset:byte_offset + 4], "little")
    return {name: (word >> (2 * i)) & 0b11 for i, name in enumerate(CONDITION_ORDER)}


def test_the_frame_set_is_the_documented_one_in_order() -> None:
    ids = [frame.arbitration_id for frame in layout().encode(figures())]
    assert ids == [0x351, 0x355, 0x356, 0x359, 0x35A, 0x35C, 0x35E, 0x373]
    lengths = {frame.arbitration_id: len(frame.data) for frame in layout().encode(figures())}
    assert lengths == {0x351: 8, 0x355: 6, 0x356: 6, 0x359: 7, 0x35A: 8, 0x35C: 2, 0x35E: 8, 0x373: 8}


def test_limits_frame_0x351() -> None:
    cvl, ccl, dcl, dvl = struct.unpack("<HhhH", frames_by_id(figures())[0x351])
    assert (cvl, ccl, dcl, dvl) == (1344, 1805, 4000, 800)  # 0.1 V, 0.1 A, 0.1 A, 0.1 V


def test_limits_frame_matches_a_published_pylontech_capture() -> None:
    """14 02 74 0E 74 0E CC 01: CVL 53.2 V, CCL 370 A, DCL 370 A, DVL 46.0 V (a Pylontech battery on the bus)."""
    data = frames_by_id(figures(charge_voltage_limit_v=53.2, charge_current_limit_a=370.0,
                                discharge_current_limit_a=370.0, discharge_voltage_limit_v=46.0))[0x351]
    assert data == bytes.fromhex("1402740e740ecc01")


def test_state_frame_0x355_and_measurements_0x356() -> None:
    by_id = frames_by_id(figures())
    assert struct.unpack("<HHH", by_id[0x355]) == (56, 97, 5634)  # SoC %, SoH %, SoC 0.01 %
    assert struct.unpack("<hhh", by_id[0x356]) == (11837, -425, 312)  # 0.01 V, 0.1 A (negative: discharge), 0.1 degC


def test_conditions_frame_0x35a_sets_two_bits_per_condition() -> None:
    data = frames_by_id(figures(alarms=frozenset({BatteryCondition.HIGH_VOLTAGE}),
                                warnings=frozenset({BatteryCondition.CELL_IMBALANCE,
                                                    BatteryCondition.HIGH_CHARGE_CURRENT})))[0x35A]
    alarms, warnings = condition_states(data, 0), condition_states(data, 4)
    assert alarms == {name: 0b01 if name in ("general", "high_voltage") else 0b10 for name in CONDITION_ORDER}
    assert warnings == {name: 0b01 if name in ("general", "cell_imbalance", "high_charge_current") else 0b10
                        for name in CONDITION_ORDER}


def test_no_condition_reads_ok_in_every_field() -> None:
    data = frames_by_id(figures())[0x35A]
    assert set(condition_states(data, 0).values()) == {0b10}
    assert set(condition_states(data, 4).values()) == {0b10}


def test_pylontech_protection_frame_0x359() -> None:
    data = frames_by_id(figures(alarms=frozenset({BatteryCondition.LOW_TEMPERATURE_CHARGE}),
                                warnings=frozenset({BatteryCondition.HIGH_DISCHARGE_CURRENT})))[0x359]
    assert data[0] == 1 << 4  # protection: under-temperature
    assert data[1] == 0
    assert data[2] == 1 << 7  # warning: discharge high current
    assert data[3] == 0
    assert data[4:] == bytes([4]) + b"PN"  # module count, then the letters P and N


def test_request_flags_0x35c_and_name_0x35e() -> None:
    by_id = frames_by_id(figures(charge_enable=False, discharge_enable=True))
    assert by_id[0x35C] == bytes([0b0100_0000, 0])
    assert by_id[0x35E] == b"BMS-GW  "


def test_cell_extremes_0x373_in_millivolts_and_kelvin() -> None:
    assert struct.unpack("<HHHH", frames_by_id(figures())[0x373]) == (3612, 3655, 298, 304)


def test_out_of_range_values_are_clamped_and_unknown_ones_sent_as_zero() -> None:
    by_id = frames_by_id(figures(charge_current_limit_a=5000.0, temperature_c=math.nan, soc=math.nan))
    assert struct.unpack("<HhhH", by_id[0x351])[1] == 32767
    assert struct.unpack("<hhh", by_id[0x356])[2] == 0
    assert struct.unpack("<HHH", by_id[0x355])[0] == 0


def test_alarm_codes_map_to_conditions_by_severity() -> None:
    masks = {Severity.WARNING: AlarmCode.CELL_VOLTAGE_SPREAD.bit,
             Severity.TRIP: AlarmCode.SHORT_CIRCUIT.bit | AlarmCode.CELL_OVERVOLTAGE.bit,
             Severity.ALARM: AlarmCode.COMMUNICATION_LOSS.bit}
    alarms, warnings = layout().conditions(masks)
    assert alarms == {BatteryCondition.SHORT_CIRCUIT, BatteryCondition.HIGH_VOLTAGE, BatteryCondition.BMS_INTERNAL}
    assert warnings == {BatteryCondition.CELL_IMBALANCE}


def _mapping_with(tmp_path: Path, text: str) -> Path:
    (tmp_path / "inverter").mkdir()
    (tmp_path / "can").mkdir()
    dbc = (DEFAULT_MAPPINGS_DIR / "can" / "battery-can-v1.dbc").read_text()
    (tmp_path / "can" / "battery-can-v1.dbc").write_text(dbc)
    original = (DEFAULT_MAPPINGS_DIR / "inverter" / "battery-can-v1.yaml").read_text()
    (tmp_path / "inverter" / "site.yaml").write_text(text or original)
    return tmp_path


def test_an_alarm_code_left_out_or_listed_twice_is_rejected_naming_file_and_key(tmp_path: Path) -> None:
    original = (DEFAULT_MAPPINGS_DIR / "inverter" / "battery-can-v1.yaml").read_text()
    broken = original.replace("[contactor_fault]", "[short_circuit]")
    with pytest.raises(MappingError) as caught:
        load_battery_can(_mapping_with(tmp_path, broken), "site", "X")
    text = str(caught.value)
    assert "site.yaml" in text
    assert "conditions.short_circuit" in text or "conditions.contactor" in text
    assert "contactor_fault" in text  # no longer listed anywhere
    assert "also listed" in text
