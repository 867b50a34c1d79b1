"""The Modbus TCP output read, and its command registers written, by an independent client: mbpoll (Debian package
`mbpoll`; one value is written with function code 06, several with 16).

Missing mbpoll skips these tests with a reason, except under CI=true, where it is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gateway.codec.register_map import RegisterMap
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.operator_actions import OperatorAction
from gateway.runtime.command_port import CommandPort
from gateway.settings import ModbusCommandSettings
from tests.adapters.conftest import MODBUS_PACK_UNITS, MODBUS_SITE_UNIT, RunningModbus
from tests.adapters.test_modbus_commands import BALANCING, CODE, CONNECTION, PACK, SET_SOC, UNLOCK, serve
from tests.factories import make_snapshot

pytestmark = pytest.mark.external

VALUE_LINE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)(?: \(-?\d+\))?\s*$", re.MULTILINE)  # "65535 (-1)"
# How mbpoll 1.0 reports a Modbus exception response to a write (exit code 1), by exception code.
WRITE_FAILED = "Write output (holding) register failed: {}\n"
ILLEGAL_FUNCTION = WRITE_FAILED.format("Illegal function")  # 01
ILLEGAL_ADDRESS = WRITE_FAILED.format("Illegal data address")  # 02
ILLEGAL_VALUE = WRITE_FAILED.format("Illegal data value")  # 03
OPERATOR = "modbus 127.0.0.1"  # mbpoll's connections all come from 127.0.0.1


@pytest.fixture
def mbpoll() -> str:
    path = shutil.which("mbpoll")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mbpoll is not installed (CI=true): install it with .ci/run (apt-get install mbpoll)")
        pytest.skip("mbpoll is not installed (apt-get install mbpoll)")
    return path


async def run_mbpoll(mbpoll: str, port: int, unit_id: int, *options: str,
                     write: tuple[str, ...] = ()) -> tuple[int, dict[int, int], str]:
    """One poll (-1) with 0-based references (-0); returns (exit code, {address: value}, stderr)."""
    process = await asyncio.create_subprocess_exec(
        mbpoll, "-m", "tcp", "-p", str(port), "-a", str(unit_id), "-0", "-1", "-o", "2", *options,
        "127.0.0.1", *write,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=15.0)
    values = {int(address): int(value) for address, value in VALUE_LINE.findall(out.decode())}
    assert process.returncode is not None
    return process.returncode, values, err.decode()


async def published(modbus_server: RunningModbus, sequence: int) -> None:
    snapshot = make_snapshot(4, sequence=sequence, alarms={1: {AlarmCode.CELL_UNDERVOLTAGE: Severity.ALARM}})
    await modbus_server.hub.publish(snapshot)
    await modbus_server.wait_for_sequence(sequence, MODBUS_PACK_UNITS["pack-02"])


async def test_mbpoll_reads_a_pack_unit(modbus_server: RunningModbus, mbpoll: str) -> None:
    await published(modbus_server, sequence=21)
    snapshot = modbus_server.hub.latest
    assert snapshot is not None
    expected = modbus_server.register_map.encode_pack(snapshot.pack("pack-02"), snapshot)
    unit_id = MODBUS_PACK_UNITS["pack-02"]
    seen: dict[int, int] = {}
    for start in range(0, len(expected), 125):
        count = min(125, len(expected) - start)
        code, values, err = await run_mbpoll(mbpoll, modbus_server.port, unit_id, "-t", "3",
                                             "-r", str(start), "-c", str(count))
        assert code == 0, err
        seen.update(values)
    assert seen == {address: int(word) for address, word in enumerate(expected)}
    assert seen[13] == 5600  # SoC 56.00 %
    assert (seen[30], seen[31]) == (0, AlarmCode.CELL_UNDERVOLTAGE.bit)  # alarm-severity mask, uint32


async def test_mbpoll_decodes_32_bit_values_high_word_first(modbus_server: RunningModbus,
                                                             mbpoll: str) -> None:
    await published(modbus_server, sequence=70_000)
    unit_id = MODBUS_PACK_UNITS["pack-02"]
    code, values, err = await run_mbpoll(mbpoll, modbus_server.port, unit_id, "-t", "3:int", "-B",
                                         "-r", "2", "-c", "1")
    assert code == 0, err
    assert values == {2: 70_000}
    code, values, err = await run_mbpoll(mbpoll, modbus_server.port, unit_id, "-t", "3:int", "-B",
                                         "-r", "8", "-c", "1")
    assert code == 0, err
    assert values == {8: -425}  # -42.5 A: discharging


async def test_mbpoll_sees_the_exceptions(modbus_server: RunningModbus, mbpoll: str) -> None:
    port = modbus_server.port
    code, _, err = await run_mbpoll(mbpoll, port, MODBUS_SITE_UNIT, "-t", "3", "-r", "44", "-c", "1")
    assert code != 0
    assert "Illegal data address" in err
    code, _, err = await run_mbpoll(mbpoll, port, MODBUS_SITE_UNIT, "-t", "4", "-r", "0", write=("--", "5"))
    assert code != 0
    assert "Illegal function" in err
    code, values, err = await run_mbpoll(mbpoll, port, MODBUS_SITE_UNIT, "-t", "4", "-r", "0", "-c", "16")
    assert code == 0, err
    assert values == dict.fromkeys(range(16), 0) | {4: 1}  # the command block: connection_all reads 1 (connected)


@dataclass
class CommandServer:
    """A Modbus output with commands enabled (unlock code CODE) and the CommandPort the engine would drain."""

    tcp_port: int
    port: CommandPort


@pytest.fixture
async def command_server(native_register_map: RegisterMap) -> AsyncIterator[CommandServer]:
    task, tcp_port, port, _ = await serve(ModbusCommandSettings(enabled=True, unlock_code=CODE), native_register_map)
    try:
        yield CommandServer(tcp_port, port)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def mbpoll_write(mbpoll: str, port: int, unit_id: int, address: int, *values: int) -> tuple[int, str]:
    """One mbpoll run (its own TCP connection) writing holding registers from `address`: (exit code, stderr)."""
    code, _, err = await run_mbpoll(mbpoll, port, unit_id, "-t", "4", "-r", str(address),
                                    write=tuple(str(value) for value in values))
    return code, err


async def pack_command_block(mbpoll: str, port: int) -> dict[int, int]:
    """pack-02's command registers 0-5 as mbpoll reads them on a connection of its own."""
    code, values, err = await run_mbpoll(mbpoll, port, PACK, "-t", "4", "-r", "0", "-c", "6")
    assert code == 0, err
    return values


async def test_mbpoll_writes_are_refused_while_commands_are_disabled(modbus_server: RunningModbus,
                                                                     mbpoll: str) -> None:
    port = modbus_server.port
    for address, values in ((SET_SOC, (5000,)), (UNLOCK, (CODE,)), (SET_SOC, (5000, 2, 0))):  # FC 06, 06, 16
        assert await mbpoll_write(mbpoll, port, PACK, address, *values) == (1, ILLEGAL_FUNCTION), (address, values)
    engine = modbus_server.output.gate.port  # the fixture's output hands writes to a CommandPort of its own
    assert engine.drain() == ([], [])  # no command, and no event: disabled is silent
    assert engine.heartbeat_value == 0
    assert await pack_command_block(mbpoll, port) == {UNLOCK: 0, 1: 0, 2: 0, SET_SOC: 0, CONNECTION: 1,
                                                      BALANCING: 1}


async def test_mbpoll_sets_the_soc_after_unlocking_in_an_earlier_connection(command_server: CommandServer,
                                                                            mbpoll: str) -> None:
    tcp_port, port = command_server.tcp_port, command_server.port
    assert await mbpoll_write(mbpoll, tcp_port, PACK, SET_SOC, 5000) == (1, ILLEGAL_FUNCTION)  # not unlocked
    commands, events = port.drain()
    assert commands == []
    assert [(e.pack_id, e.code, e.operator, e.detail) for e in events] == [
        ("pack-02", "set_soc", OPERATOR, "refused: not unlocked (write the unlock code first)")]
    assert (await pack_command_block(mbpoll, tcp_port))[UNLOCK] == 0
    assert await mbpoll_write(mbpoll, tcp_port, PACK, UNLOCK, CODE) == (0, "")
    # Every mbpoll run is a new TCP connection: the unlock holds for the client address, not the connection.
    assert (await pack_command_block(mbpoll, tcp_port))[UNLOCK] == 1
    assert await mbpoll_write(mbpoll, tcp_port, PACK, SET_SOC, 5000) == (0, "")
    commands, events = port.drain()
    assert [(c.pack_id, c.action, c.value, c.operator) for c in commands] == [
        ("pack-02", OperatorAction.SET_SOC, 0.5, OPERATOR)]  # 5000 in 0.01 %: 50 %
    assert [(e.pack_id, e.code, e.operator, e.detail) for e in events] == [
        ("pack-02", "unlock", OPERATOR, "unlocked for 30 s")]


async def test_mbpoll_sees_the_validation_exceptions(command_server: CommandServer, mbpoll: str) -> None:
    tcp_port, port = command_server.tcp_port, command_server.port
    assert await mbpoll_write(mbpoll, tcp_port, PACK, UNLOCK, CODE + 1) == (1, ILLEGAL_VALUE)  # wrong code
    assert (await pack_command_block(mbpoll, tcp_port))[UNLOCK] == 0  # ... unlocks nothing
    assert await mbpoll_write(mbpoll, tcp_port, PACK, UNLOCK, CODE) == (0, "")
    assert await mbpoll_write(mbpoll, tcp_port, PACK, SET_SOC, 10001) == (1, ILLEGAL_VALUE)  # accepts 0..10000
    assert await mbpoll_write(mbpoll, tcp_port, PACK, 10, 1) == (1, ILLEGAL_ADDRESS)  # no command register
    assert await mbpoll_write(mbpoll, tcp_port, PACK, CONNECTION, 2, 7) == (1, ILLEGAL_VALUE)  # FC 16: balancing 0/1
    commands, events = port.drain()
    assert commands == []  # the disconnect before the bad balancing value did not run either: all or nothing
    assert [(e.code, e.operator, e.detail) for e in events] == [
        ("unlock", OPERATOR, "refused: wrong unlock code"),
        ("unlock", OPERATOR, "unlocked for 30 s"),
        ("set_soc", OPERATOR, "refused: value 10001 outside 0..10000"),
        ("register 10", OPERATOR, "refused: no command register there"),
        ("balancing", OPERATOR, "refused: value 7 outside 0..1"),
    ]
    assert await pack_command_block(mbpoll, tcp_port) == {UNLOCK: 1, 1: 0, 2: 0, SET_SOC: 0, CONNECTION: 1,
                                                          BALANCING: 1}
    assert await mbpoll_write(mbpoll, tcp_port, PACK, CONNECTION, 2, 0) == (0, "")
    commands, _ = port.drain()
    assert [(c.pack_id, c.action, c.operator) for c in commands] == [
        ("pack-02", OperatorAction.DISCONNECT, OPERATOR), ("pack-02", OperatorAction.BALANCING_OFF, OPERATOR)]
