"""SunSpec on the running Modbus output, read by pysunspec2's own client (scan, model decoding, scale factors) and
compared with the native map read by pymodbus from the same snapshot."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

from gateway.domain.alarms import AlarmCode, Severity
from tests.adapters.conftest import MODBUS_PACK_UNITS, MODBUS_SITE_UNIT, RunningModbus, wait_for_sequence
from tests.adapters.test_modbus_server import decode, read_unit
from tests.factories import make_snapshot

ILLEGAL_ADDRESS = 0x02
SNAPSHOT_PACKS = 4  # pack-01..04 in the snapshot; pack-99 (5th string) is configured but never seen
OFFLINE = 2  # pack-03


def scan(port: int) -> dict[int, list[Any]]:
    """pysunspec2's scan of the site unit, every model read and decoded; {model id: [model, ...]}."""
    device = SunSpecModbusClientDeviceTCP(slave_id=MODBUS_SITE_UNIT, ipaddr="127.0.0.1", ipport=port, timeout=5)
    try:
        device.scan()
        return {mid: list(models) for mid, models in device.models.items() if isinstance(mid, int)}
    finally:
        device.close()


@pytest.fixture
async def scanned(modbus_server: RunningModbus) -> tuple[dict[int, list[Any]], dict[str, list[float | None]]]:
    """The SunSpec models and the native site and pack values of one snapshot (pack-01 with a trip)."""
    snapshot = make_snapshot(SNAPSHOT_PACKS, sequence=7, offline=(OFFLINE,),
                             alarms={0: {AlarmCode.CELL_OVERVOLTAGE: Severity.TRIP,
                                         AlarmCode.SOC_DRIFT: Severity.WARNING}})
    await modbus_server.hub.publish(snapshot)
    client = AsyncModbusTcpClient("127.0.0.1", port=modbus_server.port, timeout=2, retries=0)
    assert await client.connect()
    native: dict[str, list[float | None]] = {}
    try:
        await wait_for_sequence(client, MODBUS_SITE_UNIT, 7)
        site_map, pack_map = modbus_server.register_map.site, modbus_server.register_map.pack
        registers = await read_unit(client, MODBUS_SITE_UNIT, site_map.size)
        for entry in site_map.entries:
            native[f"site.{entry.name}"] = decode(registers, entry, modbus_server.register_map.word_order)
        for pack_id, unit in MODBUS_PACK_UNITS.items():
            registers = await read_unit(client, unit, pack_map.size)
            for entry in pack_map.entries:
                native[f"{pack_id}.{entry.name}"] = decode(registers, entry, modbus_server.register_map.word_order)
    finally:
        client.close()
    models = await asyncio.to_thread(scan, modbus_server.port)
    return models, native


def close(got: Any, want: float | None, step: float) -> bool:
    if want is None:
        return got is None
    return got is not None and abs(float(got) - want) <= step / 2 + 1e-9 * abs(want)


def test_the_scan_finds_common_battery_bank_and_one_string_per_pack(scanned: tuple[dict[int, list[Any]],
                                                                                   Any]) -> None:
    models, _ = scanned
    assert sorted(models) == [1, 802, 803, 804]
    assert [len(models[m]) for m in (1, 802, 803)] == [1, 1, 1]
    assert [m.Idx.cvalue for m in models[804]] == [1, 2, 3, 4, 5]
    common = models[1][0]
    assert (common.Mn.cvalue, common.SN.cvalue, common.DA.cvalue) == ("bms-gateway", "test-site", MODBUS_SITE_UNIT)
    assert models[802][0].Typ.cvalue == 4  # lithium-ion
    assert models[803][0].NStr.cvalue == len(MODBUS_PACK_UNITS)


def test_battery_model_matches_the_native_site_unit(scanned: tuple[dict[int, list[Any]], Any]) -> None:
    models, native = scanned
    battery = models[802][0]
    for point, name in (("SoC", "site_soc"), ("SoH", "site_soh"), ("V", "site_voltage"), ("A", "site_current"),
                        ("AChaMax", "charge_current_limit"), ("ADisChaMax", "discharge_current_limit"),
                        ("W", "site_power")):
        value = native[f"site.{name}"][0]
        scale_factor = getattr(battery, getattr(battery, point).pdef["sf"]).value  # as pysunspec2 reads it
        assert close(getattr(battery, point).cvalue, value, max(10.0**scale_factor, 0.01)), (point, value)
    assert battery.State.cvalue == 99  # a trip is present in pack-01: FAULT
    assert battery.ChaSt.cvalue == 3  # discharging
    assert battery.Hb.cvalue == 7
    assert battery.AHRtg.cvalue == pytest.approx(200.0 * len(MODBUS_PACK_UNITS))


def test_alarms_become_battery_events(scanned: tuple[dict[int, list[Any]], Any]) -> None:
    models, _ = scanned
    first = models[804][0]
    evt1 = first.Evt1.value
    symbols = {s["name"]: s["value"] for s in first.Evt1.pdef["symbols"]}  # pysunspec2's own definition
    over_volt_alarm, other_warning = symbols["OVER_VOLT_ALARM"], symbols["OTHER_WARNING"]
    assert evt1 == (1 << over_volt_alarm) | (1 << other_warning)
    assert first.EvtVnd1.value == AlarmCode.CELL_OVERVOLTAGE.bit | AlarmCode.SOC_DRIFT.bit
    assert models[804][1].Evt1.value == 0
    assert models[802][0].Evt1.value & (1 << over_volt_alarm)
    assert models[803][0].string[0].StrEvt1.value == evt1


@pytest.mark.parametrize("index", range(SNAPSHOT_PACKS))
def test_each_string_matches_its_native_pack_unit(scanned: tuple[dict[int, list[Any]], Any], index: int) -> None:
    models, native = scanned
    pack_id = f"pack-{index + 1:02d}"
    string, bank_string = models[804][index], models[803][0].string[index]
    for point, name, step in (("SoC", "soc", 0.01), ("SoH", "soh", 0.01), ("V", "pack_voltage", 0.01),
                              ("A", "pack_current", 0.1), ("CellVMax", "cell_voltage_max", 0.001),
                              ("CellVMin", "cell_voltage_min", 0.001), ("ModTmpMax", "temperature_max", 0.1),
                              ("ModTmpMin", "temperature_min", 0.1)):
        assert close(getattr(string, point).cvalue, native[f"{pack_id}.{name}"][0], step), (pack_id, point)
    assert close(bank_string.StrSoC.cvalue, native[f"{pack_id}.soc"][0], 0.01)
    module = string.lithium_ion_string_module[0]
    assert module.ModNCell.cvalue == 32
    online = index != OFFLINE
    assert module.ModCellVMaxCell.cvalue == (32 if online else None)  # the factory's cells rise with the index
    assert module.ModCellVMinCell.cvalue == (1 if online else None)
    assert string.St.cvalue == 0b11  # enabled (admitted) and contactor closed
    assert string.NCyc.cvalue == round(native[f"{pack_id}.equivalent_full_cycles"][0] or math.nan)


def test_a_pack_never_seen_reads_not_implemented(scanned: tuple[dict[int, list[Any]], Any]) -> None:
    models, _ = scanned
    never_seen = models[804][len(MODBUS_PACK_UNITS) - 1]
    assert never_seen.SoC.cvalue is None
    assert never_seen.V.cvalue is None
    assert models[803][0].string[len(MODBUS_PACK_UNITS) - 1].StrSoC.cvalue is None


async def test_the_block_ends_with_the_end_model_and_nothing_beyond(modbus_server: RunningModbus) -> None:
    sunspec = modbus_server.output.sunspec
    assert sunspec is not None
    end = sunspec.layout.end_address
    client = AsyncModbusTcpClient("127.0.0.1", port=modbus_server.port, timeout=2, retries=0)
    assert await client.connect()
    try:
        marker = await client.read_holding_registers(40000, count=2, device_id=MODBUS_SITE_UNIT)
        assert marker.registers == [0x5375, 0x6E53]  # "SunS"
        terminator = await client.read_holding_registers(end - 2, count=2, device_id=MODBUS_SITE_UNIT)
        assert terminator.registers == [0xFFFF, 0]
        beyond = await client.read_holding_registers(end - 1, count=2, device_id=MODBUS_SITE_UNIT)
        assert beyond.isError()
        assert beyond.exception_code == ILLEGAL_ADDRESS
        pack_unit = await client.read_holding_registers(40000, count=2, device_id=MODBUS_PACK_UNITS["pack-01"])
        assert pack_unit.isError()  # SunSpec lives on the site unit only
    finally:
        client.close()
