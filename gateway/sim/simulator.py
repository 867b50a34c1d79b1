"""Playing every simulated pack on its bus, in (scaled) real time, with an optional ground-truth file.

Simulated time advances in fixed ticks of `status_period_s` (longer when `time_scale` would make a
tick shorter than MIN_REAL_TICK_S): every tick each pack steps its physics and sends its status and
cell voltages, temperatures every `temperature_period_s`. Commands are polled (never blocking the
event loop) every POLL_INTERVAL_S of real time and answered at once. J1939 packs are pumped as often,
in real time: their multi-packet messages go out one BAM packet at a time (gateway/sim/j1939_node.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import can

from gateway.bms.cell_model import CellModel, load_cell_model
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.errors import ConfigError, Problem
from gateway.settings import SimulationSettings
from gateway.sim.command_receiver import CommandReceiver, LinkLayer
from gateway.sim.j1939_bus import J1939BusLink
from gateway.sim.pack_simulator import PackSimulator
from gateway.sim.truth import TruthWriter

__all__ = ["PackSimulator", "Simulation", "run_simulation"]

MIN_REAL_TICK_S = 0.005
POLL_INTERVAL_S = 0.01
MAX_CATCH_UP_TICKS = 10
MAX_LAG_S = 1.0  # further behind than this, the schedule restarts from now (simulated time slows)
TRUTH_INTERVAL_S = 1.0


class Simulation:
    """All simulated packs of the settings, on the given buses (keyed by bus name)."""

    def __init__(self, settings: SimulationSettings, buses: Mapping[str, can.BusABC],
                 mappings_dir: Path) -> None:
        self.settings = settings
        problems: list[Problem] = []
        seen: set[tuple[str, str, int]] = set()
        for index, pack in enumerate(settings.packs):
            key = f"simulation.packs[{index}]"
            if pack.bus not in buses:
                problems.append(Problem("simulation", f"{key}.bus", f"no bus named {pack.bus!r} is open",
                                        f"use one of {sorted(buses)} or add the bus"))
            address = (pack.bus, pack.protocol, pack.node_address)
            if address in seen:
                problems.append(Problem("simulation", f"{key}.node_address",
                                        f"node {pack.node_address} is already used on bus {pack.bus}",
                                        "give every pack on a bus its own node address"))
            seen.add(address)
        if problems:
            raise ConfigError(problems)
        protocols: dict[str, PackProtocol] = {}
        cells: dict[str, CellModel] = {}
        packs: list[PackSimulator] = []
        for index, pack in enumerate(settings.packs):
            if pack.protocol not in protocols:
                protocols[pack.protocol] = load_protocol(mappings_dir, pack.protocol)
            if pack.cell_model not in cells:
                cells[pack.cell_model] = load_cell_model(mappings_dir, pack.cell_model)
            packs.append(PackSimulator.from_settings(settings, index, buses[pack.bus], mappings_dir,
                                                     protocol=protocols[pack.protocol],
                                                     cell=cells[pack.cell_model]))
        self.packs = tuple(packs)
        self.clock: Callable[[], float] = time.monotonic  # real time of the J1939 link layer
        receivers = []
        for name in dict.fromkeys(p.bus_name for p in packs):
            on_bus = [p for p in packs if p.bus_name == name]
            receivers.append(CommandReceiver(name, buses[name], [p.protocol for p in on_bus],
                                             self._j1939_link_layer(on_bus)))
        self.receivers = tuple(receivers)
        self.real_tick_s = max(settings.status_period_s / settings.time_scale, MIN_REAL_TICK_S)
        self.sim_tick_s = self.real_tick_s * settings.time_scale
        self.time_s = 0.0

    def tick(self) -> None:
        """One tick of simulated time for every pack."""
        for pack in self.packs:
            pack.tick(self.sim_tick_s)
        self.time_s += self.sim_tick_s

    async def _tick_yielding(self) -> None:
        """`tick`, letting the event loop run between packs (a pack's tick takes about 1 ms)."""
        for pack in self.packs:
            pack.tick(self.sim_tick_s)
            await asyncio.sleep(0)
        self.time_s += self.sim_tick_s

    def _j1939_link_layer(self, packs: Sequence[PackSimulator]) -> LinkLayer | None:
        nodes = [pack.j1939 for pack in packs if pack.j1939 is not None]
        return J1939BusLink(nodes, lambda: self.clock()).take if nodes else None

    def pump(self) -> None:
        """Send what the J1939 packs have due now (BAM packets, DM1, address claims, transport replies)."""
        now = self.clock()
        for pack in self.packs:
            pack.pump(now)

    def poll_commands(self) -> None:
        """Receive what is waiting on every bus and hand each command to the pack it addresses."""
        for receiver in self.receivers:
            for decoded in receiver.poll():
                for pack in self.packs:
                    if pack.bus_name == receiver.bus_name and pack.node_address == decoded.node_address:
                        pack.handle_command(decoded)

    @property
    def command_rejects(self) -> dict[str, Counter[str]]:
        """Per bus: received frames that were not valid commands, by FrameRejected reason."""
        return {receiver.bus_name: receiver.rejected for receiver in self.receivers}

    def truth(self) -> dict[str, Any]:
        return {"time": time.time(), "sim_time_s": round(self.time_s, 3),
                "packs": [pack.truth() for pack in self.packs]}

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Play until `stop` is set or the task is cancelled."""
        loop = asyncio.get_running_loop()
        path = self.settings.truth_file
        with TruthWriter(path) if path is not None else nullcontext() as writer:
            next_tick = next_truth = loop.time()
            while stop is None or not stop.is_set():
                self.poll_commands()
                self.pump()
                now = loop.time()
                if now - next_tick > MAX_LAG_S:
                    next_tick = now
                for _ in range(MAX_CATCH_UP_TICKS):
                    if now < next_tick:
                        break
                    await self._tick_yielding()
                    next_tick += self.real_tick_s
                if writer is not None and now >= next_truth:
                    writer.write(self.truth())
                    next_truth = max(next_truth + TRUTH_INTERVAL_S, now)
                await asyncio.sleep(min(max(next_tick - loop.time(), 0.0), POLL_INTERVAL_S))


async def run_simulation(settings: SimulationSettings, buses: Mapping[str, can.BusABC], mappings_dir: Path,
                         stop: asyncio.Event | None = None) -> None:
    """Play `settings.packs` on `buses` (keyed by bus name) until `stop` is set or cancelled.

    Raises ConfigError / MappingError before anything is sent if the packs do not fit their buses,
    cell models or protocols. Does not look at `settings.enabled`: the caller decides.
    """
    await Simulation(settings, buses, mappings_dir).run(stop)
