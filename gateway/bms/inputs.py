"""What one BMS step sees: the latest measurements of all packs as arrays, with their ages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.bms.pack_reports import PackReports

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class BmsInputs:
    cell_voltage_v: FloatArray  # packs x cells, NaN where never received
    temperature_c: FloatArray  # packs x sensors
    pack_voltage_v: FloatArray  # packs
    pack_current_a: FloatArray  # packs, positive = charging
    contactor_state: IntArray  # packs (ContactorState values)
    pack_fault_flags: IntArray  # packs
    data_age_s: FloatArray  # packs: age of the oldest voltage/current signal (inf if one was never received)
    temperature_age_s: FloatArray  # packs: age of the oldest temperature sensor reading
    cell_voltage_new: BoolArray | None = None  # packs x cells: received since the previous step (None: all)
    peak_discharge_current_a: FloatArray | None = None  # packs: largest in any frame since the previous step
    reports: PackReports | None = None  # the packs' own limits and alarm bits (None: no pack reports any)
