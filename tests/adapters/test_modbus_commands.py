"""The Modbus command path on the real server with a real client: authorisation, unlock, validation, events, and
the commands handed to the engine (through its CommandPort)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from ipaddress import ip_network

import pytest
from pymodbus.client import AsyncModbusTcpClient

from gateway.adapters.modbus_server import ModbusOutput
from gateway.codec.register_map import RegisterMap
from gateway.domain.events import BmsEvent
from gateway.domain.operator_actions import OperatorAction
from gateway.runtime.command_port import CommandPort
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.operator_commands import OperatorCommand
from gateway.settings import ModbusCommandSettings, ModbusSettings
from tests.adapters.conftest import MODBUS_PACK_UNITS, MODBUS_SITE_UNIT, sunspec_device_of
from tests.ports import free_tcp_port

CODE = 4711
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 0x01, 0x02, 0x03
PACK = MODBUS_PACK_UNITS["pack-02"]
UNLOCK, SET_SOC, CONNECTION, BALANCING = 0, 3, 4, 5


async def serve(commands: ModbusCommandSettings, register_map: RegisterMap) -> tuple[asyncio.Task[None], int,
                                                                                     CommandPort, ModbusOutput]:
    port = CommandPort(heartbeat_timeout_s=2.0)
    settings = ModbusSettings(host="127.0.0.1", port=free_tcp_port(), site_unit_id=MODBUS_SITE_UNIT,
                              commands=commands)
    output = ModbusOutput(settings, SnapshotHub(), register_map, MODBUS_PACK_UNITS,
                          sunspec_device_of(MODBUS_PACK_UNITS), port)
    task = asyncio.create_task(output.run())
    async with asyncio.timeout(5.0):
        await output.ready.wait()
    return task, settings.port, port, output


@pytest.fixture
async def commanded(native_register_map: RegisterMap) -> AsyncIterator[tuple[AsyncModbusTcpClient, CommandPort,
                                                                              ModbusOutput]]:
    task, tcp_port, port, output = await serve(ModbusCommandSettings(enabled=True, unlock_code=CODE),
                                               native_register_map)
    client = AsyncModbusTcpClient("127.0.0.1", port=tcp_port, timeout=2, retries=0)
    assert await client.connect()
    try:
        yield client, port, output
    finally:
        client.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def drained(port: CommandPort) -> tuple[list[OperatorCommand], list[BmsEvent]]:
    return port.drain()


async def test_state_changing_writes_need_the_unlock_code(commanded: tuple[AsyncModbusTcpClient, CommandPort,
                                                                           ModbusOutput]) -> None:
    client, port, _ = commanded
    locked = await client.write_register(SET_SOC, 5000, device_id=PACK)
    assert locked.isError()
    assert locked.exception_code == ILLEGAL_FUNCTION
    wrong = await client.write_register(UNLOCK, CODE + 1, device_id=PACK)
    assert wrong.exception_code == ILLEGAL_VALUE
    commands, events = drained(port)
    assert commands == []
    assert [(e.pack_id, e.code, e.operator, e.detail) for e in events] == [
        ("pack-02", "set_soc", "modbus 127.0.0.1", "refused: not unlocked (write the unlock code first)"),
        ("pack-02", "unlock", "modbus 127.0.0.1", "refused: wrong unlock code"),
    ]
    assert not (await client.write_register(UNLOCK, CODE, device_id=PACK)).isError()
    assert (await client.read_holding_registers(UNLOCK, count=1, device_id=PACK)).registers == [1]
    accepted = await client.write_register(SET_SOC, 5000, device_id=PACK)
    assert not accepted.isError()
    assert accepted.registers == [5000]  # FC6 echoes the written value
    commands, events = drained(port)
    assert [(c.pack_id, c.action, c.value, c.operator) for c in commands] == [
        ("pack-02", OperatorAction.SET_SOC, 0.5, "modbus 127.0.0.1")]
    assert [e.detail for e in events] == ["unlocked for 30 s"]


async def test_values_and_addresses_are_validated_before_anything_runs(
        commanded: tuple[AsyncModbusTcpClient, CommandPort, ModbusOutput]) -> None:
    client, port, _ = commanded
    await client.write_register(UNLOCK, CODE, device_id=PACK)
    too_high = await client.write_register(SET_SOC, 10001, device_id=PACK)
    assert too_high.exception_code == ILLEGAL_VALUE
    not_a_command = await client.write_register(10, 1, device_id=PACK)
    assert not_a_command.exception_code == ILLEGAL_ADDRESS
    half_bad = await client.write_registers(CONNECTION, [2, 7], device_id=PACK)  # balancing accepts 0 or 1
    assert half_bad.exception_code == ILLEGAL_VALUE
    commands, events = drained(port)
    assert commands == []  # a multiple write is all or nothing
    assert {e.detail for e in events} >= {"refused: value 10001 outside 0..10000", "refused: no command register "
                                          "there", "refused: value 7 outside 0..1"}
    assert not (await client.write_registers(CONNECTION, [2, 0], device_id=PACK)).isError()
    commands, _ = drained(port)
    assert [(c.pack_id, c.action) for c in commands] == [("pack-02", OperatorAction.DISCONNECT),
                                                         ("pack-02", OperatorAction.BALANCING_OFF)]


async def test_site_commands_act_on_every_pack(commanded: tuple[AsyncModbusTcpClient, CommandPort,
                                                                ModbusOutput]) -> None:
    client, port, _ = commanded
    await client.write_register(UNLOCK, CODE, device_id=MODBUS_SITE_UNIT)
    assert not (await client.write_register(3, 1, device_id=MODBUS_SITE_UNIT)).isError()  # reset_all
    commands, _ = drained(port)
    assert [(c.pack_id, c.action) for c in commands] == [(p, OperatorAction.RESET) for p in MODBUS_PACK_UNITS]


async def test_the_heartbeat_needs_no_unlock_and_is_not_an_event(
        commanded: tuple[AsyncModbusTcpClient, CommandPort, ModbusOutput]) -> None:
    client, port, _ = commanded
    assert not (await client.write_register(1, 17, device_id=MODBUS_SITE_UNIT)).isError()
    assert (await client.read_holding_registers(1, count=1, device_id=MODBUS_SITE_UNIT)).registers == [17]
    assert port.heartbeat_value == 17
    assert drained(port) == ([], [])


async def test_sunspec_points_write_through_the_same_gate(
        commanded: tuple[AsyncModbusTcpClient, CommandPort, ModbusOutput]) -> None:
    client, port, output = commanded
    sunspec = output.sunspec
    assert sunspec is not None
    battery = sunspec.layout.blocks[1]
    strings = [b for b in sunspec.layout.blocks if b.model_id == 804]
    set_con = strings[2].points["SetCon"].address  # pack-03
    locked = await client.write_register(set_con, 2, device_id=MODBUS_SITE_UNIT)
    assert locked.exception_code == ILLEGAL_FUNCTION
    await client.write_register(UNLOCK, CODE, device_id=MODBUS_SITE_UNIT)
    assert not (await client.write_register(set_con, 2, device_id=MODBUS_SITE_UNIT)).isError()
    assert not (await client.write_register(battery.points["AlmRst"].address, 1, device_id=MODBUS_SITE_UNIT)).isError()
    assert not (await client.write_register(battery.points["CtrlHb"].address, 9, device_id=MODBUS_SITE_UNIT)).isError()
    bad_value = await client.write_register(set_con, 3, device_id=MODBUS_SITE_UNIT)
    assert bad_value.exception_code == ILLEGAL_VALUE
    not_writable = await client.write_register(sunspec.layout.blocks[0].points["DA"].address, 5,
                                               device_id=MODBUS_SITE_UNIT)
    assert not_writable.exception_code == ILLEGAL_ADDRESS
    read_only = await client.write_register(battery.points["SoC"].address, 5, device_id=MODBUS_SITE_UNIT)
    assert read_only.exception_code == ILLEGAL_ADDRESS
    commands, _ = drained(port)
    assert [(c.pack_id, c.action) for c in commands] == [("pack-03", OperatorAction.DISCONNECT)] + [
        (p, a) for p in MODBUS_PACK_UNITS for a in (OperatorAction.ACKNOWLEDGE, OperatorAction.RESET)]
    assert port.heartbeat_value == 9


@pytest.mark.parametrize(("commands", "events"), [
    (ModbusCommandSettings(), []),  # disabled (the default): no command path, nothing to record
    (ModbusCommandSettings(enabled=True, unlock_code=CODE, allowed_clients=(ip_network("10.0.0.0/8"),)),
     [("site", "write", "modbus 127.0.0.1", "refused: client address not in allowed_clients")]),  # once a minute
], ids=["disabled", "client-not-allowed"])
async def test_writes_are_refused_unless_enabled_for_the_client(native_register_map: RegisterMap,
                                                                commands: ModbusCommandSettings,
                                                                events: list[tuple[str, str, str, str]]) -> None:
    task, tcp_port, port, _ = await serve(commands, native_register_map)
    client = AsyncModbusTcpClient("127.0.0.1", port=tcp_port, timeout=2, retries=0)
    try:
        assert await client.connect()
        for address, value in ((UNLOCK, CODE), (1, 5), (SET_SOC, 100)):
            response = await client.write_register(address, value, device_id=PACK)
            assert response.exception_code == ILLEGAL_FUNCTION
        assert port.heartbeat_value == 0
        drained_commands, drained_events = drained(port)
        assert drained_commands == []
        assert [(e.pack_id, e.code, e.operator, e.detail) for e in drained_events] == events
    finally:
        client.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_enabling_commands_without_an_unlock_code_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unlock_code"):
        ModbusCommandSettings(enabled=True)
    assert math.isclose(ModbusCommandSettings(enabled=True, unlock_code=1).unlock_window_s, 30.0)
