"""The Modbus TCP output read by an independent client: mbpoll (Debian package `mbpoll`).

Missing mbpoll skips these tests with a reason, except under CI=true, where it is a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil

import pytest

from gateway.domain.alarms import AlarmCode, Severity
from tests.adapters.conftest import MODBUS_PACK_UNITS, MODBUS_SITE_UNIT, RunningModbus
from tests.factories import make_snapshot

pytestmark = pytest.mark.external

VALUE_LINE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)(?: \(-?\d+\))?\s*$", re.MULTILINE)  # "65535 (-1)"


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
