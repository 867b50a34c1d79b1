"""The whole gateway in-process with simulated packs: Modbus commands change what the engine does, the EMS
heartbeat reaction zeroes the limits, and a client's disconnect survives a restart."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from gateway.adapters.event_log import EventLog
from gateway.app import Gateway, build_gateway, run_gateway
from gateway.config_loader import load_settings
from gateway.domain.snapshot import GatewaySnapshot
from gateway.domain.states import BalancingStatus
from gateway.settings import EventLogSettings
from tests.e2e.gateway_process import metric, scrape
from tests.ports import free_tcp_port
from tests.sites import simulated_packs

CODE = 1234
SITE, PACK_1, PACK_2 = 1, 2, 3
CONFIG = """
site_name = "remote"
[store]
path = "{store}"
[admission]
enabled = false
[modbus]
port = {port}
sunspec = false
[modbus.commands]
enabled = true
unlock_code = {code}
heartbeat_timeout_s = 1.5
[opcua]
enabled = false
[prometheus]
port = {prometheus_port}
"""


async def until(gateway: Gateway, condition: Callable[[GatewaySnapshot], bool], timeout_s: float = 8.0
                ) -> GatewaySnapshot:
    sequence = -1
    async with asyncio.timeout(timeout_s):
        while True:
            snapshot = await gateway.hub.wait_newer(sequence)
            if condition(snapshot):
                return snapshot
            sequence = snapshot.sequence


async def beat(client: AsyncModbusTcpClient) -> None:
    value = 0
    while True:
        value = (value + 1) % 65536
        await client.write_register(1, value, device_id=SITE)
        await asyncio.sleep(0.3)


async def test_commands_disconnect_recalibrate_and_the_heartbeat_reaction(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    store = tmp_path / "s.sqlite"
    port = free_tcp_port()
    prometheus_port = free_tcp_port()
    config.write_text(CONFIG.format(store=store, port=port, code=CODE, prometheus_port=prometheus_port)
                      + simulated_packs("remote", ["pack-01", "pack-02"]))
    gateway = build_gateway(load_settings(config))
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    heartbeat: asyncio.Task[None] | None = None
    try:
        silent = await until(gateway, lambda s: all(p.online for p in s.packs) and s.sequence > 20)
        assert silent.site.ems_heartbeat == 2  # no heartbeat yet: lost, limits zero
        assert gc.get_freeze_count() > 0  # start-up objects are out of the collector's way once serving
        assert all(p.charge_current_limit_a == 0.0 for p in silent.packs)
        async with asyncio.timeout(10):
            while not await client.connect():
                await asyncio.sleep(0.1)
        heartbeat = asyncio.create_task(beat(client))
        await until(gateway, lambda s: s.site.ems_heartbeat == 1 and all(p.charge_current_limit_a > 5.0
                                                                          for p in s.packs))
        assert not (await client.write_register(0, CODE, device_id=PACK_1)).isError()
        assert not (await client.write_register(4, 2, device_id=PACK_1)).isError()  # disconnect pack-01
        held = await until(gateway, lambda s: s.packs[0].disconnect_requested)
        await until(gateway, lambda s: s.packs[0].charge_current_limit_a == 0.0)
        assert held.packs[0].contactor_open_request
        assert held.packs[1].charge_current_limit_a > 0.0  # the other pack carries on
        assert await register_becomes(client, 4, 2)  # Modbus encodes each snapshot on its thread, after the hub
        samples = await asyncio.to_thread(scrape, prometheus_port)
        assert metric(samples, "bmsgw_pack_disconnect_requested", pack="pack-01") == 1.0
        assert metric(samples, "bmsgw_pack_disconnect_requested", pack="pack-02") == 0.0
        assert metric(samples, "bmsgw_site_ems_heartbeat_state") == 1.0
        await client.write_register(0, CODE, device_id=PACK_2)
        assert not (await client.write_registers(3, [2000, 1, 0], device_id=PACK_2)).isError()  # SoC, balancing
        recalibrated = await until(gateway, lambda s: s.packs[1].balancing_status == BalancingStatus.OFF)
        assert not recalibrated.packs[1].balancing_enabled
        samples = await asyncio.to_thread(scrape, prometheus_port)
        assert metric(samples, "bmsgw_pack_balancing_enabled", pack="pack-02") == 0.0
        heartbeat.cancel()
        lost_at = time.monotonic()
        lost = await until(gateway, lambda s: s.site.ems_heartbeat == 2)
        assert time.monotonic() - lost_at < 1.5 + 0.5
        assert all(p.charge_current_limit_a == 0.0 and p.discharge_current_limit_a == 0.0 for p in lost.packs)
    finally:
        if heartbeat is not None:
            heartbeat.cancel()
        client.close()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    events = EventLog(store, EventLogSettings()).query()
    details = [(e.pack_id, e.code, e.operator, e.detail) for e in events if e.kind.value == "command"]
    assert ("pack-01", "disconnect", "modbus 127.0.0.1", "done") in details
    assert ("pack-02", "set_soc", "modbus 127.0.0.1", "done: every cell starts again at 20.00 %") in details
    assert ("site", "ems_heartbeat", "", "EMS heartbeat lost: zero limits") in details
    restarted = build_gateway(load_settings(config))
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(restarted, stop))
    try:
        again = await until(restarted, lambda s: s.sequence > 3)
        assert again.packs[0].disconnect_requested  # a restart never reconnects a disconnected pack
        assert not again.packs[1].disconnect_requested
        assert not again.packs[1].balancing_enabled
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def register_becomes(client: AsyncModbusTcpClient, address: int, value: int, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await client.read_holding_registers(address, count=1, device_id=PACK_1)).registers == [value]:
            return True
        await asyncio.sleep(0.01)
    return False
