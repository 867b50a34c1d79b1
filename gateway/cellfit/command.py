"""`bms-gateway cell fit`: OCV tests + HPPC tests + datasheet -> a validated cell model file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.bms.cell_model import CellModel, CellModelSpec
from gateway.cellfit.builder import build_spec, read_datasheet, write_spec
from gateway.cellfit.hppc_fit import HppcFit, fit_hppc
from gateway.cellfit.ocv_fit import OcvTest, capacity_from_test, fit_ocv
from gateway.cellfit.quality import fit_quality
from gateway.errors import LogError
from gateway.logs.measurement_log import MeasurementLog, read_measurement_log


@dataclass(frozen=True)
class FitRequest:
    datasheet: Path
    ocv_tests: Sequence[Path]
    hppc_tests: Sequence[Path]
    output: Path
    ocv_start_soc: float = 0.5
    hppc_start_soc: float = 1.0


def _single_cell(log: MeasurementLog) -> MeasurementLog:
    if log.series_cells != 1:
        raise LogError(log.path, "header", f"has {log.series_cells} cell voltage columns",
                       "characterization tests are of one cell: give cell_voltage_v_1 only")
    return log


def _nearest(tests: Sequence[OcvTest], temperature_c: float) -> OcvTest:
    return min(tests, key=lambda t: abs(t.temperature_c - temperature_c))


def fit_cell(request: FitRequest) -> tuple[CellModelSpec, list[str]]:
    datasheet = read_datasheet(request.datasheet)
    max_v = float(datasheet.limits["max_charge_voltage_v"])
    ocv_logs = [_single_cell(read_measurement_log(p)) for p in request.ocv_tests]
    hppc_logs = [_single_cell(read_measurement_log(p)) for p in request.hppc_tests]
    reference = min(ocv_logs, key=lambda log: abs(float(np.mean(log.temperature_c)) - 25.0))
    capacity = capacity_from_test(reference, request.ocv_start_soc)
    ocv_tests = [fit_ocv(log, request.ocv_start_soc, capacity, max_v) for log in ocv_logs]
    hppc_fits: list[HppcFit] = []
    for log in hppc_logs:
        curve = _nearest(ocv_tests, float(np.mean(log.temperature_c)))
        hppc_fits.append(fit_hppc(log, request.hppc_start_soc, capacity, curve.at))
    sources = [p.name for p in (*request.ocv_tests, *request.hppc_tests)]
    draft = build_spec(datasheet, ocv_tests, hppc_fits, None, sources)
    quality = [fit_quality(CellModel(draft), log, request.hppc_start_soc, capacity) for log in hppc_logs]
    spec = build_spec(datasheet, ocv_tests, hppc_fits, None, sources, quality)
    report = [f"{datasheet.cell_id}: C/20 capacity {capacity:.2f} Ah (nominal {datasheet.nominal_capacity_ah} Ah)"]
    for fit in hppc_fits:
        report.append(f"  HPPC {fit.temperature_c:5.1f} degC: {len(fit.blocks)} blocks fitted"
                      + (f", skipped {list(fit.skipped_blocks)}" if fit.skipped_blocks else ""))
    for q in quality:
        report.append(f"  model voltage over the HPPC test at {q.temperature_c:5.1f} degC: "
                      f"RMSE {q.voltage_rmse_mv:.2f} mV, max {q.voltage_max_abs_mv:.1f} mV")
    model = CellModel(spec)
    report.append(f"  10 s pulse resistance at 50 % SoC, 25 degC: {model.pulse_resistance_ohm() * 1e3:.3f} mOhm")
    header = (f"Cell model {datasheet.cell_id}, written by `bms-gateway cell fit` from {', '.join(sources)}.\n"
              "Limits are the datasheet's; OCV and equivalent circuit are fitted (docs/estimation.md).")
    write_spec(spec, request.output, header)
    return spec, report
