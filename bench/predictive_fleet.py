"""Run simulated packs through the gateway's estimator and predictive warnings, all packs in one array per tick,
and tally every warning: on the fault's own cell or sensor (a detection) or anywhere else (a false warning)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bench.predictive_sim import CELLS, SENSORS, Duty, FloatArray, Scenario, SimulatedPack
from bench.predictive_tally import BASELINE_TEMPERATURE_C, BASELINE_VOLTAGE_DEVIATION_V, KINDS, Peaks
from gateway.bms.cell_model import CellModel
from gateway.bms.estimator import EstimatorState, estimates, estimator_step
from gateway.bms.inputs import BoolArray
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.predictive import PredictiveInputs, PredictiveState, PredictiveWarnings, predictive_step
from gateway.bms.predictive_settings import PredictiveSettings

TICK_S = 1.0
PEAK_EVERY_TICKS = 10
# the warning each fault should raise
EXPECTED = {"contact_resistance": "resistance_rise", "hot_cell": "local_heating", "leak": "soc_drift",
            "unstable_current": "unstable_current"}


@dataclass
class Detection:
    time_s: float  # since the fault started
    size: str  # the fault's size then


@dataclass
class PackTally:
    scenario: Scenario
    detected: dict[str, Detection] = field(default_factory=dict)  # by warning kind, on the fault's element
    related: dict[str, float] = field(default_factory=dict)  # other kinds raised on the fault's element
    false: Counter[str] = field(default_factory=Counter)  # warning episodes anywhere else, by kind
    baseline_detected_s: float | None = None
    baseline_false: int = 0
    trace: list[tuple[float, float, float]] = field(default_factory=list)  # (time, fault size, statistic)


class Fleet:
    def __init__(self, scenarios: list[Scenario], cell: CellModel, settings: PredictiveSettings) -> None:
        self.packs = [SimulatedPack(s, cell, i) for i, s in enumerate(scenarios)]
        self.parameters = PackParameters.build([PackLayout(s.name, CELLS, SENSORS, cell) for s in scenarios])
        p = self.parameters
        self.estimator = EstimatorState.empty(p.cell_mask.shape, p.estimator.arrays.tables.pairs,
                                              p.estimator.arrays.nominal_capacity_ah)
        self.predictive = PredictiveState.empty(p.cell_mask.shape, SENSORS)
        self.settings = settings
        self.tallies = [PackTally(s) for s in scenarios]
        self.time_s = 0.0
        self._previous: dict[str, BoolArray] = {}
        self.fault_free_peaks = {duty: Peaks() for duty in Duty}
        self._fault_free_rows = {
            duty: np.asarray([i for i, s in enumerate(scenarios) if not s.faults and s.duty is duty], dtype=np.intp)
            for duty in Duty}

    def run(self, hours: float, trace_every_s: float = 1800.0) -> list[PackTally]:
        for tick in range(round(hours * 3600.0 / TICK_S)):
            warnings, voltage, temperature = self.tick()
            self._tally(warnings, voltage, temperature)
            if tick % round(trace_every_s / TICK_S) == 0:
                self._trace(warnings)
            if tick % PEAK_EVERY_TICKS == 0:
                for duty, rows in self._fault_free_rows.items():
                    if rows.size:
                        self.fault_free_peaks[duty].update(warnings, rows)
        return self.tallies

    def tick(self) -> tuple[PredictiveWarnings, FloatArray, FloatArray]:
        readings = []
        for pack in self.packs:
            pack.step(self.time_s, TICK_S)
            readings.append(pack.sensors.read(pack.model))
        self.time_s += TICK_S
        current = np.array([r[0] for r in readings])
        voltage = np.stack([r[1] for r in readings])
        temperature = np.stack([r[2] for r in readings])
        p = self.parameters
        fresh = np.ones(len(self.packs), dtype=bool)
        self.estimator = estimator_step(self.estimator, current, voltage, p.cell_temperature_c(temperature),
                                        p.cell_mask, fresh, TICK_S, p.estimator, p.estimator_settings)
        cells = estimates(self.estimator, p.estimator)
        inputs = PredictiveInputs(current, voltage, temperature, cells.soc, cells.soc_sigma, fresh)
        self.predictive, warnings = predictive_step(self.predictive, inputs, p, TICK_S, self.settings)
        return warnings, voltage, temperature

    def _faulty(self, index: int, kind: str, element: int) -> str | None:
        """The started fault whose cell (or sensor, or pack) this warning's element is, if any."""
        pack = self.packs[index]
        for fault in pack.scenario.faults:
            if self.time_s < fault.start_s:
                continue
            if fault.kind == "unstable_current" or kind == "unstable_current":
                hit = fault.kind == kind
            elif kind == "local_heating":
                hit = pack.sensor_of_cell(fault.cell - 1) == element
            else:
                hit = fault.cell - 1 == element
            if hit:
                return fault.kind
        return None

    def _rising(self, name: str, now: BoolArray) -> list[tuple[int, int]]:
        previous = self._previous.get(name)
        self._previous[name] = now
        rising = now if previous is None else now & ~previous
        if not rising.any():
            return []
        if rising.ndim == 1:
            return [(int(p), 0) for p in np.flatnonzero(rising)]
        return [(int(p), int(e)) for p, e in np.argwhere(rising)]

    def _tally(self, warnings: PredictiveWarnings, voltage: FloatArray, temperature: FloatArray) -> None:
        for kind in KINDS:
            for index, element in self._rising(kind, getattr(warnings, kind)):
                tally = self.tallies[index]
                fault = self._faulty(index, kind, element)
                if fault is None:
                    tally.false[kind] += 1
                elif EXPECTED.get(fault) == kind:
                    if kind not in tally.detected:
                        tally.detected[kind] = Detection(self._since_start(index, fault), self._size(index, fault))
                else:
                    tally.related.setdefault(kind, self._since_start(index, fault))
        deviation = np.abs(voltage - np.median(voltage, axis=1, keepdims=True)) > BASELINE_VOLTAGE_DEVIATION_V
        hot = temperature > BASELINE_TEMPERATURE_C
        for name, flags, kind in (("baseline_voltage", deviation, "resistance_rise"),
                                  ("baseline_temperature", hot, "local_heating")):
            for index, element in self._rising(name, flags):
                tally = self.tallies[index]
                faulty = self._faulty(index, kind, element)
                if faulty is None:
                    tally.baseline_false += 1
                elif tally.baseline_detected_s is None:
                    tally.baseline_detected_s = self._since_start(index, faulty)

    def _fault(self, index: int, kind: str) -> tuple[int, float, float]:
        """(0-based cell, start, magnitude) of the pack's fault of this kind."""
        fault = next(f for f in self.packs[index].scenario.faults if f.kind == kind)
        return fault.cell - 1, fault.start_s, fault.magnitude

    def _since_start(self, index: int, kind: str) -> float:
        return self.time_s - self._fault(index, kind)[1]

    def _size(self, index: int, kind: str) -> str:
        model = self.packs[index].model
        cell, start, magnitude = self._fault(index, kind)
        if kind == "contact_resistance":
            return f"R0 +{100.0 * model.extra_resistance_ohm[cell] / model.r0_ohm[cell]:.0f} %"
        if kind == "hot_cell":
            others = np.delete(model.temperature_c, cell)
            return f"+{model.temperature_c[cell] - float(np.mean(others)):.1f} degC over the mean of the others"
        if kind == "leak":
            lost = model.leak_a[cell] * (self.time_s - start) / 3600.0
            return f"{lost:.2f} Ah lost ({100.0 * lost / model.capacity_ah[cell]:.2f} % SoC)"
        return f"+-{0.25 * magnitude:.2f} C square wave, period 2 s"

    def _trace(self, warnings: PredictiveWarnings) -> None:
        for index, tally in enumerate(self.tallies):
            model = self.packs[index].model
            for fault in tally.scenario.faults:
                cell = fault.cell - 1
                if fault.kind == "contact_resistance":
                    tally.trace.append((self.time_s, 100.0 * model.extra_resistance_ohm[cell] / model.r0_ohm[cell],
                                        100.0 * float(warnings.resistance_excess[index, cell])))
                elif fault.kind == "leak":
                    tally.trace.append((self.time_s, 1000.0 * model.leak_a[cell] / model.cell.nominal_capacity_ah,
                                        1000.0 * float(warnings.leak_c_rate[index, cell])))
