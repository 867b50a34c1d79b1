"""Estimation accuracy and speed: `python3 -m bench.estimation [--quick | --speed-only]`.

For every profile with a truth sidecar under data/cells/ (reference profiles, and held-out ones in
data/cells/<cell>/heldout/ when present) it replays the log through the gateway's BMS step and
prints, beside plain coulomb counting on the same data (nominal capacity, same start):

* SoC RMSE over the run and after 10 min, max |error| after 10 min (self-initialised start);
* time to enter and stay within +-5 and +-2 points when started 20 points wrong (for LFP also
  counted from the moment the true SoC first reaches below 20 % or above 90 % from the plateau);
* end-of-run capacity error (worst cell) and R0 error (worst cell, against the 10 s resistance).

Then the speed figures: one BMS step for 256 packs x 32 cells and for 1 pack x 32 cells (the
per-call overhead that a replay pays on every sample) against the bare estimator step, with the
share of the step spent outside the estimator; and the replay of a 10-hour, 32-cell, 1 Hz log
against coulomb counting it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.estimation_metrics import (
    FloatArray,
    SocErrors,
    Truth,
    first_informative_time_s,
    soc_errors,
    worst_relative_error_pct,
)
from gateway.bms.cell_model import load_cell_model
from gateway.bms.estimator import estimator_step
from gateway.bms.inputs import BmsInputs
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.protection_rules import build_rules
from gateway.bms.step import BmsState, SafetySettings, bms_step
from gateway.domain.states import ContactorState
from gateway.logs.measurement_log import MeasurementLog, read_measurement_log
from gateway.replay.runner import ReplayResult, replay
from gateway.settings import DEFAULT_MAPPINGS_DIR

DATA = Path(__file__).resolve().parent.parent / "data" / "cells"
WRONG_START = 0.20


def profiles(quick: bool) -> list[tuple[str, Path, str]]:
    found = []
    for cell_dir in sorted(DATA.iterdir()):
        if not cell_dir.is_dir():
            continue
        for kind, folder in (("reference", cell_dir), ("held-out", cell_dir / "heldout")):
            for log in sorted(folder.glob("*.truth.csv.gz")) if folder.is_dir() else []:
                found.append((cell_dir.name, Path(str(log).replace(".truth.csv.gz", ".csv.gz")), kind))
    if quick:
        found = [f for f in found if f[1].name in ("udds.csv.gz",) and f[2] == "reference"]
    return found


def coulomb_counting(log: MeasurementLog, start_soc: float, capacity_ah: float) -> FloatArray:
    steps = np.diff(log.time_s, prepend=log.time_s[0]) * np.nan_to_num(log.current_a) / 3600.0
    result: FloatArray = np.clip(start_soc + np.cumsum(steps) / capacity_ah, 0.0, 1.0)
    return result


def column(result: ReplayResult, name: str) -> FloatArray:
    return result.rows[:, result.columns.index(name)]


def per_cell(result: ReplayResult, prefix: str) -> FloatArray:
    return np.array([result.rows[-1, i] for i, name in enumerate(result.columns) if name.startswith(prefix)])


def fmt_time(value: float | None, reference: float = 0.0) -> str:
    if value is None:
        return "never"
    return f"{max(value - reference, 0.0) / 60.0:.1f} min"


def row(name: str, normal: SocErrors, wrong: SocErrors, capacity: str, resistance: str, ref: float) -> str:
    late = f" / {fmt_time(wrong.within_2_s, ref)}" if 0.0 < ref < np.inf else ""
    return (f"| {name} | {normal.rmse_all:.2f} | {normal.rmse_after_10min:.2f} | {normal.max_after_10min:.2f} | "
            f"{fmt_time(wrong.within_5_s)} | {fmt_time(wrong.within_2_s)}{late} | {capacity} | {resistance} |")


def accuracy(quick: bool) -> None:
    print("| profile | estimator | RMSE all (pp) | RMSE >10 min | max >10 min | 20 pp wrong: into +-5 | "
          "into +-2 (LFP: / after first reaching SoC < 20 % or > 90 % from the plateau) | "
          "capacity error (worst cell) | R0 error (worst cell) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cell, log_path, kind in profiles(quick):
        model = load_cell_model(DEFAULT_MAPPINGS_DIR, cell)
        log = read_measurement_log(log_path)
        truth = Truth.load(log_path)
        started = time.perf_counter()
        normal = replay(model, log)
        true_start = float(truth.pack_soc[0])
        wrong_start = true_start - WRONG_START if true_start > 0.5 else true_start + WRONG_START
        wrong = replay(model, log, initial_soc=wrong_start)
        elapsed = time.perf_counter() - started
        t = log.time_s
        errors = soc_errors(t, column(normal, "soc"), truth)
        wrong_errors = soc_errors(t, column(wrong, "soc"), truth)
        capacity = worst_relative_error_pct(per_cell(normal, "capacity_ah_"), truth.capacity_ah)
        resistance = worst_relative_error_pct(per_cell(normal, "r0_ohm_"), truth.resistance_10s_ohm)
        reference = first_informative_time_s(truth) if model.spec.chemistry == "lfp" else 0.0
        name = f"{cell} {log_path.name.removesuffix('.csv.gz')} ({kind}, {log.series_cells} cell(s))"
        print(row(name + " | EKF", errors, wrong_errors, f"{capacity:+.2f} %", f"{resistance:+.1f} %", reference))
        start = float(column(normal, "soc")[0])
        cc = soc_errors(t, coulomb_counting(log, start, model.nominal_capacity_ah), truth)
        cc_wrong = soc_errors(t, coulomb_counting(log, wrong_start, model.nominal_capacity_ah), truth)
        nominal_error = worst_relative_error_pct(np.full(len(truth.capacity_ah), model.nominal_capacity_ah),
                                                 truth.capacity_ah)
        print(row(name + " | coulomb counting", cc, cc_wrong, f"{nominal_error:+.2f} % (nominal)", "-",
                  reference))
        print(f"<!-- {name}: two replays in {elapsed:.1f} s -->")


def ten_hour_log(cells: int = 32, hours: float = 10.0) -> MeasurementLog:
    """A 10-hour, 32-cell, 1 Hz log: the nmc-200ah udds cycle repeated, cells offset by a few mV."""
    source = read_measurement_log(DATA / "nmc-200ah" / "udds.csv.gz")
    rows = int(hours * 3600)
    index = np.arange(rows) % source.rows
    offsets = np.linspace(-0.004, 0.004, cells)
    voltage = source.cell_voltage_v[index, :1] + offsets[None, :]
    return MeasurementLog(Path("synthetic-10h"), np.arange(rows, dtype=np.float64), source.current_a[index],
                          voltage, np.repeat(source.temperature_c[index, :1], cells, axis=1))


@dataclass(frozen=True)
class StepTimings:
    step_ms: float  # median of one full `bms_step`
    estimator_ms: float  # median of the bare `estimator_step` inside it

    @property
    def outside_estimator_ms(self) -> float:
        return self.step_ms - self.estimator_ms


def bms_step_timings(packs: int, cells: int, repeats: int) -> StepTimings:
    """One full `bms_step` and the bare `estimator_step` inside it, timed alternately on the same state."""
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    parameters = PackParameters.build([PackLayout(f"p{i}", cells, cells, model) for i in range(packs)])
    rules = build_rules(parameters, 1.0, 0.1)
    rng = np.random.default_rng(1)
    inputs = BmsInputs(
        cell_voltage_v=3.7 + 0.01 * rng.standard_normal((packs, cells)),
        temperature_c=np.full((packs, cells), 25.0), pack_voltage_v=np.full(packs, 3.7 * cells),
        pack_current_a=np.full(packs, -80.0), contactor_state=np.full(packs, int(ContactorState.CLOSED)),
        pack_fault_flags=np.zeros(packs, dtype=np.int64), data_age_s=np.zeros(packs),
        temperature_age_s=np.zeros(packs))
    safety = SafetySettings.of(rules)
    state, _ = bms_step(BmsState.empty(parameters, rules), inputs, parameters, rules, 0.1, safety=safety)
    step_times, bare_times = [], []
    cell_temperature = parameters.cell_temperature_c(inputs.temperature_c)
    for _ in range(repeats):
        started = time.perf_counter()
        state, _ = bms_step(state, inputs, parameters, rules, 0.1, safety=safety)
        step_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        estimator_step(state.estimator, inputs.pack_current_a, inputs.cell_voltage_v, cell_temperature,
                       parameters.cell_mask, np.ones(packs, dtype=bool), 0.1, parameters.estimator,
                       parameters.estimator_settings)
        bare_times.append(time.perf_counter() - started)
    return StepTimings(statistics.median(step_times) * 1e3, statistics.median(bare_times) * 1e3)


def step_row(name: str, timings: StepTimings) -> str:
    outside = timings.outside_estimator_ms
    return (f"| BMS step, {name} | median {timings.step_ms:.3f} ms, of which outside the estimator {outside:.3f} ms "
            f"({100.0 * outside / timings.step_ms:.0f} %) | bare estimator step median {timings.estimator_ms:.3f} ms |")


def speed() -> None:
    print(step_row("256 packs x 32 cells", bms_step_timings(256, 32, repeats=100)))
    print(step_row("1 pack x 32 cells", bms_step_timings(1, 32, repeats=2000)))
    log = ten_hour_log()
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    started = time.perf_counter()
    replay(model, log)
    replay_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(3):
        coulomb_counting(log, 0.9, 200.0)
    baseline_s = (time.perf_counter() - started) / 3
    print(f"| replay, 10 h x 32 cells at 1 Hz ({log.rows} samples) | {replay_s:.1f} s "
          f"({replay_s / log.rows * 1e3:.2f} ms per sample) | "
          f"coulomb counting the same samples {baseline_s * 1e3:.1f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="only the udds reference profiles")
    sections = parser.add_mutually_exclusive_group()
    sections.add_argument("--skip-speed", action="store_true", help="only the accuracy section")
    sections.add_argument("--speed-only", action="store_true", help="only the speed section")
    arguments = parser.parse_args()
    if not arguments.speed_only:
        accuracy(arguments.quick)
    if not arguments.skip_speed:
        if not arguments.speed_only:
            print()
        print("| speed | figure | baseline in the same run |")
        print("|---|---|---|")
        speed()


if __name__ == "__main__":
    main()
