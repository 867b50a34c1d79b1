"""Predictive warnings: detection delay, fault size at detection and false warnings: `python3 -m bench.predictive`.

1. Simulated 32-cell packs (8 sensors), 8 h each at 1 s ticks, read through the FORMAT.md sensor model, in four
   duties (drive: the simulator's drive cycle with 2 C pulses until the emptiest cell is at 15 %, a 0.5 C charge,
   again; light drive: the same at half the current; drive+park: the drive with 3 h parked after each charge;
   idle): fault-free with three seeds each, and
   with a contact resistance ramping to +50 % of R0 over the run, a hot cell (+10 degC from 1 h to 2 h), a leak of
   C/1000, and an unstable current (+-0.25 C square wave, 2 s period, from 1 h for 30 min).
2. The reference pack log data/cells/nmc-200ah/pack16s_udds.csv.gz (16 cells, fault-free) replayed row by row.
3. Speed of `predictive_step` for 256 packs x 32 cells x 8 sensors at 10 Hz.

Beside every figure, a fixed-threshold baseline on raw values in the same run: any cell voltage more than 50 mV
from the pack's median, any sensor above 55 degC.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from bench.predictive_fleet import Fleet, PackTally
from bench.predictive_replay import ReplayTally, injected_spread, replay_log
from bench.predictive_sim import Duty, Scenario
from bench.predictive_tally import KINDS, Peaks
from gateway.bms.cell_model import load_cell_model
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.predictive import PredictiveInputs, PredictiveState, predictive_step
from gateway.bms.predictive_settings import PredictiveSettings
from gateway.logs.measurement_log import read_measurement_log
from gateway.settings import DEFAULT_MAPPINGS_DIR, SimulatedFault

DATA = Path(__file__).resolve().parent.parent / "data" / "cells"
REFERENCE_LOG = DATA / "nmc-200ah" / "pack16s_udds.csv.gz"
HOURS = 8.0
FAULT_FREE_SEEDS = (1, 2, 3)
LABELS = {"resistance_rise": "resistance rise", "local_heating": "local heating", "soc_drift": "SoC drift (leak)",
          "unstable_current": "unstable current"}


def scenarios(hours: float) -> list[Scenario]:
    ramp = SimulatedFault(kind="contact_resistance", cell=7, magnitude=0.5, duration_s=hours * 3600.0)
    hot = SimulatedFault(kind="hot_cell", cell=10, start_s=3600.0, duration_s=3600.0)  # cell 10 carries sensor 3
    leak = SimulatedFault(kind="leak", cell=12)
    unstable = SimulatedFault(kind="unstable_current", start_s=3600.0, duration_s=1800.0)
    fault_free = [Scenario(f"fault-free {duty.value} seed {seed}", duty, seed) for duty in Duty
                  for seed in FAULT_FREE_SEEDS]
    return [
        *fault_free,
        Scenario("contact resistance +50 % R0 ramp", Duty.DRIVE, 11, (ramp,)),
        Scenario("contact resistance +50 % R0 ramp", Duty.LIGHT_DRIVE, 19, (ramp,)),
        Scenario("contact resistance +50 % R0 ramp", Duty.DRIVE_PARK, 12, (ramp,)),
        Scenario("hot cell +10 degC", Duty.DRIVE, 13, (hot,)),
        Scenario("hot cell +10 degC", Duty.IDLE, 14, (hot,)),
        Scenario("leak C/1000", Duty.IDLE, 15, (leak,)),
        Scenario("leak C/1000", Duty.DRIVE_PARK, 16, (leak,)),
        Scenario("unstable current +-0.25 C", Duty.DRIVE, 17, (unstable,)),
        Scenario("unstable current +-0.25 C", Duty.IDLE, 18, (unstable,)),
    ]


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{seconds / 60.0:.1f} min" if seconds < 5400.0 else f"{seconds / 3600.0:.2f} h"


def false_text(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return "0" if total == 0 else f"{total} ({', '.join(f'{LABELS[k]} {n}' for k, n in counts.items() if n)})"


def fault_rows(tallies: list[PackTally]) -> None:
    print(f"| scenario ({HOURS:.0f} h, 32 cells) | duty | warning | detected after | fault size then | "
          "other warnings on the faulty cell | false warnings | baseline: detected after | baseline: false |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tally in tallies:
        faults = tally.scenario.faults
        if not faults:
            continue
        expected = {"contact_resistance": "resistance_rise", "hot_cell": "local_heating", "leak": "soc_drift",
                    "unstable_current": "unstable_current"}[faults[0].kind]
        detection = tally.detected.get(expected)
        related = ", ".join(f"{LABELS[k]} after {minutes(s)}" for k, s in tally.related.items()) or "-"
        print(f"| {tally.scenario.name} | {tally.scenario.duty.value} | {LABELS[expected]} | "
              f"{minutes(detection.time_s if detection else None)} | {detection.size if detection else '-'} | "
              f"{related} | {false_text(tally.false)} | {minutes(tally.baseline_detected_s)} | "
              f"{tally.baseline_false} |")


def fault_free_rows(tallies: list[PackTally], peaks: dict[Duty, Peaks]) -> None:
    print(f"| fault-free runs ({HOURS:.0f} h each, 32 cells) | pack-hours | "
          + " | ".join(f"false: {LABELS[k]}" for k in KINDS)
          + " | baseline false | peak resistance excess | peak heating excess | peak leak estimate, its z | "
          "peak reversal rate / threshold |")
    print("|---|---|" + "---|" * len(KINDS) + "---|---|---|---|---|")
    for duty in Duty:
        chosen = [t for t in tallies if not t.scenario.faults and t.scenario.duty is duty]
        falses = [sum(t.false[k] for t in chosen) for k in KINDS]
        baseline = sum(t.baseline_false for t in chosen)
        print(f"| {duty.value}, seeds {', '.join(str(t.scenario.seed) for t in chosen)} | {HOURS * len(chosen):.0f} | "
              + " | ".join(str(f) for f in falses) + f" | {baseline} | {peak_text(peaks[duty])} |")


def peak_text(peaks: Peaks) -> str:
    def value(x: float, scale: float, unit: str) -> str:
        return f"{x * scale:+.1f}{unit}" if np.isfinite(x) else "unknown"

    leak = value(peaks.leak_c_rate, 1000.0, " C/1000")
    if np.isfinite(peaks.leak_z):
        leak += f", z {peaks.leak_z:.1f}"
    return (f"{value(peaks.resistance_excess, 100.0, ' %')} | {value(peaks.heating_excess_c, 1.0, ' degC')} | "
            f"{leak} | {peaks.reversal_share:.2f}")


def replay_rows(tally: ReplayTally) -> None:
    print("| reference log | hours | " + " | ".join(f"false: {LABELS[k]}" for k in KINDS)
          + " | baseline false | peak resistance excess (cell) | peak heating excess | peak leak estimate, its z | "
          "peak reversal rate / threshold |")
    print("|---|---|" + "---|" * len(KINDS) + "---|---|---|---|---|")
    p = tally.peaks
    print(f"| {REFERENCE_LOG.name} ({tally.rows} rows) | {tally.hours:.1f} | "
          + " | ".join(str(tally.false[k]) for k in KINDS)
          + f" | {tally.baseline_false} | {100.0 * p.resistance_excess:+.1f} % (cell {p.resistance_cell}) | "
          + " | ".join(peak_text(p).split(" | ")[1:]) + " |")


def step_timings(driving: bool, seconds: float = 300.0) -> dict[str, list[float]]:
    """Microseconds per `predictive_step` for 256 packs x 32 cells x 8 sensors at 10 Hz, by what the tick evaluated.

    Driving: every pack's current steps by 0.25 C once a second, a tenth of the packs on each tick. Resting: no
    current, settled from the start (the drift sampler's full path)."""
    packs, cells, sensors, dt_s = 256, 32, 8, 0.1
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    parameters = PackParameters.build([PackLayout(f"p{i}", cells, sensors, model) for i in range(packs)])
    base = PredictiveSettings()
    settings = base if driving else PredictiveSettings(drift=type(base.drift)(settle_s=0.0))
    rng = np.random.default_rng(1)
    state = PredictiveState.empty((packs, cells), sensors)
    fresh = np.ones(packs, dtype=bool)
    times: dict[str, list[float]] = {"plain": [], "heating": [], "resistance": [], "drift": [], "all": []}
    stagger = np.arange(packs)
    for tick in range(round(seconds / dt_s)):
        current = np.where((tick + stagger) // 10 % 2 == 0, -100.0, -50.0) if driving else np.full(packs, 0.5)
        inputs = PredictiveInputs(current, 3.7 + 0.002 * rng.standard_normal((packs, cells)),
                                  25.0 + 0.3 * rng.standard_normal((packs, sensors)),
                                  0.6 + 0.001 * rng.standard_normal((packs, cells)), np.full((packs, cells), 0.02),
                                  fresh)
        started = time.perf_counter()
        new, _ = predictive_step(state, inputs, parameters, dt_s, settings)
        elapsed = (time.perf_counter() - started) * 1e6
        kind = ("heating" if new.last_heating_s != state.last_heating_s else
                "resistance" if new.last_resistance_s != state.last_resistance_s else
                "drift" if new.last_drift_s != state.last_drift_s else "plain")
        times[kind].append(elapsed)
        times["all"].append(elapsed)
        state = new
    return times


def speed() -> None:
    print("| predictive_step, 256 packs x 32 cells x 8 sensors, 10 Hz | plain tick (median) | heating tick, every "
          "1 s | resistance tick, every 10 s | drift tick, every 60 s | mean over all ticks |")
    print("|---|---|---|---|---|---|")
    for name, driving in (("driving (each pack steps once a second)", True), ("resting (drift sampled)", False)):
        times = step_timings(driving)
        cells = [f"{statistics.median(times[k]):.0f} us" for k in ("plain", "heating", "resistance", "drift")]
        print(f"| {name} | " + " | ".join(cells) + f" | {statistics.fmean(times['all']):.0f} us |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=HOURS, help="simulated hours per pack (default 8)")
    arguments = parser.parse_args()
    settings = PredictiveSettings()
    cell = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    started = time.perf_counter()
    fleet = Fleet(scenarios(arguments.hours), cell, settings)
    tallies = fleet.run(arguments.hours)
    fleet_s = time.perf_counter() - started
    fault_rows(tallies)
    print()
    fault_free_rows(tallies, fleet.fault_free_peaks)
    print(f"<!-- {len(tallies)} packs x {arguments.hours:.0f} h simulated in {fleet_s:.0f} s -->")
    print()
    started = time.perf_counter()
    replay = replay_log(cell, read_measurement_log(REFERENCE_LOG), settings)
    replay_rows(replay)
    print(f"<!-- {REFERENCE_LOG.name}: {injected_spread(REFERENCE_LOG)}; replayed in "
          f"{time.perf_counter() - started:.0f} s -->")
    print()
    speed()


if __name__ == "__main__":
    main()
