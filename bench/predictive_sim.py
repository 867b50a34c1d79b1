"""Simulated packs for the predictive-warnings bench: the simulator's pack model, load and faults, in-process.

Each pack steps `gateway/sim`'s PackModel with the physical faults applied exactly as the simulator applies them,
and is read through the sensor model of data/cells/FORMAT.md (offsets, noise, quantisation), so that the gateway
side sees what it would see from a real pack. No CAN: the frames would only quantise what the sensor model
already quantises.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from gateway.bms.cell_model import CellModel
from gateway.settings import SimulatedFault
from gateway.sim.faults import FaultSchedule, apply_physical_faults, requested_current_a
from gateway.sim.load_profile import LoadProfile
from gateway.sim.pack_model import PackModel
from gateway.sim.seeding import seeded_rng

FloatArray = NDArray[np.float64]

CELLS, SENSORS = 32, 8
DRIVE_SCALE_C = 1.0  # the drive cycle's pulses reach 2 C
LIGHT_DRIVE_SCALE_C = 0.5  # ... or 1 C
CHARGE_C_RATE = 0.5
CHARGED_BELOW_C_RATE = 0.05  # the charge ends when the CV taper brings the current below this
EMPTY_SOC = 0.15  # the drive ends when the emptiest cell reaches this
PARKED_S = 3 * 3600.0  # the drive-park duty's rest after each charge


class Duty(Enum):
    DRIVE = "drive"  # drive cycle until empty, charge at 0.5 C, drive again
    LIGHT_DRIVE = "light drive"  # the same at half the current
    DRIVE_PARK = "drive+park"  # the same with three hours parked after each charge
    IDLE = "idle"  # no current at all


class _Phase(Enum):
    DRIVE = 0
    CHARGE = 1
    PARK = 2


@dataclass(frozen=True)
class Scenario:
    name: str
    duty: Duty
    seed: int
    faults: tuple[SimulatedFault, ...] = ()
    initial_soc: float = 0.9


class DutyCycle:
    """The current a pack is asked for; the drive duty switches phase on the pack's true state."""

    def __init__(self, duty: Duty, cell: CellModel, seed: int) -> None:
        self.duty = duty
        scale = LIGHT_DRIVE_SCALE_C if duty is Duty.LIGHT_DRIVE else DRIVE_SCALE_C
        self.drive = LoadProfile("drive", scale, cell.nominal_capacity_ah, seed)
        self.capacity_ah = cell.nominal_capacity_ah
        self.phase = _Phase.DRIVE
        self.phase_start_s = 0.0

    def request_a(self, time_s: float, model: PackModel) -> float:
        if self.duty is Duty.IDLE:
            return 0.0
        elapsed = time_s - self.phase_start_s
        charged = elapsed > 60.0 and model.current_a < CHARGED_BELOW_C_RATE * self.capacity_ah
        if self.phase is _Phase.DRIVE and float(np.min(model.soc)) <= EMPTY_SOC:
            self._enter(_Phase.CHARGE, time_s)
        elif self.phase is _Phase.CHARGE and charged:
            self._enter(_Phase.PARK if self.duty is Duty.DRIVE_PARK else _Phase.DRIVE, time_s)
        elif self.phase is _Phase.PARK and elapsed >= PARKED_S:
            self._enter(_Phase.DRIVE, time_s)
        if self.phase is _Phase.DRIVE:
            return self.drive.current_a(time_s - self.phase_start_s)
        return CHARGE_C_RATE * self.capacity_ah if self.phase is _Phase.CHARGE else 0.0

    def _enter(self, phase: _Phase, time_s: float) -> None:
        self.phase, self.phase_start_s = phase, time_s


class Sensors:
    """The FORMAT.md sensor model: fixed offsets per channel drawn once, noise and quantisation per reading."""

    def __init__(self, rng: np.random.Generator, cells: int, sensors: int, full_scale_a: float) -> None:
        self.rng = rng
        self.voltage_offset_v = rng.uniform(-0.001, 0.001, cells)
        self.current_offset_a = 0.002 * full_scale_a * (1.0 if rng.random() < 0.5 else -1.0)
        self.current_noise_a = 0.002 * full_scale_a
        self.temperature_offset_c = rng.uniform(-1.0, 1.0, sensors)

    def read(self, model: PackModel) -> tuple[float, FloatArray, FloatArray]:
        """(pack current, cell voltages, sensor temperatures) as measured."""
        rng = self.rng
        current = model.current_a * 1.005 + self.current_offset_a + rng.normal(0.0, self.current_noise_a)
        voltage = model.cell_voltage_v + self.voltage_offset_v + rng.normal(0.0, 0.002, len(self.voltage_offset_v))
        temperature = (model.sensor_temperature_c + self.temperature_offset_c
                       + rng.normal(0.0, 0.3, len(self.temperature_offset_c)))
        return float(current), np.round(voltage, 3), np.round(temperature, 1)


class SimulatedPack:
    def __init__(self, scenario: Scenario, cell: CellModel, index: int) -> None:
        self.scenario = scenario
        self.model = PackModel(cell, CELLS, SENSORS, initial_soc=scenario.initial_soc, ambient_c=25.0,
                               rng=seeded_rng(scenario.seed, index, 0))
        self.duty = DutyCycle(scenario.duty, cell, scenario.seed)
        self.faults = FaultSchedule(scenario.faults)
        self.sensors = Sensors(seeded_rng(scenario.seed, index, 2), CELLS, SENSORS, 2.0 * cell.nominal_capacity_ah)

    def step(self, time_s: float, dt_s: float) -> None:
        apply_physical_faults(self.model, self.faults, time_s)
        request = self.duty.request_a(time_s, self.model)
        self.model.step(dt_s, requested_current_a(self.faults, time_s, request, self.model.cell.nominal_capacity_ah))

    def sensor_of_cell(self, cell_index: int) -> int | None:
        """The sensor sitting on the 0-based cell, if any."""
        on_cell = np.flatnonzero(self.model.sensor_cells == cell_index)
        return int(on_cell[0]) if on_cell.size else None
