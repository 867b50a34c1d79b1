"""Cell models as data: mappings/cells/<id>.yaml, validated into a frozen CellModel."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.codec.yaml_source import load_validated_mapping
from gateway.domain.states import Chemistry


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


class OcvTable(_Strict):
    temperature_c: tuple[float, ...] = Field(min_length=1)
    soc: tuple[float, ...] = Field(min_length=2)
    voltage_v: tuple[tuple[float, ...], ...]

    @model_validator(mode="after")
    def _shape(self) -> OcvTable:
        if len(self.voltage_v) != len(self.temperature_c):
            raise ValueError("voltage_v needs one row per entry of temperature_c")
        if any(len(row) != len(self.soc) for row in self.voltage_v):
            raise ValueError("every voltage_v row needs one value per entry of soc")
        if any(b <= a for a, b in pairwise(self.soc)):
            raise ValueError("soc must be strictly increasing")
        for row in self.voltage_v:
            if any(b <= a for a, b in pairwise(row)):
                raise ValueError("each voltage_v row must increase strictly with soc")
        return self


class EquivalentCircuit(_Strict):
    r0_ohm: float = Field(gt=0.0, lt=1.0)
    r1_ohm: float = Field(ge=0.0, lt=1.0)
    tau1_s: float = Field(gt=0.0)


class CellModelSpec(_Strict):
    cell_id: str
    chemistry: Literal["nmc", "lfp", "lto", "nca"]
    nominal_capacity_ah: float = Field(gt=0.0, le=2000.0)
    nominal_voltage_v: float = Field(gt=0.0, le=5.0)
    limits: CellLimits
    ocv: OcvTable
    equivalent_circuit: EquivalentCircuit


@dataclass(frozen=True)
class CellModel:
    spec: CellModelSpec
    ocv_soc: NDArray[np.float64]
    ocv_voltage_v: NDArray[np.float64]  # the row nearest 25 degC

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

    @property
    def r0_ohm(self) -> float:
        return self.spec.equivalent_circuit.r0_ohm

    def ocv_v(self, soc: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.interp(soc, self.ocv_soc, self.ocv_voltage_v)

    def soc_from_ocv(self, voltage_v: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.interp(voltage_v, self.ocv_voltage_v, self.ocv_soc)


def load_cell_model(mappings_dir: Path, cell_id: str) -> CellModel:
    path = mappings_dir / "cells" / f"{cell_id}.yaml"
    spec = load_validated_mapping(path, CellModelSpec)
    row = int(np.argmin([abs(t - 25.0) for t in spec.ocv.temperature_c]))
    return CellModel(spec, np.asarray(spec.ocv.soc, dtype=np.float64),
                     np.asarray(spec.ocv.voltage_v[row], dtype=np.float64))
