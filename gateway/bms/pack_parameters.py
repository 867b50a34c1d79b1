"""Per-pack constants as arrays (packs x cells), built once from the settings and the cell models."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from gateway.bms.cell_model import CellModel
from gateway.bms.cell_tables import CellTables
from gateway.bms.estimator import EstimatorCells, EstimatorSettings
from gateway.bms.soc_ekf import CellArrays
from gateway.domain.pack_reporting import PackReporting

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
_Array = TypeVar("_Array", bound=NDArray[Any])


@dataclass(frozen=True)
class PackLayout:
    pack_id: str
    series_cells: int
    temperature_sensors: int
    cell_model: CellModel
    reporting: PackReporting = field(default_factory=PackReporting)  # what its protocol reports


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
    cell_sensor_index: NDArray[np.intp]  # packs x max_cells: the temperature sensor each cell reads
    estimator: EstimatorCells
    estimator_settings: EstimatorSettings

    @property
    def pack_count(self) -> int:
        return len(self.layouts)

    # Derived constants, computed on first use. The packs x 2 ones hold the charge direction in column 0 and the
    # discharge direction in column 1, so that `limits.py` derives both limits in the same operations.

    @cached_property
    def rated_current_a(self) -> FloatArray:
        """packs x 2: the continuous charge and discharge current ratings."""
        return _constant(np.column_stack((self.max_charge_current_a, self.max_discharge_current_a)))

    @cached_property
    def window_low_c(self) -> FloatArray:
        """packs x 2: the low edges of the charge and discharge temperature windows."""
        return _constant(np.column_stack((self.charge_temperature_c[:, 0], self.discharge_temperature_c[:, 0])))

    @cached_property
    def window_high_c(self) -> FloatArray:
        """packs x 2: the high edges of the charge and discharge temperature windows."""
        return _constant(np.column_stack((self.charge_temperature_c[:, 1], self.discharge_temperature_c[:, 1])))

    @cached_property
    def cell_voltage_limit_v(self) -> FloatArray:
        """packs x 2: the cell's maximum charge and minimum discharge voltages."""
        return _constant(np.column_stack((self.max_cell_voltage_v, self.min_cell_voltage_v)))

    @cached_property
    def charge_voltage_v(self) -> FloatArray:
        """Per pack: the charge voltage limit (every cell at its maximum charge voltage)."""
        return _constant(self.series_cells * self.max_cell_voltage_v)

    @cached_property
    def discharge_voltage_v(self) -> FloatArray:
        """Per pack: the discharge voltage limit (every cell at its minimum discharge voltage)."""
        return _constant(self.series_cells * self.min_cell_voltage_v)

    @cached_property
    def cells_from_extremes(self) -> BoolArray:
        """Per pack: its cell voltages and temperatures are made up from the lowest and highest it reports."""
        return _constant(np.array([p.reporting.cells_from_extremes for p in self.layouts], dtype=bool))

    @cached_property
    def contactor_reported(self) -> BoolArray:
        """Per pack: it reports its contactor state (else it switches the contactor itself and cannot be asked to)."""
        return _constant(np.array([p.reporting.contactor_reported for p in self.layouts], dtype=bool))

    @cached_property
    def _flat_cell_sensor_index(self) -> NDArray[np.intp]:
        """`cell_sensor_index` into a flattened packs x sensors array (`take` is much faster than a 2-D index)."""
        flat = np.arange(self.pack_count)[:, None] * self.sensor_mask.shape[1] + self.cell_sensor_index
        result: NDArray[np.intp] = flat.astype(np.intp)
        return result

    def cell_temperature_c(self, temperature_c: FloatArray, unknown_c: float = math.nan) -> FloatArray:
        """Each cell's temperature from its sensor.

        A missing reading takes the mean of the pack's readings, or `unknown_c` when the pack has none.
        """
        per_cell: FloatArray = temperature_c.take(self._flat_cell_sensor_index)
        readable = np.isfinite(per_cell)
        if readable.all():
            return per_cell
        known = np.isfinite(temperature_c) & self.sensor_mask
        counts = known.sum(axis=1)
        mean = np.where(counts > 0, np.where(known, temperature_c, 0.0).sum(axis=1) / np.maximum(counts, 1),
                        unknown_c)
        result: FloatArray = np.where(readable, per_cell, mean[:, None])
        return result

    @classmethod
    def build(cls, layouts: Sequence[PackLayout],
              estimator_settings: EstimatorSettings | None = None) -> PackParameters:
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
        sensor_index = np.zeros((len(layouts), max_cells), dtype=np.intp)
        for i, layout in enumerate(layouts):
            sensor_index[i] = np.minimum(np.arange(max_cells) * layout.temperature_sensors // layout.series_cells,
                                         layout.temperature_sensors - 1)
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
            cell_sensor_index=sensor_index,
            estimator=_estimator_cells(models, cell_mask),
            estimator_settings=estimator_settings or EstimatorSettings(),
        )


def _constant(values: _Array) -> _Array:
    """`values` made read-only: a constant handed out every step must not be changed by a consumer."""
    values.setflags(write=False)
    return values


def _estimator_cells(models: Sequence[CellModel], cell_mask: BoolArray) -> EstimatorCells:
    unique = list({m.cell_id: m for m in models}.values())
    tables = CellTables(unique)
    position = {m.cell_id: i for i, m in enumerate(unique)}

    def per_cell(values: Sequence[float]) -> FloatArray:
        return np.broadcast_to(np.asarray(values, dtype=np.float64)[:, None], cell_mask.shape).copy()

    arrays = CellArrays(
        tables=tables,
        model_index=np.broadcast_to(np.asarray([position[m.cell_id] for m in models], dtype=np.intp)[:, None],
                                    cell_mask.shape).copy(),
        nominal_capacity_ah=per_cell([m.nominal_capacity_ah for m in models]),
        reference_r0_ohm=per_cell([m.r0_ohm for m in models]),
        hysteresis_rate=per_cell([m.spec.ocv.hysteresis_rate for m in models]),
    )
    return EstimatorCells(arrays, per_cell([m.pulse_resistance_ohm() for m in models]), cell_mask)
