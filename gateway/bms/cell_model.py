"""Cell models as data: mappings/cells/<id>.yaml, validated into a frozen CellModel.

A model holds the datasheet limits, OCV-SoC curves per temperature (with an optional
charge/discharge hysteresis half-gap) and an equivalent circuit (R0 plus RC pairs) tabulated over
SoC and temperature. `bms-gateway cell fit` writes these files from characterization tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.codec.yaml_source import load_validated_mapping
from gateway.domain.states import Chemistry

FloatArray = NDArray[np.float64]
REFERENCE_SOC = 0.5
REFERENCE_TEMPERATURE_C = 25.0
REFERENCE_PULSE_S = 10.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CellLimits(_Strict):
    max_charge_voltage_v: float = Field(gt=0.0, le=5.0)
    min_discharge_voltage_v: float = Field(gt=0.0, le=5.0)
    charge_temperature_c: tuple[float, float]
    discharge_temperature_c: tuple[float, float]
    max_continuous_charge_c_rate: float = Field(gt=0.0)
    max_continuous_discharge_c_rate: float = Field(gt=0.0)
    max_pulse_charge_c_rate_10s: float = Field(gt=0.0)
    max_pulse_discharge_c_rate_10s: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> CellLimits:
        if self.min_discharge_voltage_v >= self.max_charge_voltage_v:
            raise ValueError("min_discharge_voltage_v must be below max_charge_voltage_v")
        for low, high in (self.charge_temperature_c, self.discharge_temperature_c):
            if low >= high:
                raise ValueError("temperature windows must be [low, high] with low < high")
        return self


def _increasing(name: str, values: tuple[float, ...]) -> None:
    if any(not math.isfinite(v) for v in values) or any(b <= a for a, b in pairwise(values)):
        raise ValueError(f"{name} must be finite and strictly increasing")


def _grid_rows(name: str, rows: tuple[tuple[float, ...], ...], temperatures: int, socs: int,
               low: float, high: float) -> None:
    if len(rows) != temperatures:
        raise ValueError(f"{name} needs one row per entry of temperature_c ({temperatures}), has {len(rows)}")
    for row in rows:
        if len(row) != socs:
            raise ValueError(f"every {name} row needs one value per entry of soc ({socs}), one has {len(row)}")
        if any(not (low <= v <= high) for v in row):
            raise ValueError(f"{name} values must lie in [{low}, {high}]")


class OcvTable(_Strict):
    temperature_c: tuple[float, ...] = Field(min_length=1)
    soc: tuple[float, ...] = Field(min_length=2)
    voltage_v: tuple[tuple[float, ...], ...]
    hysteresis_v: tuple[tuple[float, ...], ...] | None = None  # half the charge-discharge gap at rest
    hysteresis_rate: float = Field(default=20.0, gt=0.0)  # approach speed per unit of SoC moved

    @model_validator(mode="after")
    def _shape(self) -> OcvTable:
        _increasing("temperature_c", self.temperature_c)
        _increasing("soc", self.soc)
        if self.soc[0] > 0.0 or self.soc[-1] < 1.0:
            raise ValueError("soc must span 0..1 (first entry 0, last entry 1)")
        _grid_rows("voltage_v", self.voltage_v, len(self.temperature_c), len(self.soc), 0.0, 5.0)
        for row in self.voltage_v:
            _increasing("each voltage_v row (OCV must rise with SoC)", row)
        if self.hysteresis_v is not None:
            _grid_rows("hysteresis_v", self.hysteresis_v, len(self.temperature_c), len(self.soc), 0.0, 0.2)
        return self


class RcPair(_Strict):
    r_ohm: tuple[tuple[float, ...], ...]
    tau_s: tuple[tuple[float, ...], ...]


class EquivalentCircuit(_Strict):
    temperature_c: tuple[float, ...] = Field(min_length=1)
    soc: tuple[float, ...] = Field(min_length=1)
    r0_ohm: tuple[tuple[float, ...], ...]
    rc: tuple[RcPair, ...] = Field(min_length=1, max_length=3)

    @model_validator(mode="after")
    def _shape(self) -> EquivalentCircuit:
        _increasing("temperature_c", self.temperature_c)
        _increasing("soc", self.soc)
        shape = (len(self.temperature_c), len(self.soc))
        _grid_rows("r0_ohm", self.r0_ohm, *shape, 1e-6, 1.0)
        for pair in self.rc:
            _grid_rows("rc r_ohm", pair.r_ohm, *shape, 0.0, 1.0)
            _grid_rows("rc tau_s", pair.tau_s, *shape, 0.01, 100_000.0)
        return self


class FitQuality(_Strict):
    temperature_c: float
    voltage_rmse_mv: float
    voltage_max_abs_mv: float


class FitRecord(_Strict):
    """Provenance written by `bms-gateway cell fit`; informative only."""

    tool: str
    sources: tuple[str, ...]
    capacity_c20_ah: float
    hppc_quality: tuple[FitQuality, ...]


class CellModelSpec(_Strict):
    cell_id: str
    chemistry: Literal["nmc", "lfp", "lto", "nca"]
    nominal_capacity_ah: float = Field(gt=0.0, le=2000.0)
    nominal_voltage_v: float = Field(gt=0.0, le=5.0)
    limits: CellLimits
    ocv: OcvTable
    equivalent_circuit: EquivalentCircuit
    fit: FitRecord | None = None


def interpolate_grid(temperatures: FloatArray, socs: FloatArray, values: FloatArray,
                     temperature_c: float, soc: FloatArray) -> FloatArray:
    """Bilinear lookup in a (temperature x soc) table, clamped at the table edges."""
    rows = np.array([np.interp(soc, socs, row) for row in values])
    if len(temperatures) == 1:
        single: FloatArray = rows[0]
        return single
    weights = np.interp(temperature_c, temperatures, np.arange(len(temperatures), dtype=np.float64))
    low = math.floor(weights)
    high = min(low + 1, len(temperatures) - 1)
    fraction = weights - low
    result: FloatArray = (1.0 - fraction) * rows[low] + fraction * rows[high]
    return result


@dataclass(frozen=True)
class CellModel:
    spec: CellModelSpec

    @property
    def cell_id(self) -> str:
        return self.spec.cell_id

    @property
    def chemistry(self) -> Chemistry:
        return Chemistry[self.spec.chemistry.upper()]

    @property
    def limits(self) -> CellLimits:
        return self.spec.limits

    @property
    def nominal_capacity_ah(self) -> float:
        return self.spec.nominal_capacity_ah

    def ocv_v(self, soc: FloatArray, temperature_c: float = REFERENCE_TEMPERATURE_C) -> FloatArray:
        o = self.spec.ocv
        return interpolate_grid(np.asarray(o.temperature_c), np.asarray(o.soc), np.asarray(o.voltage_v),
                                temperature_c, np.asarray(soc, dtype=np.float64))

    def soc_from_ocv(self, voltage_v: FloatArray, temperature_c: float = REFERENCE_TEMPERATURE_C) -> FloatArray:
        socs = np.linspace(0.0, 1.0, 1001)
        return np.interp(voltage_v, self.ocv_v(socs, temperature_c), socs)

    def _circuit_at(self, values: tuple[tuple[float, ...], ...], soc: float, temperature_c: float) -> float:
        c = self.spec.equivalent_circuit
        return float(interpolate_grid(np.asarray(c.temperature_c), np.asarray(c.soc), np.asarray(values),
                                      temperature_c, np.array([soc]))[0])

    def r0_at(self, soc: float = REFERENCE_SOC, temperature_c: float = REFERENCE_TEMPERATURE_C) -> float:
        return self._circuit_at(self.spec.equivalent_circuit.r0_ohm, soc, temperature_c)

    def rc_at(self, soc: float = REFERENCE_SOC,
              temperature_c: float = REFERENCE_TEMPERATURE_C) -> list[tuple[float, float]]:
        """(R, tau) of every RC pair."""
        return [(self._circuit_at(p.r_ohm, soc, temperature_c), self._circuit_at(p.tau_s, soc, temperature_c))
                for p in self.spec.equivalent_circuit.rc]

    @property
    def r0_ohm(self) -> float:
        """R0 at the reference conditions (50 % SoC, 25 degC)."""
        return self.r0_at()

    def pulse_resistance_ohm(self, soc: float = REFERENCE_SOC, temperature_c: float = REFERENCE_TEMPERATURE_C,
                             pulse_s: float = REFERENCE_PULSE_S) -> float:
        """Voltage drop after a 1C discharge pulse of `pulse_s` from rest, divided by the current.

        This is the datasheet "10 s DC resistance"; it includes the OCV drop over the pulse.
        """
        polarisation = self.r0_at(soc, temperature_c) + sum(
            r * (1.0 - math.exp(-pulse_s / tau)) for r, tau in self.rc_at(soc, temperature_c))
        moved = pulse_s / 3600.0
        ocv_drop = float(self.ocv_v(np.array([soc]), temperature_c)[0]
                         - self.ocv_v(np.array([soc - moved]), temperature_c)[0])
        return polarisation + ocv_drop / self.nominal_capacity_ah


def load_cell_model(mappings_dir: Path, cell_id: str) -> CellModel:
    return CellModel(load_validated_mapping(mappings_dir / "cells" / f"{cell_id}.yaml", CellModelSpec))
