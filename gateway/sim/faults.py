"""When each injected fault is active, and what the physical ones do to the pack model.

Physical faults (applied here, before every physics step):
  weak_cell  the cell's capacity is multiplied by (1 - 0.2 * magnitude)
  hot_cell   the cell gets an extra heat source that settles it magnitude * 10 degC above the mean
             of the other cells (time constant about one minute)
  warming    the pack's cooling fails and heat leaks in: every cell climbs about magnitude * 6 degC
             per minute (capped at 120 degC)
  contact_resistance
             a resistance in series with the cell (a loosening contact) that rises linearly from 0 at
             start_s to magnitude x the cell's own R0 at the end of duration_s (the fault, and the
             resistance, end then: give the run's length); without duration_s, the full value from start_s
  leak       a current of magnitude x C/1000 flows inside the cell (self-discharge, a soft internal
             short): its SoC falls, the pack current is unchanged, and the leak's power heats the cell
  unstable_current
             the pack current swings: magnitude x 0.25 C is added to the load's request, with the sign
             alternating every second (a square wave of period 2 s)
Frame faults (silent, garbage_frames, bad_crc, bad_counter) are applied where frames are sent; bad_crc and
bad_counter need a protocol with a CRC and counter (not J1939).
J1939 faults (packs whose protocol has `addressing: j1939`, gateway/sim/j1939_faults.py):
  dtc        the trouble code `spn`/`fmi` is active in the pack's DM1 (sent every second); `lamp` amber_warning
             (default) or red_stop is on while it is; two or more active codes make a multi-packet DM1 (BAM)
  readdress  the pack claims `address` (Address Claimed with its NAME) and speaks from there; with duration_s it
             claims its own address again at the end; it moves between transport sessions, never during one
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from gateway.settings import SimulatedFault
from gateway.sim.pack_model import PackModel

HOT_CELL_RISE_C = 10.0  # per unit magnitude
HOT_CELL_TIME_CONSTANT_S = 60.0
WEAK_CELL_CAPACITY_LOSS = 0.2  # per unit magnitude
WARMING_RATE_C_PER_S = 6.0 / 60.0  # per unit magnitude
WARMING_CEILING_C = 120.0
MIN_CAPACITY_FACTOR = 0.05
LEAK_C_RATE = 1e-3  # per unit magnitude
UNSTABLE_AMPLITUDE_C_RATE = 0.25  # per unit magnitude
UNSTABLE_HALF_PERIOD_S = 1.0


def is_active(fault: SimulatedFault, time_s: float) -> bool:
    if time_s < fault.start_s:
        return False
    return fault.duration_s is None or time_s < fault.start_s + fault.duration_s


class FaultSchedule:
    def __init__(self, faults: Iterable[SimulatedFault]) -> None:
        self.faults = tuple(faults)

    def active(self, kind: str, time_s: float) -> list[SimulatedFault]:
        return [f for f in self.faults if f.kind == kind and is_active(f, time_s)]

    def any_active(self, kind: str, time_s: float) -> bool:
        return bool(self.active(kind, time_s))

    def active_kinds(self, time_s: float) -> list[str]:
        return sorted({f.kind for f in self.faults if is_active(f, time_s)})


def apply_physical_faults(model: PackModel, schedule: FaultSchedule, time_s: float) -> None:
    """Reset the model's fault hooks, then set them for the faults active at `time_s`."""
    model.capacity_factor = np.ones(model.series_cells)
    model.cooling_factor = 1.0
    model.extra_resistance_ohm = np.zeros(model.series_cells)
    model.leak_a = np.zeros(model.series_cells)
    for fault in schedule.active("contact_resistance", time_s):
        index = fault.cell - 1
        progress = 1.0 if fault.duration_s is None else min((time_s - fault.start_s) / fault.duration_s, 1.0)
        model.extra_resistance_ohm[index] += fault.magnitude * progress * model.r0_ohm[index]
    for fault in schedule.active("leak", time_s):
        model.leak_a[fault.cell - 1] += fault.magnitude * LEAK_C_RATE * model.cell.nominal_capacity_ah
    extra = np.zeros(model.series_cells)
    for fault in schedule.active("weak_cell", time_s):
        factor = max(1.0 - WEAK_CELL_CAPACITY_LOSS * fault.magnitude, MIN_CAPACITY_FACTOR)
        model.capacity_factor[fault.cell - 1] *= factor
    warming = schedule.active("warming", time_s)
    if warming:
        model.cooling_factor = 0.0
        rate = sum(f.magnitude for f in warming) * WARMING_RATE_C_PER_S
        below_ceiling = model.temperature_c < WARMING_CEILING_C
        extra += np.where(below_ceiling, rate * model.heat_capacity_j_per_k, 0.0)
    conductance = model.cooling_w_per_k * model.cooling_factor
    temperatures = model.temperature_c
    for fault in schedule.active("hot_cell", time_s):
        index = fault.cell - 1
        others = np.delete(temperatures, index)
        reference = float(np.mean(others)) if others.size else model.ambient_c
        rise = HOT_CELL_RISE_C * fault.magnitude
        drive = model.heat_capacity_j_per_k / HOT_CELL_TIME_CONSTANT_S
        extra[index] += max(0.0, conductance * rise + drive * (reference + rise - temperatures[index]))
    model.extra_heat_w = extra


def requested_current_a(schedule: FaultSchedule, time_s: float, load_a: float, nominal_capacity_ah: float) -> float:
    """The current the load asks for at `time_s`, with the swing of any active unstable_current fault."""
    swinging = schedule.active("unstable_current", time_s)
    if not swinging:
        return load_a
    sign = 1.0 if math.floor(time_s / UNSTABLE_HALF_PERIOD_S) % 2 == 0 else -1.0
    amplitude = sum(f.magnitude for f in swinging) * UNSTABLE_AMPLITUDE_C_RATE * nominal_capacity_ah
    return load_a + sign * amplitude
