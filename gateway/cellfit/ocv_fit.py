"""OCV-SoC curve of one temperature from a slow (C/20) OCV test.

The test (data/cells/FORMAT.md): from a known SoC, CC-CV charge to the upper limit, rest, C/20
discharge to the lower limit, rest, C/20 charge to the upper limit. The OCV is the mean of the
discharge and charge curves at equal SoC (their overpotentials cancel), pinned to the rested
voltages measured after each rest and to the definition OCV(SoC = 1) = the upper voltage limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.cellfit.segments import FloatArray, Step, charge_throughput_ah, split_steps
from gateway.errors import LogError
from gateway.logs.measurement_log import MeasurementLog

SETTLE_SOC = 0.005  # skip this much SoC at the start of each slow curve (relaxation transient)
SOC_GRID = np.round(np.linspace(0.0, 1.0, 101), 4)


@dataclass(frozen=True)
class OcvTest:
    temperature_c: float
    capacity_ah: float  # charge of the C/20 discharge down to SoC 0 implied by the start SoC
    soc_grid: FloatArray
    ocv_v: FloatArray

    def at(self, soc: FloatArray) -> FloatArray:
        return np.interp(soc, self.soc_grid, self.ocv_v)


def _slow_steps(log: MeasurementLog) -> tuple[Step, Step, Step, Step | None]:
    steps = split_steps(log.current_a)
    discharges = [s for s in steps if s.sign < 0]
    if not discharges:
        raise LogError(log.path, "current_a", "no discharge step found in the OCV test",
                       "give an OCV test: charge, rest, slow discharge, rest, slow charge")
    discharge = max(discharges, key=lambda s: s.stop - s.start)
    index = steps.index(discharge)
    if index < 1 or steps[index - 1].sign != 0 or index + 1 >= len(steps) or steps[index + 1].sign != 0:
        raise LogError(log.path, "current_a", "the slow discharge is not between two rests",
                       "rest the cell before and after the slow discharge")
    charge = steps[index + 2] if index + 2 < len(steps) and steps[index + 2].sign > 0 else None
    return steps[index - 1], discharge, steps[index + 1], charge


def capacity_from_test(log: MeasurementLog, start_soc: float) -> float:
    """Capacity such that the slow discharge ends at SoC 0 (the definition of SoC 0)."""
    _, discharge, _, _ = _slow_steps(log)
    throughput = charge_throughput_ah(log.time_s, log.current_a)
    end_ah = float(throughput[discharge.stop - 1])
    if end_ah >= 0.0:
        raise LogError(log.path, "current_a", "the slow discharge ends above the start SoC",
                       "start the OCV test from a partial SoC (e.g. 0.5) as the procedure says")
    return -end_ah / start_soc


def _strictly_increasing(values: FloatArray) -> FloatArray:
    result = np.maximum.accumulate(values)
    step = 1e-6
    for k in range(1, len(result)):
        if result[k] <= result[k - 1]:
            result[k] = result[k - 1] + step
    return result


def fit_ocv(log: MeasurementLog, start_soc: float, capacity_ah: float, max_voltage_v: float) -> OcvTest:
    rest_top, discharge, rest_bottom, charge = _slow_steps(log)
    soc = start_soc + charge_throughput_ah(log.time_s, log.current_a) / capacity_ah
    voltage = log.cell_voltage_v[:, 0]
    d_soc, d_v = soc[discharge.rows][::-1], voltage[discharge.rows][::-1]  # ascending SoC
    d_keep = d_soc < d_soc[-1] - SETTLE_SOC
    points_soc = [float(soc[rest_top.stop - 1]), float(soc[rest_bottom.stop - 1]), 1.0]
    points_v = [float(voltage[rest_top.stop - 1]), float(voltage[rest_bottom.stop - 1]), max_voltage_v]
    if charge is not None:
        c_soc, c_v = soc[charge.rows], voltage[charge.rows]
        c_keep = c_soc > c_soc[0] + SETTLE_SOC
        low, high = float(c_soc[c_keep][0]), min(float(c_soc[-1]), float(d_soc[d_keep][-1]))
        inside = (d_soc >= low) & (d_soc <= high) & d_keep
        mean_v = 0.5 * (d_v[inside] + np.interp(d_soc[inside], c_soc[c_keep], c_v[c_keep]))
        points_soc += d_soc[inside].tolist()
        points_v += mean_v.tolist()
    else:
        raise LogError(log.path, "current_a", "no slow charge after the discharge rest",
                       "end the OCV test with a slow charge so the overpotential can be cancelled")
    order = np.argsort(points_soc)
    xs, ys = np.asarray(points_soc)[order], np.asarray(points_v)[order]
    ocv = _strictly_increasing(np.interp(SOC_GRID, xs, ys))
    temperature = float(np.mean(log.temperature_c[discharge.rows]))
    return OcvTest(temperature, capacity_ah, SOC_GRID.copy(), ocv)
