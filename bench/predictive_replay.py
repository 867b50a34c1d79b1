"""Replay a measurement log through the estimator and the predictive warnings, row by row as the engine would,
and count the warnings (a fault-free log: every one is false) and how close each statistic came to its threshold."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.predictive_tally import BASELINE_TEMPERATURE_C, BASELINE_VOLTAGE_DEVIATION_V, KINDS, Peaks
from gateway.bms.cell_model import CellModel
from gateway.bms.estimator import EstimatorState, estimates, estimator_step
from gateway.bms.inputs import BoolArray
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.predictive import PredictiveInputs, PredictiveState, predictive_step
from gateway.bms.predictive_settings import PredictiveSettings
from gateway.logs.measurement_log import MeasurementLog


@dataclass
class ReplayTally:
    rows: int
    hours: float
    false: Counter[str] = field(default_factory=Counter)
    baseline_false: int = 0
    peaks: Peaks = field(default_factory=Peaks)


def _rising(previous: dict[str, BoolArray], name: str, now: BoolArray) -> int:
    before = previous.get(name, np.zeros_like(now))
    previous[name] = now
    return int(np.count_nonzero(now & ~before))


def replay_log(model: CellModel, log: MeasurementLog, settings: PredictiveSettings) -> ReplayTally:
    cells, sensors = log.series_cells, log.temperature_c.shape[1]
    p = PackParameters.build([PackLayout("replay", cells, sensors, model)])
    estimator = EstimatorState.empty(p.cell_mask.shape, p.estimator.arrays.tables.pairs,
                                     p.estimator.arrays.nominal_capacity_ah)
    predictive = PredictiveState.empty(p.cell_mask.shape, sensors)
    fresh = np.ones(1, dtype=bool)
    steps_s = np.diff(log.time_s, prepend=log.time_s[:1]).tolist()
    tally = ReplayTally(log.rows, float(log.time_s[-1] - log.time_s[0]) / 3600.0)
    previous: dict[str, BoolArray] = {}
    for k in range(log.rows):
        current, voltage = log.current_a[k : k + 1], log.cell_voltage_v[k : k + 1]
        temperature = log.temperature_c[k : k + 1]
        estimator = estimator_step(estimator, current, voltage, p.cell_temperature_c(temperature), p.cell_mask,
                                   fresh, steps_s[k], p.estimator, p.estimator_settings)
        cell = estimates(estimator, p.estimator)
        inputs = PredictiveInputs(current, voltage, temperature, cell.soc, cell.soc_sigma, fresh)
        predictive, warnings = predictive_step(predictive, inputs, p, steps_s[k], settings)
        for kind in KINDS:
            tally.false[kind] += _rising(previous, kind, getattr(warnings, kind))
        deviation = np.abs(voltage - np.median(voltage)) > BASELINE_VOLTAGE_DEVIATION_V
        tally.baseline_false += _rising(previous, "voltage", deviation)
        tally.baseline_false += _rising(previous, "temperature", temperature > BASELINE_TEMPERATURE_C)
        if k % 10 == 0:
            tally.peaks.update(warnings)
    return tally


def injected_spread(log_path: Path) -> str:
    """What the log's metadata says was injected into its cells."""
    meta = json.loads(Path(str(log_path).removesuffix(".csv.gz") + ".json").read_text())
    spread = meta["pack_spread"]
    resistance = np.asarray(spread["resistance_deviation"])
    capacity = np.asarray(spread["capacity_factor"])
    leaks = [key for key in spread if "leak" in key.lower()]
    highest = int(np.argmax(resistance))
    others = np.delete(resistance, highest)
    return (f"resistance spread {100 * resistance.std():.1f} % (1 sigma) of the 10 s resistance, highest cell "
            f"{highest + 1} at {100 * (resistance[highest] - others.mean()) / (1 + others.mean()):+.1f} % over the "
            f"mean of the others; capacity spread {100 * capacity.std():.1f} %; "
            f"{'leaks: ' + ', '.join(leaks) if leaks else 'no leak'} injected")
