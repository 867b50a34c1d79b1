"""Packs that speak the common battery CAN protocol, played by the simulator on virtual buses of their own, through
the whole gateway in process: their extremes published as they are, the gateway's limits capped by the pack's own,
a protection bit raising pack_protection, and silence zeroing the limits after the protocol's stale timeout."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path

import can
import numpy as np
import pytest

from gateway.app import Gateway, build_gateway, run_gateway
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.snapshot import GatewaySnapshot
from gateway.sim.pack_bms import pack_report
from gateway.sim.simulator import Simulation
from tests.sites import OUTPUTS_OFF, site_in

SILENT_FROM_S = 6.0
PACK = """
[[packs]]
id = "{name}"
bus = "{name}"
node_address = 0
protocol = "battery-can-pack-v1"
series_cells = 24
temperature_sensors = 4
[[buses]]
name = "{name}"
interface = "virtual"
channel = "{name}-{stamp}"
[[simulation.packs]]
bus = "{name}"
node_address = 0
protocol = "battery-can-pack-v1"
series_cells = 24
temperature_sensors = 4
initial_soc = 0.5
"""
CONFIG = OUTPUTS_OFF + """
[admission]
confirm_s = 0.5  # admission stays on: a pack that cannot say who it is passes on its health alone
[limits]
ramp_up_c_rate_per_s = 2.0
[simulation]
enabled = false  # the test plays the packs, to read their physics
load_profile = "idle"
status_period_s = 1.0  # such packs send their frames about once a second
"""


def site() -> str:
    stamp = time.monotonic_ns()
    pylon = PACK.format(name="pylon", stamp=stamp) + f'faults = [{{kind = "silent", start_s = {SILENT_FROM_S}}}]\n'
    hot = PACK.format(name="hot", stamp=stamp) + "ambient_c = 65.0  # beyond nmc-200ah's 60 degC: a protection bit\n"
    return CONFIG + pylon + hot


async def test_battery_can_packs_through_the_gateway(tmp_path: Path) -> None:
    settings = site_in(tmp_path, site())
    gateway = build_gateway(settings)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    buses = {b.name: can.Bus(interface="virtual", channel=b.channel) for b in settings.buses}
    simulation = Simulation(settings.simulation, buses, settings.mappings_dir)
    player = asyncio.create_task(simulation.run(stop))
    pylon_sim = simulation.packs[0]
    try:
        snapshot = await until(gateway, limits_settled(), timeout_s=5.0)
        pylon, hot = snapshot.packs
        model = pylon_sim.model
        volts = np.array(pylon.cell_voltage_v)
        assert (np.nanmin(volts), np.nanmax(volts)) == pytest.approx(
            (model.cell_voltage_v.min(), model.cell_voltage_v.max()), abs=0.0006)
        assert np.isnan(volts[1:-1]).all(), "made-up cells between the extremes must not be published as readings"
        own = pack_report(model)  # the pack's own limits; the gateway's alone would be its cells' ratings
        assert (own.charge_current_limit_a, own.discharge_current_limit_a) == (100.0, 200.0)
        assert pylon.charge_current_limit_a == pytest.approx(own.charge_current_limit_a, abs=0.1)  # alone: 200 A
        assert pylon.discharge_current_limit_a == pytest.approx(own.discharge_current_limit_a, abs=0.1)  # alone: 400 A
        assert pylon.charge_voltage_limit_v == pytest.approx(own.charge_voltage_limit_v, abs=0.05)  # alone: 100.8 V
        assert pylon.discharge_voltage_limit_v == pytest.approx(own.discharge_voltage_limit_v, abs=0.05)  # alone: 60 V
        assert pylon.alarms == {}

        assert hot.online
        assert hot.alarms.get(AlarmCode.PACK_PROTECTION) is Severity.ALARM
        assert (hot.charge_current_limit_a, hot.discharge_current_limit_a) == (0.0, 0.0)

        last_frame, sent = time.monotonic(), pylon_sim.frames_sent
        online_throughout = True
        while True:  # the pack falls silent at SILENT_FROM_S of its time
            snapshot = await gateway.hub.wait_newer(snapshot.sequence)
            if pylon_sim.frames_sent != sent:
                last_frame, sent = time.monotonic(), pylon_sim.frames_sent
            if not pylon_sim.silent:
                online_throughout &= snapshot.packs[0].online  # frames once a second never look stale
                continue
            if not snapshot.packs[0].online:
                break
            assert time.monotonic() - last_frame < 5.0, "the silent pack never went stale"
        reaction_s = time.monotonic() - last_frame
        print(f"stale reaction: {reaction_s:.3f} s after the last frame")
        pylon = snapshot.packs[0]
        assert online_throughout
        assert 2.0 < reaction_s <= 3.2, f"stale {reaction_s:.2f} s after the last frame (the protocol's 3 s)"
        assert (pylon.charge_current_limit_a, pylon.discharge_current_limit_a) == (0.0, 0.0)
        assert pylon.alarms.get(AlarmCode.COMMUNICATION_LOSS) is Severity.ALARM
        assert all(math.isnan(v) for v in pylon.cell_voltage_v)
        assert snapshot.buses[0].frames_rejected == {}
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(runner, player), 10)
        for bus in buses.values():
            bus.shutdown()


def limits_settled() -> Callable[[GatewaySnapshot], bool]:
    """The first pack admitted and its limits ramped up: non-zero and as in the snapshot before."""
    previous: list[tuple[float, float]] = []

    def settled(snapshot: GatewaySnapshot) -> bool:
        pack = snapshot.packs[0]
        limits = (pack.charge_current_limit_a, pack.discharge_current_limit_a)
        done = pack.admitted and min(limits) > 0.0 and previous[-1:] == [limits]
        previous.append(limits)
        return done

    return settled


async def until(gateway: Gateway, condition: Callable[[GatewaySnapshot], bool], timeout_s: float) -> GatewaySnapshot:
    deadline = time.monotonic() + timeout_s
    sequence = 0
    while True:
        snapshot = await asyncio.wait_for(gateway.hub.wait_newer(sequence), timeout_s)
        sequence = snapshot.sequence
        if condition(snapshot):
            return snapshot
        assert time.monotonic() < deadline, f"not reached within {timeout_s} s: {snapshot.packs}"
