"""Predictive warnings on synthetic packs: each raises on its fault, on the right cell, and stays quiet without."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from gateway.bms.inputs import FloatArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.predictive import (
    PredictiveInputs,
    PredictiveState,
    PredictiveWarnings,
    predictive_step,
)
from gateway.bms.predictive_settings import PredictiveSettings
from gateway.bms.predictive_stats import held_for, peer_median
from tests.bms.helpers import parameters

CELLS, SENSORS = 16, 8
CAPACITY_AH = 200.0
R0_OHM = 0.0006
Inputs = Callable[[int, float], PredictiveInputs]  # (tick, time) -> inputs


def run(p: PackParameters, make: Inputs, seconds: float, dt_s: float,
        settings: PredictiveSettings | None = None) -> list[tuple[float, PredictiveWarnings]]:
    settings = settings or PredictiveSettings()
    state = PredictiveState.empty(p.cell_mask.shape, p.sensor_mask.shape[1])
    history = []
    for tick in range(round(seconds / dt_s)):
        time_s = (tick + 1) * dt_s
        state, warnings = predictive_step(state, make(tick, time_s), p, dt_s, settings)
        history.append((time_s, warnings))
    return history


def first_warning(history: list[tuple[float, PredictiveWarnings]], kind: str) -> tuple[float, np.ndarray] | None:
    for time_s, warnings in history:
        raised = getattr(warnings, kind)
        if raised.any():
            return time_s, np.argwhere(raised)
    return None


def inputs(p: PackParameters, *, current_a: float | FloatArray = 0.0, voltage_v: FloatArray | None = None,
           temperature_c: FloatArray | None = None, soc: FloatArray | None = None,
           fresh: bool = True) -> PredictiveInputs:
    packs, cells = p.cell_mask.shape
    sensors = p.sensor_mask.shape[1]
    return PredictiveInputs(
        pack_current_a=np.broadcast_to(np.asarray(current_a, dtype=np.float64), (packs,)).copy(),
        cell_voltage_v=np.full((packs, cells), 3.7) if voltage_v is None else voltage_v,
        temperature_c=np.full((packs, sensors), 25.0) if temperature_c is None else temperature_c,
        cell_soc=np.full((packs, cells), 0.6) if soc is None else soc,
        cell_soc_sigma=np.full((packs, cells), 0.02),
        fresh=np.full(packs, fresh),
    )


# --- resistance rise ---------------------------------------------------------------------------------------------


def stepping_pack(p: PackParameters, resistance_ohm: FloatArray, seed: int = 1) -> Inputs:
    """Current alternating between -150 A and -50 A every 10 s; each cell's voltage follows its resistance."""
    rng = np.random.default_rng(seed)

    def make(tick: int, _: float) -> PredictiveInputs:
        current = -150.0 if (tick // 10) % 2 else -50.0
        voltage = 3.7 + current * resistance_ohm + rng.normal(0.0, 0.002, resistance_ohm.shape)
        return inputs(p, current_a=current, voltage_v=np.round(voltage, 3))

    return make


def test_a_cell_with_a_third_more_resistance_warns_on_that_cell_only() -> None:
    p = parameters(packs=2, cells=CELLS, sensors=SENSORS)
    spread = np.random.default_rng(2).uniform(-0.03, 0.03, (2, CELLS))
    resistance = R0_OHM * (1.0 + spread)
    resistance[1, 5] *= 1.3
    history = run(p, stepping_pack(p, resistance), 1800.0, 1.0)
    found = first_warning(history, "resistance_rise")
    assert found is not None
    time_s, where = found
    assert where.tolist() == [[1, 5]]
    assert time_s <= 900.0
    excess = history[-1][1].resistance_excess
    assert excess[1, 5] == pytest.approx(0.3 * R0_OHM / p.estimator.reference_pulse_resistance_ohm[1, 5], abs=0.03)
    assert np.nanmax(np.abs(np.delete(excess[1], 5))) < 0.05


def test_manufacturing_spread_and_a_pack_at_rest_raise_no_resistance_warning() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    resistance = R0_OHM * (1.0 + np.random.default_rng(3).uniform(-0.05, 0.05, (1, CELLS)))
    assert first_warning(run(p, stepping_pack(p, resistance), 3600.0, 1.0), "resistance_rise") is None
    resting = run(p, lambda tick, t: inputs(p), 600.0, 1.0)
    assert np.isnan(resting[-1][1].resistance_excess).all()  # no steps, no verdict


def test_a_cell_whose_voltage_is_unknown_is_never_flagged() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    resistance = np.full((1, CELLS), R0_OHM)
    resistance[0, 2] *= 1.5
    base = stepping_pack(p, resistance)

    def make(tick: int, time_s: float) -> PredictiveInputs:
        x = base(tick, time_s)
        voltage = x.cell_voltage_v.copy()
        voltage[0, 2] = np.nan
        return replace(x, cell_voltage_v=voltage)

    history = run(p, make, 1800.0, 1.0)
    assert first_warning(history, "resistance_rise") is None
    assert np.isnan(history[-1][1].resistance_excess[0, 2])


# --- local heating -----------------------------------------------------------------------------------------------


def heated(p: PackParameters, hot_sensor: int | None, rise_c: float, seed: int = 4) -> Inputs:
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-1.0, 1.0, p.sensor_mask.shape)

    def make(_: int, time_s: float) -> PredictiveInputs:
        temperature = 30.0 + offsets + rng.normal(0.0, 0.3, offsets.shape)
        if hot_sensor is not None:
            temperature[0, hot_sensor] += rise_c * (1.0 - np.exp(-time_s / 60.0))
        return inputs(p, current_a=-100.0, temperature_c=np.round(temperature, 1))

    return make


def test_a_sensor_ten_degrees_above_the_others_warns_within_five_minutes() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    found = first_warning(run(p, heated(p, 3, 10.0), 900.0, 1.0), "local_heating")
    assert found is not None
    assert found[1].tolist() == [[0, 3]]
    assert found[0] <= 300.0


def test_sensor_offsets_and_a_common_warm_up_raise_no_heating_warning() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    assert first_warning(run(p, heated(p, None, 0.0), 1800.0, 1.0), "local_heating") is None


def test_heating_needs_known_peers() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=3)  # two others: fewer than min_peers
    history = run(p, heated(p, 0, 20.0), 900.0, 1.0)
    assert first_warning(history, "local_heating") is None
    assert np.isnan(history[-1][1].heating_excess_c).all()


# --- SoC drift (leak) --------------------------------------------------------------------------------------------


def drifting(p: PackParameters, leak_cell: int | None, leak_c_rate: float, current_a: float = 0.0,
             seed: int = 5) -> Inputs:
    """Cell SoC estimates with fixed offsets and noise; one cell losing leak_c_rate (SoC per hour)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0.0, 0.003, p.cell_mask.shape)

    def make(_: int, time_s: float) -> PredictiveInputs:
        soc = 0.6 + offsets + rng.normal(0.0, 2e-4, offsets.shape)
        if leak_cell is not None:
            soc[0, leak_cell] -= leak_c_rate * time_s / 3600.0
        return inputs(p, current_a=current_a, soc=soc)

    return make


def test_a_leak_of_c_over_1000_at_rest_warns_on_its_cell_within_six_hours() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    history = run(p, drifting(p, 9, 1e-3), 6 * 3600.0, 10.0)
    found = first_warning(history, "soc_drift")
    assert found is not None
    assert found[1].tolist() == [[0, 9]]
    assert found[0] < 3 * 3600.0
    assert history[-1][1].leak_c_rate[0, 9] == pytest.approx(1e-3, rel=0.1)


def test_cells_that_keep_their_distance_raise_no_drift_warning() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    history = run(p, drifting(p, None, 0.0), 8 * 3600.0, 10.0)
    assert first_warning(history, "soc_drift") is None
    assert np.isfinite(history[-1][1].leak_c_rate).all()  # a verdict was reached: it is quiet, not blind


def test_drift_under_load_is_not_taken_for_a_leak() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    history = run(p, drifting(p, 9, 3e-3, current_a=-40.0), 6 * 3600.0, 10.0)
    assert first_warning(history, "soc_drift") is None
    assert np.isnan(history[-1][1].leak_c_rate).all()


# --- unstable current --------------------------------------------------------------------------------------------


def driven(p: PackParameters, swing_a: float, seed: int = 6) -> Inputs:
    """A busy drive: the current jumps to a new level every 1 to 10 s (so that it sometimes reverses within the
    reversal gap), with sensor noise; plus a square wave of period 2 s."""
    rng = np.random.default_rng(seed)
    changes = np.cumsum(rng.uniform(1.0, 10.0, 2000))
    levels = rng.uniform(-300.0, 60.0, 2000)

    def make(tick: int, time_s: float) -> PredictiveInputs:
        level = levels[np.searchsorted(changes, time_s)]
        current = level + rng.normal(0.0, 0.8) + swing_a * (1.0 if tick % 20 < 10 else -1.0)
        return inputs(p, current_a=current)

    return make


def test_a_swinging_current_warns_within_three_minutes() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    found = first_warning(run(p, driven(p, 50.0), 600.0, 0.1), "unstable_current")
    assert found is not None
    assert found[0] <= 180.0


def test_a_busy_drive_raises_no_current_warning() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    history = run(p, driven(p, 0.0), 1800.0, 0.1)
    assert first_warning(history, "unstable_current") is None
    assert max(float(w.current_reversals_per_min[0]) for _, w in history) > 1.0  # it does reverse, now and then


def test_leak_detection_needs_rest() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    always_resting = PredictiveSettings(drift=replace(PredictiveSettings().drift, rest_current_c_rate=1.0))
    history = run(p, drifting(p, 9, 3e-3, current_a=-40.0), 6 * 3600.0, 10.0, always_resting)
    assert first_warning(history, "soc_drift") is not None  # the load test above is quiet for the right reason


# --- unknown inputs, helpers -------------------------------------------------------------------------------


def test_unknown_inputs_never_raise_a_warning() -> None:
    p = parameters(packs=1, cells=CELLS, sensors=SENSORS)
    nan_cells, nan_sensors = np.full((1, CELLS), np.nan), np.full((1, SENSORS), np.nan)

    def make(tick: int, _: float) -> PredictiveInputs:
        return replace(inputs(p, current_a=np.nan, voltage_v=nan_cells, temperature_c=nan_sensors, soc=nan_cells),
                       cell_soc_sigma=nan_cells)

    for _, warnings in run(p, make, 4 * 3600.0, 10.0):
        assert not warnings.resistance_rise.any()
        assert not warnings.local_heating.any()
        assert not warnings.soc_drift.any()
        assert not warnings.unstable_current.any()


def test_a_stale_pack_drops_its_warnings_and_statistics() -> None:
    p = parameters(packs=2, cells=CELLS, sensors=SENSORS)
    hot = heated(p, 3, 15.0)

    def make(tick: int, time_s: float) -> PredictiveInputs:
        x = hot(tick, time_s)
        return replace(x, temperature_c=np.tile(x.temperature_c[:1], (2, 1)), fresh=np.array([True, tick < 600]))

    history = run(p, make, 900.0, 1.0)
    at_600 = history[599][1]
    assert at_600.local_heating[:, 3].tolist() == [True, True]
    last = history[-1][1]
    assert last.local_heating[:, 3].tolist() == [True, False]
    assert np.isnan(last.heating_excess_c[1]).all()
    assert np.isnan(last.current_reversals_per_min[1])


@pytest.mark.parametrize("seed", range(20))
def test_peer_median_is_the_median_of_the_other_known_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    columns = int(rng.integers(1, 10))
    values = rng.integers(0, 4, (4, columns)).astype(np.float64)  # ties on purpose
    known = rng.random((4, columns)) < 0.8
    result = peer_median(values, known, 2)
    for row in range(4):
        for column in range(columns):
            others = values[row, known[row] & (np.arange(columns) != column)]
            expected = np.median(others) if known[row, column] and others.size >= 2 else np.nan
            np.testing.assert_equal(result[row, column], expected)


def test_held_for_counts_while_above_and_keeps_an_active_warning_down_to_the_clear_level() -> None:
    held = np.zeros(1)
    timeline = []
    for value in (5.0, 5.0, 5.0, 4.5, 3.0, 4.5, np.nan):
        held = held_for(held, np.array([value]), 4.8, 4.0, 2.0, 1.0)
        timeline.append(float(held[0]))
    assert timeline == [1.0, 2.0, 3.0, 3.0, 0.0, 0.0, 0.0]
