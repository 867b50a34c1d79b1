"""The per-cell estimator through `bms_step`, against a synthetic cell simulated with the same nmc-200ah model.

The simulated cell uses the model's own tables (OCV, R0, two RC pairs; exact zero-order-hold RC update,
row k's current held over the interval ending at row k) with a true capacity 5 % away from the nominal
one, so the estimator's only unknowns are the ones each test sets up: the initial SoC, the capacity, R0
growth, and sensor dropouts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest

from gateway.bms.cell_tables import CellTables
from gateway.bms.estimator import start_cells
from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.pack_figures import pack_figures, pack_soc
from gateway.bms.step import BmsOutputs, BmsState, bms_step
from tests.bms.helpers import empty_state, inputs, parameters, rules

CELLS = 4
NOMINAL_AH = 200.0
TRUE_AH = 210.0  # 5 % above the nominal capacity the estimator starts from
TEMPERATURE_C = 25.0
P = parameters(packs=1, cells=CELLS, sensors=2)
R = rules(P)
MODEL = P.layouts[0].cell_model
TABLES = CellTables([MODEL])


def drive_profile(seconds: int, seed: int, hold_s: tuple[int, int] = (5, 30), low_a: float = -200.0,
                  high_a: float = 100.0) -> FloatArray:
    """1 Hz current: random levels between -1C and +0.5C (a quarter of them rests), held 5..30 s."""
    rng = np.random.default_rng(seed)
    samples: list[float] = []
    while len(samples) < seconds:
        level = 0.0 if rng.random() < 0.25 else float(rng.uniform(low_a, high_a))
        samples += [level] * int(rng.integers(*hold_s))
    return np.asarray(samples[:seconds])


@dataclass(frozen=True)
class Truth:
    soc: FloatArray  # samples x cells
    voltage_v: FloatArray  # samples x cells (with sensor noise)


def simulate(current_a: FloatArray, soc0: FloatArray, capacity_ah: float = TRUE_AH, extra_r0_ohm: float = 0.0,
             noise_v: float = 0.002, dt_s: float = 1.0, seed: int = 7) -> Truth:
    """True SoC and measured voltage of CELLS series cells carrying `current_a` (positive = charging)."""
    rng = np.random.default_rng(seed)
    soc = np.asarray(soc0, dtype=np.float64).copy()
    model_index = np.zeros(CELLS, dtype=np.intp)
    temperature = np.full(CELLS, TEMPERATURE_C)
    rc = np.zeros((TABLES.pairs, CELLS))
    socs, volts = [], []
    for current in current_a:
        soc = soc + current * dt_s / (3600.0 * capacity_ah)
        table = TABLES.lookup(model_index, soc, temperature)
        decay = np.exp(-dt_s / table.rc_tau_s)
        rc = decay * rc + (1.0 - decay) * current
        voltage = table.ocv_v + (table.r0_ohm + extra_r0_ohm) * current + (table.rc_r_ohm * rc).sum(axis=0)
        socs.append(soc)
        volts.append(voltage + noise_v * rng.standard_normal(CELLS))
    return Truth(np.asarray(socs), np.asarray(volts))


def feed(state: BmsState, current_a: FloatArray, voltage_v: FloatArray, new: BoolArray | None = None,
         dt_s: float = 1.0) -> tuple[BmsState, list[BmsOutputs]]:
    """Run bms_step once per sample (one pack of CELLS cells); `new` marks fresh cell voltages per sample."""
    base = inputs(P, temp_c=TEMPERATURE_C)
    outputs = []
    for k in range(len(current_a)):
        sample = dataclasses.replace(
            base,
            cell_voltage_v=voltage_v[k][None, :].copy(),
            pack_voltage_v=np.array([np.nansum(voltage_v[k])]),
            pack_current_a=np.array([current_a[k]]),
            cell_voltage_new=None if new is None else new[k][None, :].copy(),
        )
        state, out = bms_step(state, sample, P, R, dt_s)
        assert out.fresh[0]
        outputs.append(out)
    return state, outputs


def started_at(soc: FloatArray, sigma: float) -> BmsState:
    """A state whose cells start at a given (restored) SoC instead of from their first voltage."""
    state = empty_state(P, R)
    estimator = start_cells(state.estimator, P.cell_mask.copy(), np.asarray(soc, dtype=np.float64)[None, :],
                            np.full((1, CELLS), sigma), P.estimator, P.estimator_settings)
    return dataclasses.replace(state, estimator=estimator)


def cell_soc(outputs: list[BmsOutputs]) -> FloatArray:
    return np.asarray([out.cells.soc[0] for out in outputs])


def cell_sigma(outputs: list[BmsOutputs]) -> FloatArray:
    return np.asarray([out.cells.soc_sigma[0] for out in outputs])


def pack_sigma(outputs: list[BmsOutputs]) -> FloatArray:
    return np.asarray([out.pack.soc_sigma[0] for out in outputs])


SOC0 = np.array([0.55, 0.60, 0.62, 0.66])  # some spread between the cells


@pytest.mark.parametrize(("offset", "capacity_ah"), [(-0.20, TRUE_AH), (+0.20, TRUE_AH), (-0.20, 190.0)])
def test_soc_started_20_points_wrong_converges_within_five_minutes(offset: float, capacity_ah: float) -> None:
    current = drive_profile(360, seed=1)
    truth = simulate(current, SOC0, capacity_ah)
    sigma0 = P.estimator_settings.ekf.restored_soc_sigma
    _, outputs = feed(started_at(SOC0 + offset, sigma0), current, truth.voltage_v)
    error = np.abs(cell_soc(outputs) - truth.soc)
    assert error[0].min() > 0.05  # not simply reset to the truth by the first sample
    assert error[300:].max() <= 0.02  # from 5 simulated minutes on, every cell within 2 SoC points
    true_pack = pack_soc(truth.soc[-1][None, :], P.cell_mask)[0]
    assert outputs[-1].pack.soc[0] == pytest.approx(true_pack, abs=0.02)
    # the published uncertainty shrinks with the corrections and then covers the remaining error
    sigma = cell_sigma(outputs)
    assert (sigma[-1] < 0.5 * sigma0).all()
    assert (error[-1] <= 3.0 * sigma[-1]).all()


def test_soc_from_the_first_voltage_tracks_the_truth() -> None:
    current = drive_profile(600, seed=3)
    truth = simulate(current, SOC0)
    _, outputs = feed(empty_state(P, R), current, truth.voltage_v)
    error = np.abs(cell_soc(outputs) - truth.soc)
    assert error.max() <= 0.02
    assert np.isfinite(pack_sigma(outputs)).all()


def converged(seconds: int = 120, seed: int = 11) -> tuple[BmsState, Truth, BmsOutputs]:
    current = drive_profile(seconds, seed=seed)
    truth = simulate(current, SOC0)
    state, outputs = feed(empty_state(P, R), current, truth.voltage_v)
    assert np.abs(cell_soc(outputs)[-1] - truth.soc[-1]).max() <= 0.01
    return state, truth, outputs[-1]


def test_current_dropout_freezes_soc_and_grows_sigma_then_voltage_recovers() -> None:
    warm, dropout, after = 120, 120, 300
    current = np.concatenate([drive_profile(warm, seed=11), np.full(dropout, -200.0), drive_profile(after, seed=5)])
    truth = simulate(current, SOC0)
    state, before = feed(empty_state(P, R), current[:warm], truth.voltage_v[:warm])
    measured = current.copy()
    measured[warm : warm + dropout] = np.nan  # current sensor dropout while the pack discharges at 1C
    state, during = feed(state, measured[warm : warm + dropout], truth.voltage_v[warm : warm + dropout])
    soc = cell_soc(during)
    assert (soc == before[-1].cells.soc[0]).all()  # coasting: no integration, no correction
    sigma = np.vstack([cell_sigma(before)[-1:], cell_sigma(during)])
    assert (np.diff(sigma, axis=0) > 0.0).all()  # grows every second it coasts
    packs = np.concatenate([pack_sigma(before)[-1:], pack_sigma(during)])
    assert (np.diff(packs) > 0.0).all()
    assert np.abs(soc[-1] - truth.soc[warm + dropout - 1]).min() > 0.025  # the truth moved on meanwhile
    # once the current is back, the voltage pulls the estimate back to the truth (the 5 % capacity error and
    # the unknown RC state after the dropout keep it from getting as close as without a dropout)
    _, recovered = feed(state, measured[warm + dropout :], truth.voltage_v[warm + dropout :])
    assert np.abs(cell_soc(recovered)[-1] - truth.soc[-1]).max() <= 0.015


@pytest.mark.parametrize("dt_s", [1.0, 0.1])
def test_sigma_after_a_five_minute_current_dropout_covers_the_truth(dt_s: float) -> None:
    state, truth, _ = converged()
    steps = round(300.0 / dt_s)
    discharge = np.full(steps, -200.0)  # 1C while the current sensor reports nothing
    during = simulate(discharge, truth.soc[-1], dt_s=dt_s)
    _, outputs = feed(state, np.full(steps, np.nan), during.voltage_v, dt_s=dt_s)
    error = np.abs(outputs[-1].cells.soc[0] - during.soc[-1])
    assert error.min() > 0.07  # the pack moved ~8 SoC points unseen
    assert (error <= 3.0 * outputs[-1].cells.soc_sigma[0]).all()


def test_without_new_voltages_it_coulomb_counts() -> None:
    state, truth, start = converged()
    current = np.full(360, -100.0)  # 0.5C for 6 min: 10 Ah
    later = simulate(current, truth.soc[-1])
    stale_voltages = np.full((360, CELLS), 3.0)  # would pull the SoC far down if they were used
    not_new = np.zeros((360, CELLS), dtype=bool)
    _, outputs = feed(state, current, stale_voltages, new=not_new)
    previous = start
    for out, amps in zip(outputs, current, strict=True):
        cells, before = out.cells, previous.cells
        expected = before.soc[0] + (amps + before.bias_a[0]) / (3600.0 * before.capacity_ah[0])
        np.testing.assert_allclose(cells.soc[0], expected, rtol=0.0, atol=1e-12)
        assert (cells.soc_sigma[0] >= before.soc_sigma[0]).all()  # no correction: never more certain
        previous = out
    moved = outputs[-1].cells.soc[0] - start.cells.soc[0]
    np.testing.assert_allclose(moved, -10.0 / NOMINAL_AH, rtol=0.01)  # counted with the nominal capacity
    assert np.abs(outputs[-1].cells.soc[0] - later.soc[-1]).max() <= 0.01


def test_cell_without_voltage_coasts_while_the_others_are_corrected() -> None:
    current = drive_profile(360, seed=1)
    truth = simulate(current, SOC0)
    voltage = truth.voltage_v.copy()
    silent = 2
    voltage[:, silent] = np.nan  # this cell's voltage channel is lost
    start = SOC0 - 0.20
    _, outputs = feed(started_at(start, 0.05), current, voltage)
    soc = cell_soc(outputs)
    others = [k for k in range(CELLS) if k != silent]
    assert np.abs(soc[300:, others] - truth.soc[300:, others]).max() <= 0.02
    # the silent cell only counts coulombs (nominal capacity, no bias learned without its voltage)
    counted = start[silent] + np.cumsum(current) / (3600.0 * NOMINAL_AH)
    np.testing.assert_allclose(soc[:, silent], counted, rtol=0.0, atol=1e-6)
    assert abs(soc[-1, silent] - truth.soc[-1, silent]) > 0.18
    sigma = cell_sigma(outputs)
    assert (np.diff(sigma[:, silent]) >= 0.0).all()
    assert (sigma[-1, others] < 0.5 * sigma[-1, silent]).all()
    assert math.isclose(outputs[-1].pack.min_cell_soc[0], soc[-1, silent])  # the pack still sees the cell


def resistance_run(extra_r0_ohm: float) -> list[BmsOutputs]:
    current = drive_profile(900, seed=2, hold_s=(3, 10))  # many current steps of up to 1.5C
    truth = simulate(current, np.full(CELLS, 0.7), extra_r0_ohm=extra_r0_ohm)
    return feed(empty_state(P, R), current, truth.voltage_v)[1]


def test_r0_growth_is_learned_from_current_steps() -> None:
    outputs = resistance_run(0.2e-3)
    delta = np.asarray([out.cells.delta_r0_ohm[0] for out in outputs])
    assert (delta[-1] >= 0.1e-3).all()  # the right sign and at least half of the 0.2 mOhm
    assert (delta[-1] <= 0.3e-3).all()
    assert (delta[-1] > delta[300]).all()  # still moving toward it, not a jump
    assert outputs[-1].pack.soh_resistance[0] < 0.95
    # the R0 error does not spoil the SoC
    assert np.isfinite(outputs[-1].pack.soc[0])


def test_no_r0_growth_is_reported_for_a_cell_that_matches_its_model() -> None:
    outputs = resistance_run(0.0)
    assert np.abs(outputs[-1].cells.delta_r0_ohm[0]).max() <= 0.02e-3
    assert outputs[-1].pack.soh_resistance[0] > 0.97


MASK = np.array([[True, True, True], [True, True, False], [True, True, True]])


def hand_made() -> dict[str, FloatArray]:
    return {
        "soc": np.array([[0.2, 0.5, 0.9], [0.3, 0.6, 0.0], [np.nan, np.nan, np.nan]]),
        "sigma": np.array([[0.01, 0.02, 0.03], [0.01, 0.01, 0.5], [np.nan, np.nan, np.nan]]),
        "capacity": np.array([[200.0, 190.0, 210.0], [180.0, 220.0, 1.0], [200.0, 200.0, 200.0]]),
        "growth": np.array([[1.0, 1.5, 1.2], [1.0, 2.6, 9.0], [1.0, 1.0, 1.0]]),
    }


def test_pack_figures_on_a_hand_made_example() -> None:
    x = hand_made()
    figures = pack_figures(x["soc"], x["sigma"], x["capacity"], x["growth"], np.array([200.0, 200.0, 200.0]),
                           MASK, 2.0)
    # pack 0: weakest-to-empty 0.2, fullest 0.9 -> 0.2 / (1 - 0.9 + 0.2)
    assert figures.soc[0] == pytest.approx(0.2 / 0.3)
    assert figures.min_cell_soc[0] == 0.2
    assert figures.max_cell_soc[0] == 0.9
    d_low, d_high = 0.1 / 0.3**2, 0.2 / 0.3**2
    assert figures.soc_sigma[0] == pytest.approx(d_low * 0.01 + d_high * 0.03)  # common-mode errors add up
    # usable: the first cell empties after 0.2 * 200 = 40 Ah, the third fills after 0.1 * 210 = 21 Ah
    assert figures.capacity_ah[0] == pytest.approx(40.0 + 21.0)
    assert figures.soh_capacity[0] == pytest.approx(190.0 / 200.0)
    assert figures.soh_resistance[0] == pytest.approx((2.0 - 1.5) / (2.0 - 1.0))
    # pack 1: its third cell is not fitted (masked out) and must not count anywhere
    assert figures.soc[1] == pytest.approx(0.3 / (1.0 - 0.6 + 0.3))
    assert figures.capacity_ah[1] == pytest.approx(min(0.3 * 180.0, 0.6 * 220.0) + min(0.7 * 180.0, 0.4 * 220.0))
    assert figures.soh_capacity[1] == pytest.approx(180.0 / 200.0)
    assert figures.soh_resistance[1] == 0.0  # growth beyond end of life clips at 0
    # pack 2: no estimate yet
    assert math.isnan(figures.soc[2])
    assert math.isnan(figures.soc_sigma[2])
    assert math.isnan(figures.capacity_ah[2])
    assert figures.soh_capacity[2] == pytest.approx(1.0)
    np.testing.assert_array_equal(pack_soc(x["soc"], MASK), figures.soc)


def test_pack_figures_of_a_balanced_pack_equal_its_cells() -> None:
    soc = np.full((1, 3), 0.4)
    figures = pack_figures(soc, np.full((1, 3), 0.01), np.full((1, 3), 200.0), np.ones((1, 3)),
                           np.array([200.0]), np.ones((1, 3), dtype=bool), 2.0)
    assert figures.soc[0] == pytest.approx(0.4)
    assert figures.capacity_ah[0] == pytest.approx(200.0)
    assert figures.soh_resistance[0] == 1.0


def test_pack_sigma_of_a_single_cell_pack_is_the_cell_sigma() -> None:
    figures = pack_figures(np.array([[0.5]]), np.array([[0.02]]), np.array([[200.0]]), np.ones((1, 1)),
                           np.array([200.0]), np.ones((1, 1), dtype=bool), 2.0)
    assert figures.soc[0] == pytest.approx(0.5)
    assert figures.soc_sigma[0] == pytest.approx(0.02)
