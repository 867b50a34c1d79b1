"""One simulated pack on a bus: physics, load, faults, the frames it sends and the commands it obeys."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import can
import numpy as np

from gateway.bms.cell_model import CellModel, load_cell_model
from gateway.codec.can_decoder import DecodedFrame
from gateway.codec.can_encoder import EncodedFrame, FrameEncoder
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.domain.measurement import ArrayField, CommandField, CommandKind
from gateway.domain.states import ContactorState
from gateway.errors import ConfigError, Problem
from gateway.settings import SimulatedPack, SimulationSettings
from gateway.sim.faults import FaultSchedule, apply_physical_faults, requested_current_a
from gateway.sim.frame_faults import CounterFreezer, corrupt_crc
from gateway.sim.garbage import GarbageFrames
from gateway.sim.j1939_faults import j1939_fault_problems
from gateway.sim.j1939_node import j1939_node_for
from gateway.sim.load_profile import LoadProfile
from gateway.sim.pack_bms import pack_report
from gateway.sim.pack_frames import PackFrames, SimulatedIdentity, array_capacity
from gateway.sim.pack_model import PackModel
from gateway.sim.poll_answers import PollAnswers
from gateway.sim.seeding import seeded_rng

MAX_PHYSICS_STEP_S = 1.0
GARBAGE_FRAMES_PER_S = 20.0  # per unit magnitude
MAX_GARBAGE_FRAMES_PER_TICK = 200
BALANCING_MASK_BITS = 32
CELL_FAULTS = frozenset({"hot_cell", "weak_cell", "contact_resistance", "leak"})  # faults that name a cell


def _round(values: Any, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


class PackSimulator:
    """Steps the physics with `tick` (simulated time), sends what a real pack sends, and answers
    commands passed to `handle_command`. Counters: frames_sent, send_errors, commands."""

    def __init__(self, pack: SimulatedPack, *, index: int, settings: SimulationSettings, cell: CellModel,
                 protocol: PackProtocol, bus: can.BusABC) -> None:
        self.pack = pack
        self.index = index
        self.node_address = pack.node_address
        self.bus_name = pack.bus
        self.protocol = protocol
        self._bus = bus
        self.model = PackModel(cell, pack.series_cells, pack.temperature_sensors,
                               initial_soc=pack.initial_soc, ambient_c=pack.ambient_c,
                               rng=seeded_rng(settings.seed, index, 0))
        self.load = LoadProfile(settings.load_profile, settings.load_scale_c, cell.nominal_capacity_ah,
                                settings.seed)
        self.faults = FaultSchedule(pack.faults)
        self.identity = SimulatedIdentity(pack.serial_number, int(cell.chemistry), pack.series_cells,
                                          pack.temperature_sensors, cell.nominal_capacity_ah)
        encoder = FrameEncoder(protocol)
        self._poll_answers = PollAnswers(encoder, pack.node_address)
        self._frames = self._poll_answers.unsolicited  # all of them, unless the protocol is polled
        self._fault_rng = seeded_rng(settings.seed, index, 1)
        self._garbage = GarbageFrames(protocol, pack.node_address, self._fault_rng)
        self.j1939 = j1939_node_for(pack, encoder, self.identity, self.faults,
                                    lambda arbitration_id, data: self._transmit(arbitration_id, data,
                                                                                is_extended_id=True))
        self._freezer = CounterFreezer(protocol)
        self._temperature_period_s = settings.temperature_period_s
        self._next_temperature_s = 0.0
        self._garbage_due = 0.0
        self.time_s = 0.0
        self.frames_sent = 0
        self.send_errors = 0
        self.commands: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: SimulationSettings, index: int, bus: can.BusABC, mappings_dir: Path, *,
                      protocol: PackProtocol | None = None, cell: CellModel | None = None) -> PackSimulator:
        """Load the pack's cell model and protocol (unless given, already loaded); MappingError if they
        are invalid, ConfigError if the pack does not fit them."""
        pack = settings.packs[index]
        if protocol is None:
            protocol = load_protocol(mappings_dir, pack.protocol)
        if cell is None:
            cell = load_cell_model(mappings_dir, pack.cell_model)
        key = f"simulation.packs[{index}]"
        problems: list[Problem] = []
        encoder = FrameEncoder(protocol)
        arrays = ((ArrayField.CELL_VOLTAGE_V, pack.series_cells, "series_cells"),
                  (ArrayField.TEMPERATURE_C, pack.temperature_sensors, "temperature_sensors"))
        for field, count, name in arrays:
            carried = array_capacity(encoder, field)
            if 0 < carried < count:  # none: the protocol reports only the extremes, of any number of cells
                problems.append(Problem("simulation", f"{key}.{name}",
                                        f"{count} exceeds the {carried} protocol {pack.protocol} carries",
                                        f"use at most {carried}"))
        for number, fault in enumerate(pack.faults):
            if fault.kind in CELL_FAULTS and fault.cell > pack.series_cells:
                problems.append(Problem("simulation", f"{key}.faults[{number}].cell",
                                        f"cell {fault.cell} does not exist ({pack.series_cells} cells)",
                                        f"use a cell number from 1 to {pack.series_cells}"))
        problems += j1939_fault_problems(pack, protocol, key)
        if problems:
            raise ConfigError(problems)
        return cls(pack, index=index, settings=settings, cell=cell, protocol=protocol, bus=bus)

    # --- simulated time -------------------------------------------------------------------------

    def advance(self, dt_s: float) -> None:
        """Step the physics by `dt_s` of simulated time (in sub-steps of at most 1 s)."""
        remaining = dt_s
        while remaining > 1e-9:
            step = min(remaining, MAX_PHYSICS_STEP_S)
            apply_physical_faults(self.model, self.faults, self.time_s)
            request = requested_current_a(self.faults, self.time_s, self.load.current_a(self.time_s),
                                          self.model.cell.nominal_capacity_ah)
            self.model.step(step, request)
            self.time_s += step
            remaining -= step

    def tick(self, dt_s: float) -> None:
        """Advance `dt_s`, then send the status and cell voltages, temperatures when due, and garbage."""
        self.advance(dt_s)
        self.send_status()
        if self.time_s >= self._next_temperature_s - 1e-9:
            self.send_temperatures()
            self._next_temperature_s += self._temperature_period_s
            if self._next_temperature_s <= self.time_s:
                self._next_temperature_s = self.time_s + self._temperature_period_s
        self._send_garbage(dt_s)

    def pump(self, now: float) -> None:
        """A J1939 pack sends what is due at real time `now` (BAM packets, DM1, address claims); others nothing."""
        if self.j1939 is not None:
            self.j1939.pump(now, self.time_s, silent=self.silent)
            self.node_address = self.j1939.address

    # --- sending --------------------------------------------------------------------------------

    @property
    def silent(self) -> bool:
        return self.faults.any_active("silent", self.time_s)

    def send_status(self, frames: PackFrames | None = None) -> None:
        model = self.model
        state = ContactorState.CLOSED if model.contactor_closed else ContactorState.OPEN
        frames = frames or self._frames
        self._send_pack_frames(frames.status(
            pack_voltage_v=model.pack_voltage_v, pack_current_a=model.current_a, contactor_state=int(state),
            balancing_active=model.balancing_active, fault_flags=0,
            cell_voltage_v=model.cell_voltage_v.tolist(), report=pack_report(model) if frames.carries_report else None))

    def send_temperatures(self, frames: PackFrames | None = None) -> None:
        self._send_pack_frames((frames or self._frames).temperatures(self.model.sensor_temperature_c.tolist()))

    def answer_poll(self, request: str) -> None:
        """Send what answers the poll `request` (a polled protocol's pack speaks only when asked)."""
        answer = self._poll_answers.answers[request]
        self.send_status(answer)
        self.send_temperatures(answer)

    def send_identity(self) -> None:
        self._send_pack_frames(self._frames.identity(self.identity))

    def _send_pack_frames(self, frames: list[EncodedFrame]) -> None:
        if self.silent:
            return
        if self.j1939 is not None:  # J1939 frames carry no CRC or counter; the node addresses and paces them
            self.j1939.send(frames)
            return
        bad_crc = self.faults.active("bad_crc", self.time_s)
        corrupt_fraction = max((f.magnitude for f in bad_crc), default=0.0)
        freeze = self.faults.any_active("bad_counter", self.time_s)
        if not freeze:
            self._freezer.reset()
        for frame in frames:
            if freeze:
                frame = self._freezer.apply(frame)
            if corrupt_fraction > 0.0 and self._fault_rng.random() < corrupt_fraction:
                frame = corrupt_crc(frame, self.protocol.crc_byte)
            self._transmit(frame.arbitration_id, frame.data, is_extended_id=frame.is_extended_id)

    def _send_garbage(self, dt_s: float) -> None:
        garbage = self.faults.active("garbage_frames", self.time_s)
        if not garbage:
            self._garbage_due = 0.0
            return
        self._garbage_due += sum(f.magnitude for f in garbage) * GARBAGE_FRAMES_PER_S * dt_s
        count = int(self._garbage_due)
        self._garbage_due -= count
        if self.silent:
            return
        for _ in range(min(count, MAX_GARBAGE_FRAMES_PER_TICK)):
            frame = self._garbage.make()
            self._transmit(frame.arbitration_id, frame.data, is_extended_id=frame.is_extended_id)

    def _transmit(self, arbitration_id: int, data: bytes, *, is_extended_id: bool) -> None:
        try:
            message = can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=is_extended_id)
            self._bus.send(message)
        except can.CanError:
            self.send_errors += 1
        else:
            self.frames_sent += 1

    # --- commands -------------------------------------------------------------------------------

    def handle_command(self, decoded: DecodedFrame) -> None:
        """Obey one decoded to_pack frame addressed to this pack."""
        binding = self.protocol.messages.get(decoded.message)
        if binding is None or decoded.node_address != self.node_address:
            return
        if decoded.message in self._poll_answers.answers:
            self.answer_poll(decoded.message)
            return
        if binding.command is None:
            return
        values = {value.field: value.value for value in decoded.values}
        kind = binding.command
        self.commands[kind.value] += 1
        if kind is CommandKind.IDENTITY_REQUEST:
            self.send_identity()
        elif kind is CommandKind.CONTACTOR_OPEN:
            self.model.contactor_closed = not values.get(CommandField.OPEN_REQUEST, 0.0)
        elif kind is CommandKind.BALANCING:
            enabled = bool(values.get(CommandField.BALANCING_ENABLE, 0.0))
            mask = int(values.get(CommandField.BALANCING_MASK, 0.0)) if enabled else 0
            cells = min(self.model.series_cells, BALANCING_MASK_BITS)
            balancing = np.zeros(self.model.series_cells, dtype=np.bool_)
            balancing[:cells] = [(mask >> bit) & 1 == 1 for bit in range(cells)]
            self.model.balancing_mask = balancing

    # --- ground truth ---------------------------------------------------------------------------

    def truth(self) -> dict[str, Any]:
        model = self.model
        return {
            "node_address": self.node_address,
            "bus": self.bus_name,
            "serial_number": self.identity.serial_number,
            "sim_time_s": round(self.time_s, 3),
            "pack_voltage_v": round(model.pack_voltage_v, 4),
            "current_a": round(model.current_a, 3),
            "cell_voltage_v": _round(model.cell_voltage_v, 5),
            "cell_soc": _round(model.soc, 6),
            "temperature_c": _round(model.sensor_temperature_c, 3),
            "sensor_cells": [int(c) + 1 for c in model.sensor_cells],
            "contactor_closed": model.contactor_closed,
            "balancing_cells": [int(c) + 1 for c in np.flatnonzero(model.balancing_mask)],
            "silent": self.silent,
            "active_faults": self.faults.active_kinds(self.time_s),
        }
