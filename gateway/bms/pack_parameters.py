"""Per-pack constants as arrays (packs x cells), built once from the settings and the cell models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.bms.cell_model import CellModel

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class PackLayout:
    pack_id: str
    series_cells: int
    temperature_sensors: int
    cell_model: CellModel


@dataclass(frozen=True)
class PackParameters:
    layouts: tuple[PackLayout, ...]
    cell_mask: BoolArray  # packs x max_cells: True where the cell exists
    sensor_mask: BoolArray  # packs x max_sensors
    series_cells: FloatArray
    capacity_ah: FloatArray
    max_cell_voltage_v: FloatArray
    min_cell_voltage_v: FloatArray
    charge_temperature_c: FloatArray  # packs x 2
    discharge_temperature_c: FloatArray  # packs x 2
    max_charge_current_a: FloatArray  # continuous rating
    max_discharge_current_a: FloatArray
    pulse_charge_current_a: FloatArray
    pulse_discharge_current_a: FloatArray
    r0_ohm: FloatArray

    @property
    def pack_count(self) -> int:
        return len(self.layouts)

    @classmethod
    def build(cls, layouts: Sequence[PackLayout]) -> PackParameters:
        max_cells = max((p.series_cells for p in layouts), default=1)
        max_sensors = max((p.temperature_sensors for p in layouts), default=1)
        cell_mask = np.zeros((len(layouts), max_cells), dtype=bool)
        sensor_mask = np.zeros((len(layouts), max_sensors), dtype=bool)
        for i, layout in enumerate(layouts):
            cell_mask[i, : layout.series_cells] = True
            sensor_mask[i, : layout.temperature_sensors] = True

        def per_pack(values: Sequence[float]) -> FloatArray:
            return np.asarray(values, dtype=np.float64).reshape(len(layouts), -1).squeeze(axis=1) \
                if values else np.zeros(0)

        models = [p.cell_model for p in layouts]
        capacity = per_pack([m.nominal_capacity_ah for m in models])
        return cls(
            layouts=tuple(layouts),
            cell_mask=cell_mask,
            sensor_mask=sensor_mask,
            series_cells=per_pack([float(p.series_cells) for p in layouts]),
            capacity_ah=capacity,
            max_cell_voltage_v=per_pack([m.limits.max_charge_voltage_v for m in models]),
            min_cell_voltage_v=per_pack([m.limits.min_discharge_voltage_v for m in models]),
            charge_temperature_c=np.asarray([m.limits.charge_temperature_c for m in models],
                                            dtype=np.float64).reshape(-1, 2),
            discharge_temperature_c=np.asarray([m.limits.discharge_temperature_c for m in models],
                                               dtype=np.float64).reshape(-1, 2),
            max_charge_current_a=capacity * per_pack([m.limits.max_continuous_charge_c_rate for m in models]),
            max_discharge_current_a=capacity
            * per_pack([m.limits.max_continuous_discharge_c_rate for m in models]),
            pulse_charge_current_a=capacity * per_pack([m.limits.max_pulse_charge_c_rate_10s for m in models]),
            pulse_discharge_current_a=capacity
            * per_pack([m.limits.max_pulse_discharge_c_rate_10s for m in models]),
            r0_ohm=per_pack([m.r0_ohm for m in models]),
        )
