"""The Modbus TCP output end to end: the real pymodbus server, the real pymodbus client, no mocks.

Values are decoded with pymodbus' own `convert_from_registers`, independently of the gateway's
encoder, and compared with the snapshot within one raw step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import struct
from dataclasses import replace

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU

from gateway.adapters.modbus_server import ModbusOutput
from gateway.codec.register_encoding import WordOrder
from gateway.codec.register_map import RegisterEntry, RegisterMap, UnitMap
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.snapshot import GatewaySnapshot, PackSnapshot, SiteSnapshot
from gateway.errors import AdapterError, ConfigError
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.service import Service
from gateway.settings import ModbusSettings
from tests.adapters.conftest import (
    MODBUS_PACK_UNITS,
    MODBUS_SITE_UNIT,
    RunningModbus,
    free_tcp_port,
    wait_for_sequence,
)
from tests.factories import make_snapshot

ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03
GATEWAY_TARGET_NO_RESPONSE = 0x0B
NOT_IMPLEMENTED = {"uint16": 0xFFFF, "int16": 0x8000, "uint32": 0xFFFF_FFFF, "int32": 0x8000_0000}
DATATYPES = {
    "uint16": AsyncModbusTcpClient.DATATYPE.UINT16,
    "int16": AsyncModbusTcpClient.DATATYPE.INT16,
    "uint32": AsyncModbusTcpClient.DATATYPE.UINT32,
    "int32": AsyncModbusTcpClient.DATATYPE.INT32,
}
UNSIGNED = {1: AsyncModbusTcpClient.DATATYPE.UINT16, 2: AsyncModbusTcpClient.DATATYPE.UINT32}

Expected = dict[str, float | list[float] | None]


async def read_unit(modbus_client: AsyncModbusTcpClient, unit_id: int, size: int) -> list[int]:
    registers: list[int] = []
    for start in range(0, size, 125):
        response = await modbus_client.read_input_registers(start, count=min(125, size - start), device_id=unit_id)
        assert not response.isError(), response
        registers += response.registers
    return registers


def decode(registers: list[int], entry: RegisterEntry, word_order: WordOrder) -> list[float | None]:
    """Every value of an entry in its unit; None for the not-implemented value."""
    values: list[float | None] = []
    width = entry.words_per_value
    for index in range(entry.values):
        start = entry.address + index * width
        words = registers[start : start + width]
        unsigned = AsyncModbusTcpClient.convert_from_registers(words, UNSIGNED[width], word_order=word_order)
        if unsigned == NOT_IMPLEMENTED[entry.type]:
            values.append(None)
            continue
        raw = AsyncModbusTcpClient.convert_from_registers(words, DATATYPES[entry.type], word_order=word_order)
        assert isinstance(raw, int)
        values.append(raw * entry.scale)
    return values


def assert_unit_matches(unit: UnitMap, registers: list[int], word_order: WordOrder,
                        expected: Expected) -> None:
    assert {entry.name for entry in unit.entries} == set(expected), "update the expected values of the test"
    for entry in unit.entries:
        decoded = decode(registers, entry, word_order)
        wanted = expected[entry.name]
        wanted_values = wanted if isinstance(wanted, list) else [wanted]
        wanted_values = wanted_values + [math.nan] * (entry.values - len(wanted_values))
        for position, (got, want) in enumerate(zip(decoded, wanted_values, strict=True)):
            where = f"{entry.name}[{position}]"
            if want is None or math.isnan(want):
                assert got is None, f"{where}: expected not-implemented, got {got}"
            else:
                assert got is not None, f"{where}: expected {want}, got not-implemented"
                assert abs(got - want) <= entry.scale / 2 + 1e-9 * abs(want), f"{where}: {got} != {want}"


def expected_pack(pack: PackSnapshot, snapshot: GatewaySnapshot, map_version: int) -> Expected:
    identity = pack.identity
    assert identity is not None
    return {
        "map_version": map_version, "pack_index": pack.index, "snapshot_sequence": snapshot.sequence,
        "pack_state": int(pack.state), "online": int(pack.online), "data_age": pack.data_age_s,
        "contactor_state": int(pack.contactor_state), "pack_current": pack.pack_current_a,
        "pack_power": pack.pack_voltage_v * pack.pack_current_a, "pack_voltage": pack.pack_voltage_v,
        "soc": pack.soc * 100, "soh": pack.soh * 100, "cell_soc_min": min(pack.cell_soc) * 100,
        "cell_soc_max": max(pack.cell_soc) * 100, "capacity": pack.capacity_ah,
        "charge_current_limit": pack.charge_current_limit_a,
        "discharge_current_limit": pack.discharge_current_limit_a,
        "charge_voltage_limit": pack.charge_voltage_limit_v,
        "discharge_voltage_limit": pack.discharge_voltage_limit_v,
        "cell_voltage_min": _min(pack.cell_voltage_v), "cell_voltage_max": _max(pack.cell_voltage_v),
        "temperature_min": _min(pack.temperature_c), "temperature_max": _max(pack.temperature_c),
        "highest_severity": int(max(pack.alarms.values(), default=Severity.NONE)),
        "alarm_warning_mask": _mask(pack, Severity.WARNING), "alarm_alarm_mask": _mask(pack, Severity.ALARM),
        "alarm_trip_mask": _mask(pack, Severity.TRIP),
        "alarm_any_mask": sum(code.bit for code in pack.alarms),
        "pack_fault_flags": pack.pack_fault_flags, "ah_charged": pack.ah_charged,
        "ah_discharged": pack.ah_discharged, "wh_charged": pack.wh_charged,
        "wh_discharged": pack.wh_discharged,
        "equivalent_full_cycles": pack.equivalent_full_cycles, "serial_number": int(identity.serial_number),
        "firmware_major": 1, "firmware_minor": 2, "firmware_patch": 3, "chemistry": int(identity.chemistry),
        "cell_count": identity.cell_count, "sensor_count": identity.sensor_count,
        "nominal_capacity": identity.nominal_capacity_ah,
        "cell_voltage": list(pack.cell_voltage_v), "cell_soc": [v * 100 for v in pack.cell_soc],
        "temperature": list(pack.temperature_c),
        "soc_sigma": pack.soc_sigma * 100, "soh_resistance": pack.soh_resistance * 100,
        "current_bias": pack.current_bias_a, "cell_capacity": list(pack.cell_capacity_ah),
        "cell_resistance": list(pack.cell_resistance_ohm),
        "latched_trip_mask": pack.latched_mask, "unacknowledged_mask": pack.unacknowledged_mask,
        "request_flags": pack.request_flags, "active_alarm_count": len(pack.active_alarms),
        "active_alarm_code": _padded([float(a.code) for a in pack.active_alarms]),
        "active_alarm_status": _padded([float(a.status_word) for a in pack.active_alarms]),
        "active_alarm_cell": _padded([float(a.cell or 0) for a in pack.active_alarms]),
        "charge_power_limit": pack.charge_power_limit_w, "discharge_power_limit": pack.discharge_power_limit_w,
        "charge_current_limit_10s": pack.charge_current_limit_10s_a,
        "discharge_current_limit_10s": pack.discharge_current_limit_10s_a,
        "charge_current_limit_30s": pack.charge_current_limit_30s_a,
        "discharge_current_limit_30s": pack.discharge_current_limit_30s_a,
        "pack_resistance": pack.pack_resistance_ohm,
        "balancing_status": int(pack.balancing_status), "balancing_cells": pack.balancing_cells,
        "balancing_mask": pack.balancing_mask, "cell_soc_spread": pack.cell_soc_spread * 100,
        "balancing_excess": pack.balancing_excess_ah, "balancing_remaining": pack.balancing_remaining_s,
        "admission_status": int(pack.admission_status), "admission_reasons": pack.admission_reasons,
        "disconnect_requested": int(pack.disconnect_requested), "balancing_enabled": int(pack.balancing_enabled),
    }


def _padded(values: list[float], entries: int = 16) -> list[float]:
    """The list's entries, then not-implemented up to the register block's length."""
    return (values + [math.nan] * entries)[:entries]


def expected_site(site: SiteSnapshot, snapshot: GatewaySnapshot, map_version: int) -> Expected:
    masks = {severity: site.alarm_masks[severity]
             for severity in (Severity.WARNING, Severity.ALARM, Severity.TRIP)}
    return {
        "map_version": map_version, "pack_count": site.pack_count, "snapshot_sequence": snapshot.sequence,
        "packs_online": site.packs_online, "highest_severity": int(site.highest_severity),
        "site_current": site.current_a, "site_power": site.voltage_v * site.current_a,
        "site_voltage": site.voltage_v, "site_soc": site.soc * 100, "site_soh": site.soh * 100,
        "site_capacity": site.capacity_ah, "charge_current_limit": site.charge_current_limit_a,
        "discharge_current_limit": site.discharge_current_limit_a,
        "charge_voltage_limit": site.charge_voltage_limit_v,
        "discharge_voltage_limit": site.discharge_voltage_limit_v,
        "alarm_warning_mask": masks[Severity.WARNING], "alarm_alarm_mask": masks[Severity.ALARM],
        "alarm_trip_mask": masks[Severity.TRIP], "alarm_any_mask": masks[Severity.WARNING]
        | masks[Severity.ALARM] | masks[Severity.TRIP],
        "snapshot_time": math.floor(snapshot.wall_time),
        "latched_trip_mask": site.latched_mask, "unacknowledged_mask": site.unacknowledged_mask,
        "charge_power_limit": site.charge_power_limit_w, "discharge_power_limit": site.discharge_power_limit_w,
        "packs_eligible": site.packs_eligible, "packs_admitted": site.packs_admitted,
        "ems_heartbeat_state": site.ems_heartbeat,
    }


def _min(values: tuple[float, ...]) -> float:
    return min((v for v in values if not math.isnan(v)), default=math.nan)


def _max(values: tuple[float, ...]) -> float:
    return max((v for v in values if not math.isnan(v)), default=math.nan)


def _mask(pack: PackSnapshot, severity: Severity) -> int:
    return sum(code.bit for code, active in pack.alarms.items() if active == severity)


def alarmed_snapshot(sequence: int = 7) -> GatewaySnapshot:
    snapshot = make_snapshot(4, sequence, offline=(2,), alarms={
        0: {AlarmCode.CELL_OVERVOLTAGE: Severity.WARNING, AlarmCode.SENSOR_FAULT: Severity.TRIP,
            AlarmCode.DISCHARGE_OVERCURRENT: Severity.ALARM},
    })
    site = replace(snapshot.site, alarm_masks={Severity.WARNING: 0b1, Severity.ALARM: 0b100000,
                                               Severity.TRIP: 0b10000000}, highest_severity=Severity.TRIP)
    cold = replace(snapshot.packs[1], temperature_c=(-12.3, -7.5, 0.0, 4.4), pack_current_a=55.0)
    return replace(snapshot, packs=(snapshot.packs[0], cold, *snapshot.packs[2:]), site=site)


async def test_pack_units_serve_the_snapshot(
    modbus_server: RunningModbus, modbus_client: AsyncModbusTcpClient
) -> None:
    snapshot = alarmed_snapshot()
    await modbus_server.hub.publish(snapshot)
    register_map = modbus_server.register_map
    for pack in snapshot.packs:
        unit_id = MODBUS_PACK_UNITS[pack.pack_id]
        await wait_for_sequence(modbus_client, unit_id, snapshot.sequence)
        registers = await read_unit(modbus_client, unit_id, register_map.pack.size)
        assert_unit_matches(register_map.pack, registers, register_map.word_order,
                            expected_pack(pack, snapshot, register_map.version))


async def test_signed_values_and_their_words(
    modbus_server: RunningModbus, modbus_client: AsyncModbusTcpClient
) -> None:
    snapshot = alarmed_snapshot()
    await modbus_server.hub.publish(snapshot)
    await wait_for_sequence(modbus_client, 2, snapshot.sequence)
    current = await modbus_client.read_input_registers(8, count=2, device_id=2)  # pack-01: -42.5 A (discharging)
    assert current.registers == [0xFFFF, 0x10000 - 425]  # int32, high word first
    cold = await modbus_client.read_input_registers(128, count=5, device_id=3)  # pack-02 temperatures
    assert cold.registers == [0x10000 - 123, 0x10000 - 75, 0, 44, 0x8000]


async def test_site_unit_serves_the_aggregate(
    modbus_server: RunningModbus, modbus_client: AsyncModbusTcpClient
) -> None:
    snapshot = alarmed_snapshot()
    await modbus_server.hub.publish(snapshot)
    await wait_for_sequence(modbus_client, MODBUS_SITE_UNIT, snapshot.sequence)
    register_map = modbus_server.register_map
    registers = await read_unit(modbus_client, MODBUS_SITE_UNIT, register_map.site.size)
    assert_unit_matches(register_map.site, registers, register_map.word_order,
                        expected_site(snapshot.site, snapshot, register_map.version))


async def test_offline_and_absent_packs_read_not_implemented(
    modbus_server: RunningModbus, modbus_client: AsyncModbusTcpClient
) -> None:
    snapshot = alarmed_snapshot(sequence=12)
    await modbus_server.hub.publish(snapshot)
    await wait_for_sequence(modbus_client, 9, snapshot.sequence)
    pack_map = modbus_server.register_map.pack
    offline = await read_unit(modbus_client, MODBUS_PACK_UNITS["pack-03"], pack_map.size)
    assert decode(offline, pack_map.entry("pack_voltage"), "big") == [None]
    assert decode(offline, pack_map.entry("pack_current"), "big") == [None]
    assert decode(offline, pack_map.entry("online"), "big") == [0]
    assert set(decode(offline, pack_map.entry("cell_voltage"), "big")) == {None}
    absent = await read_unit(modbus_client, MODBUS_PACK_UNITS["pack-99"], pack_map.size)
    for entry in pack_map.entries:
        values = decode(absent, entry, "big")
        if entry.name == "map_version":
            assert values == [modbus_server.register_map.version]
        elif entry.name == "snapshot_sequence":
            assert values == [12]
        else:
            assert set(values) == {None}, entry.name


async def test_before_the_first_snapshot_only_the_map_version_is_known(
    modbus_server: RunningModbus, modbus_client: AsyncModbusTcpClient
) -> None:
    registers = await read_unit(modbus_client, MODBUS_SITE_UNIT, modbus_server.register_map.site.size)
    for entry in modbus_server.register_map.site.entries:
        values = decode(registers, entry, "big")
        assert values == ([modbus_server.register_map.version] if entry.name == "map_version" else [None])


async def test_a_newer_snapshot_replaces_the_image(modbus_server: RunningModbus,
                                                   modbus_client: AsyncModbusTcpClient) -> None:
    first = make_snapshot(4, sequence=1)
    await modbus_server.hub.publish(first)
    await wait_for_sequence(modbus_client, 2, 1)
    soc = await modbus_client.read_input_registers(13, count=1, device_id=2)
    assert soc.registers == [5600]
    second = replace(first, sequence=2, packs=(replace(first.packs[0], soc=0.5), *first.packs[1:]))
    await modbus_server.hub.publish(second)
    await wait_for_sequence(modbus_client, 2, 2)
    soc = await modbus_client.read_input_registers(13, count=1, device_id=2)
    assert soc.registers == [5000]


@pytest.mark.parametrize(("unit_id", "address", "count"), [
    (2, 307, 10),  # runs past the last pack register (313)
    (2, 314, 1),
    (MODBUS_SITE_UNIT, 42, 2),
    (MODBUS_SITE_UNIT, 1000, 1),
])
async def test_reads_outside_the_map_are_illegal_addresses(
    modbus_server: RunningModbus, modbus_client: AsyncModbusTcpClient, unit_id: int, address: int, count: int
) -> None:
    response = await modbus_client.read_input_registers(address, count=count, device_id=unit_id)
    assert response.isError()
    assert response.exception_code == ILLEGAL_ADDRESS


async def test_holding_registers_are_the_command_block(modbus_server: RunningModbus,
                                                      modbus_client: AsyncModbusTcpClient) -> None:
    inside = await modbus_client.read_holding_registers(0, count=16, device_id=2)
    assert not inside.isError()
    assert inside.registers == [0, 0, 0, 0, 1, 1] + [0] * 10  # locked; connected; balancing allowed
    outside = await modbus_client.read_holding_registers(10, count=10, device_id=MODBUS_SITE_UNIT)
    assert outside.isError()
    assert outside.exception_code == ILLEGAL_ADDRESS


async def test_writes_and_bit_tables_are_refused(modbus_server: RunningModbus,
                                                 modbus_client: AsyncModbusTcpClient) -> None:
    responses: list[ModbusPDU] = [
        await modbus_client.write_register(0, 1, device_id=2),
        await modbus_client.write_registers(0, [1, 2, 3], device_id=MODBUS_SITE_UNIT),
        await modbus_client.write_register(500, 1, device_id=2),
        await modbus_client.read_coils(0, count=1, device_id=2),
        await modbus_client.read_discrete_inputs(0, count=1, device_id=2),
        await modbus_client.write_coil(0, True, device_id=2),
    ]
    for response in responses:
        assert response.isError(), response
        assert response.exception_code == ILLEGAL_FUNCTION
    still_zero = await modbus_client.read_holding_registers(0, count=3, device_id=MODBUS_SITE_UNIT)
    assert still_zero.registers == [0, 0, 0]


async def test_unknown_unit_ids_get_an_exception_and_the_server_carries_on(
    modbus_server: RunningModbus, modbus_client: AsyncModbusTcpClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        response = await modbus_client.read_input_registers(0, count=1, device_id=77)
        assert response.isError()
        assert response.exception_code == GATEWAY_TARGET_NO_RESPONSE
    refused = await modbus_client.write_register(0, 1, device_id=0)
    assert refused.exception_code == GATEWAY_TARGET_NO_RESPONSE
    version = await modbus_client.read_input_registers(0, count=1, device_id=2)
    assert version.registers == [modbus_server.register_map.version]
    warnings = [r for r in caplog.records if "unit id 77" in r.getMessage()]
    assert len(warnings) == 1, "an unknown unit id is logged once, not per request"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


GARBAGE = {
    "absurd MBAP length": b"\x00\x01\x00\x00\xff\xff\x02\x04" + bytes(range(256)) * 4,
    "truncated PDU": b"\x00\x02\x00\x00\x00\x03\x02\x04\x00",  # pymodbus 3.11.4 drops the connection
    "unknown function code": b"\x00\x03\x00\x00\x00\x06\x02\x63\x00\x00\x00\x01",
    "wrong protocol id": b"\x00\x04\x12\x34\x00\x06\x02\x04\x00\x00\x00\x01",
    "HTTP request": b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n",
    "random bytes": bytes((i * 37 + 11) % 256 for i in range(300)),
}


@pytest.mark.parametrize("payload", list(GARBAGE.values()), ids=list(GARBAGE))
async def test_garbage_on_one_connection_does_not_stop_another_client(
    modbus_server: RunningModbus, modbus_client: AsyncModbusTcpClient, payload: bytes
) -> None:
    await modbus_server.hub.publish(make_snapshot(4, sequence=3))
    await wait_for_sequence(modbus_client, 2, 3)
    reader, writer = await asyncio.open_connection("127.0.0.1", modbus_server.port)
    try:
        writer.write(payload)
        await writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(reader.read(1024), timeout=0.2)
        response = await modbus_client.read_input_registers(0, count=4, device_id=2)
        assert response.registers == [modbus_server.register_map.version, 0, 0, 3]
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    fresh = AsyncModbusTcpClient("127.0.0.1", port=modbus_server.port, timeout=2, retries=0)
    try:
        assert await fresh.connect()
        response = await fresh.read_input_registers(13, count=1, device_id=2)
        assert response.registers == [5600]
    finally:
        fresh.close()


@pytest.mark.parametrize(("address", "count", "exception_code"), [
    (0, 0, ILLEGAL_VALUE),
    (0, 126, ILLEGAL_VALUE),
    (0xFFFF, 2, ILLEGAL_ADDRESS),
])
async def test_raw_requests_outside_the_protocol_limits(
    modbus_server: RunningModbus, address: int, count: int, exception_code: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", modbus_server.port)
    try:
        writer.write(struct.pack(">HHHBBHH", 7, 0, 6, 2, 4, address, count))
        await writer.drain()
        answer = await asyncio.wait_for(reader.readexactly(9), timeout=2.0)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert answer == struct.pack(">HHHBBB", 7, 0, 3, 2, 0x84, exception_code)


async def test_a_busy_port_is_an_adapter_error_naming_the_setting(native_register_map: RegisterMap) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        output = ModbusOutput(ModbusSettings(host="127.0.0.1", port=port), SnapshotHub(), native_register_map,
                              {"pack-01": 2})
        with pytest.raises(AdapterError) as raised:
            await asyncio.wait_for(output.run(), timeout=5.0)
    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message
    assert "BMSGW_MODBUS__PORT" in message
    assert "[modbus]" in message
    assert not output.ready.is_set()


@pytest.mark.parametrize("unit_ids", [
    {"pack-01": 1},  # the site's unit id
    {"pack-01": 2, "pack-02": 2},
    {"pack-01": 0},
    {"pack-01": 248},
])
async def test_unit_ids_must_be_distinct_and_valid(native_register_map: RegisterMap,
                                                   unit_ids: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="modbus_unit_id"):
        ModbusOutput(ModbusSettings(port=free_tcp_port()), SnapshotHub(), native_register_map, unit_ids)


async def test_is_a_service_and_releases_its_port_when_cancelled(native_register_map: RegisterMap) -> None:
    settings = ModbusSettings(host="127.0.0.1", port=free_tcp_port())
    hub = SnapshotHub()
    for _ in range(2):  # the second start proves the first one released the port
        service: Service = ModbusOutput(settings, hub, native_register_map, {"pack-01": 2})
        assert service.name == "modbus"
        task = asyncio.create_task(service.run())
        await asyncio.wait_for(service.ready.wait(), timeout=5.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not service.ready.is_set()
