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
from gateway.validation_problems import EntryError

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
            raise EntryError(("min_discharge_voltage_v",),
                             f"{self.min_discharge_voltage_v} V is not below max_charge_voltage_v "
                             f"({self.max_charge_voltage_v} V)",
                             "set min_discharge_voltage_v below max_charge_voltage_v")
        for name in ("charge_temperature_c", "discharge_temperature_c"):
            low, high = getattr(self, name)
            if low >= high:
                raise EntryError((name,), f"window [{low}, {high}] is not [low, high] with low < high",
                                 "write the temperature window as [low, high] in degC, low first")
        return self


Entry = tuple[int | str, ...]


def _increasing(entry: Entry, values: tuple[float, ...], what: str,
                fix: str = "list the entries in increasing order, each larger than the one before") -> None:
    """`values` finite and strictly increasing; the problem names the first entry that is not."""
    for index, value in enumerate(values):
        if not math.isfinite(value):
            raise EntryError((*entry, index), f"{value} is not a finite number ({what})",
                             "replace it with a finite number (no .nan or .inf)")
    for index, (before, value) in enumerate(pairwise(values), start=1):
        if value <= before:
            raise EntryError((*entry, index), f"{value} is not above the entry before it ({before}): {what}", fix)


def _grid_rows(entry: Entry, rows: tuple[tuple[float, ...], ...], temperatures: int, socs: int,
               low: float, high: float) -> None:
    """A (temperature x soc) table: one row per temperature_c entry, one value per soc entry, in [low, high]."""
    if len(rows) != temperatures:
        raise EntryError(entry, f"has {len(rows)} rows, temperature_c has {temperatures} entries",
                         "give one row per entry of temperature_c, in the same order")
    for row_index, row in enumerate(rows):
        if len(row) != socs:
            raise EntryError((*entry, row_index), f"has {len(row)} values, soc has {socs} entries",
                             "give one value per entry of soc, in the same order")
        for column, value in enumerate(row):
            if not (low <= value <= high):
                raise EntryError((*entry, row_index, column), f"{value} is outside [{low}, {high}]",
                                 f"use a value from {low} to {high}")


class OcvTable(_Strict):
    temperature_c: tuple[float, ...] = Field(min_length=1)
    soc: tuple[float, ...] = Field(min_length=2)
    voltage_v: tuple[tuple[float, ...], ...]
    hysteresis_v: tuple[tuple[float, ...], ...] | None = None  # half the charge-discharge gap at rest
    hysteresis_rate: float = Field(default=20.0, gt=0.0)  # approach speed per unit of SoC moved

    @model_validator(mode="after")
    def _shape(self) -> OcvTable:
        _increasing(("temperature_c",), self.temperature_c, "temperature_c must increase strictly")
        _increasing(("soc",), self.soc, "soc must increase strictly")
        if self.soc[0] > 0.0:
            raise EntryError(("soc", 0), f"the soc list starts at {self.soc[0]}, not 0",
                             "make the soc list span 0..1: first entry 0, last entry 1")
        if self.soc[-1] < 1.0:
            raise EntryError(("soc", len(self.soc) - 1), f"the soc list ends at {self.soc[-1]}, not 1",
                             "make the soc list span 0..1: first entry 0, last entry 1")
        _grid_rows(("voltage_v",), self.voltage_v, len(self.temperature_c), len(self.soc), 0.0, 5.0)
        for row_index, (temperature, row) in enumerate(zip(self.temperature_c, self.voltage_v, strict=True)):
            _increasing(("voltage_v", row_index), row, f"the OCV at {temperature} degC must rise with SoC",
                        "correct this voltage_v row so every value is above the one before it (a fitted model: "
                        "fit it again with `bms-gateway cell fit`)")
        if self.hysteresis_v is not None:
            _grid_rows(("hysteresis_v",), self.hysteresis_v, len(self.temperature_c), len(self.soc), 0.0, 0.2)
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
        _increasing(("temperature_c",), self.temperature_c, "temperature_c must increase strictly")
        _increasing(("soc",), self.soc, "soc must increase strictly")
        shape = (len(self.temperature_c), len(self.soc))
        _grid_rows(("r0_ohm",), self.r0_ohm, *shape, 1e-6, 1.0)
        for index, pair in enumerate(self.rc):
            _grid_rows(("rc", index, "r_ohm"), pair.r_ohm, *shape, 0.0, 1.0)
            _grid_rows(("rc", index, "tau_s"), pair.tau_s, *shape, 0.01, 100_000.0)
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
