"""Assemble a cell model (mappings/cells/<id>.yaml) from a datasheet and fitted tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gateway.bms.cell_model import CellModelSpec, FitQuality, FitRecord
from gateway.cellfit.hppc_fit import HppcFit
from gateway.cellfit.ocv_fit import OcvTest
from gateway.cellfit.segments import FloatArray
from gateway.errors import MappingError, Problem

_CHEMISTRIES = ("nmc", "nca", "lfp", "lto")
_LIMIT_KEYS = ("max_charge_voltage_v", "min_discharge_voltage_v", "charge_temperature_c",
               "discharge_temperature_c", "max_continuous_charge_c_rate", "max_continuous_discharge_c_rate",
               "max_pulse_charge_c_rate_10s", "max_pulse_discharge_c_rate_10s")


@dataclass(frozen=True)
class Datasheet:
    cell_id: str
    chemistry: str
    nominal_capacity_ah: float
    nominal_voltage_v: float
    limits: dict[str, Any]


def read_datasheet(path: Path) -> Datasheet:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise MappingError([Problem(str(path), "(file)", f"cannot be read ({error})",
                                    "give a datasheet YAML like data/cells/nmc-200ah/datasheet.yaml")]) from error
    missing = [k for k in ("cell_id", "chemistry", "nominal_capacity_ah", "nominal_voltage_v", *_LIMIT_KEYS)
               if not isinstance(raw, dict) or k not in raw]
    if missing:
        raise MappingError([Problem(str(path), key, "is missing", "add it from the cell's datasheet")
                            for key in missing])
    text = str(raw["chemistry"]).lower()
    chemistry = next((c for c in _CHEMISTRIES if text.startswith(c)), None)
    if chemistry is None:
        raise MappingError([Problem(str(path), "chemistry", f"{raw['chemistry']!r} is not recognised",
                                    f"start it with one of {', '.join(_CHEMISTRIES)}")])
    return Datasheet(str(raw["cell_id"]), chemistry, float(raw["nominal_capacity_ah"]),
                     float(raw["nominal_voltage_v"]), {k: raw[k] for k in _LIMIT_KEYS})


def _rounded(values: FloatArray, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def _circuit(fits: Sequence[HppcFit]) -> dict[str, Any]:
    reference = min(fits, key=lambda f: abs(f.temperature_c - 25.0))
    soc_axis = np.unique(np.round([b.soc for b in reference.blocks], 3))
    pairs = len(reference.blocks[0].rc)

    def table(value_of: Any, digits: int) -> list[list[float]]:
        rows = []
        for fit in fits:
            socs = np.array([b.soc for b in fit.blocks])
            order = np.argsort(socs)
            values = np.array([value_of(b) for b in fit.blocks])[order]
            rows.append(_rounded(np.interp(soc_axis, socs[order], values), digits))
        return rows

    return {
        "temperature_c": [round(f.temperature_c, 1) for f in fits],
        "soc": _rounded(soc_axis, 3),
        "r0_ohm": table(lambda b: b.r0_ohm, 7),
        "rc": [{"r_ohm": table(lambda b, k=k: b.rc[k][0], 7), "tau_s": table(lambda b, k=k: b.rc[k][1], 2)}
               for k in range(pairs)],
    }


def build_spec(datasheet: Datasheet, ocv_tests: Sequence[OcvTest], hppc_fits: Sequence[HppcFit],
               hysteresis_v: Sequence[FloatArray] | None, sources: Sequence[str],
               quality: Sequence[FitQuality] = ()) -> CellModelSpec:
    ocv = sorted(ocv_tests, key=lambda t: t.temperature_c)
    hppc = sorted(hppc_fits, key=lambda f: f.temperature_c)
    ocv_section: dict[str, Any] = {
        "temperature_c": [round(t.temperature_c, 1) for t in ocv],
        "soc": _rounded(ocv[0].soc_grid, 4),
        "voltage_v": [_rounded(t.ocv_v, 5) for t in ocv],
    }
    if hysteresis_v is not None:
        ocv_section["hysteresis_v"] = [_rounded(h, 5) for h in hysteresis_v]
    reference = min(ocv, key=lambda t: abs(t.temperature_c - 25.0))
    return CellModelSpec.model_validate({
        "cell_id": datasheet.cell_id,
        "chemistry": datasheet.chemistry,
        "nominal_capacity_ah": datasheet.nominal_capacity_ah,
        "nominal_voltage_v": datasheet.nominal_voltage_v,
        "limits": datasheet.limits,
        "ocv": ocv_section,
        "equivalent_circuit": _circuit(hppc),
        "fit": FitRecord(tool="bms-gateway cell fit", sources=tuple(sources),
                         capacity_c20_ah=round(reference.capacity_ah, 3), hppc_quality=tuple(quality)),
    })


def write_spec(spec: CellModelSpec, path: Path, header: str) -> None:
    data = spec.model_dump(mode="json", exclude_none=True)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    path.write_text(comment + text, encoding="utf-8")
