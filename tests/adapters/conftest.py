"""Fixtures for the adapter tests: a real Modbus TCP output on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import pytest
from pymodbus.client import AsyncModbusTcpClient

from gateway.adapters.modbus_server import ModbusOutput
from gateway.bms.cell_model import load_cell_model
from gateway.codec.register_map import RegisterMap, load_register_map
from gateway.codec.sunspec_device import SunSpecDevice, SunSpecIdentity
from gateway.codec.sunspec_ratings import PackRating
from gateway.runtime.hub import SnapshotHub
from gateway.settings import DEFAULT_MAPPINGS_DIR, ModbusSettings
from tests.ports import free_tcp_port

MODBUS_SITE_UNIT = 1
MODBUS_PACK_UNITS = {"pack-01": 2, "pack-02": 3, "pack-03": 4, "pack-04": 5, "pack-99": 9}


@dataclass
class RunningModbus:
    output: ModbusOutput
    hub: SnapshotHub
    register_map: RegisterMap
    settings: ModbusSettings
    unit_ids: dict[str, int]

    @property
    def port(self) -> int:
        return self.settings.port

    async def wait_for_sequence(self, sequence: int, unit_id: int = MODBUS_SITE_UNIT) -> None:
        """Poll the heartbeat on a connection of its own until the output serves snapshot `sequence`."""
        client = AsyncModbusTcpClient("127.0.0.1", port=self.port, timeout=2, retries=0)
        try:
            assert await client.connect()
            await wait_for_sequence(client, unit_id, sequence)
        finally:
            client.close()


async def wait_for_sequence(client: AsyncModbusTcpClient, unit_id: int, sequence: int) -> None:
    """The output encodes in the background: poll the heartbeat (input registers 2-3, high word first) until the
    unit serves snapshot `sequence`."""
    async with asyncio.timeout(5.0):
        while True:
            response = await client.read_input_registers(2, count=2, device_id=unit_id)
            assert not response.isError(), response
            if response.registers == [sequence >> 16, sequence & 0xFFFF]:
                return
            await asyncio.sleep(0.005)


def sunspec_device_of(unit_ids: Mapping[str, int]) -> SunSpecDevice:
    """The SunSpec models of a site of 32-cell nmc-200ah packs, one per unit id."""
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    identity = SunSpecIdentity("bms-gateway", "test bank", "native v1", "0.1.0", "test-site", MODBUS_SITE_UNIT)
    return SunSpecDevice(identity, [PackRating.of(pack_id, 32, model) for pack_id in unit_ids])


@pytest.fixture
async def modbus_client(modbus_server: RunningModbus) -> AsyncIterator[AsyncModbusTcpClient]:
    """A pymodbus client connected to `modbus_server`."""
    client = AsyncModbusTcpClient("127.0.0.1", port=modbus_server.port, timeout=2, retries=0)
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def native_register_map() -> RegisterMap:
    return load_register_map(DEFAULT_MAPPINGS_DIR, "native")


@pytest.fixture
async def modbus_server(native_register_map: RegisterMap) -> AsyncIterator[RunningModbus]:
    """ModbusOutput serving the native map: site unit 1, pack-01..04 on 2..5, `pack-99` (never in a
    snapshot) on 9, and the SunSpec models on the site unit from 40000. Nothing is published yet."""
    settings = ModbusSettings(host="127.0.0.1", port=free_tcp_port(), site_unit_id=MODBUS_SITE_UNIT)
    hub = SnapshotHub()
    output = ModbusOutput(settings, hub, native_register_map, MODBUS_PACK_UNITS, sunspec_device_of(MODBUS_PACK_UNITS))
    task = asyncio.create_task(output.run(), name="modbus-output")
    ready = asyncio.create_task(output.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()  # raises the start-up error
        task.cancel()
        pytest.fail("the Modbus output did not become ready within 5 s")
    try:
        yield RunningModbus(output, hub, native_register_map, settings, dict(MODBUS_PACK_UNITS))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
