"""Rests, the current-sensor offset, capacity pairs, gaps and the published SoC sigma, through `bms_step`.

The truth is the synthetic cell of test_estimator.py (the nmc-200ah tables, exact RC update). Where a
test needs a current-sensor offset, the sensor reads the true current plus the offset; the estimator's
bias is the correction it adds to the reading (true = measured + bias), so it should learn -offset.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
import pytest

from gateway.bms.estimator import start_capacity
from gateway.bms.inputs import FloatArray
from gateway.bms.step import BmsOutputs, BmsState
from tests.bms.helpers import empty_state
from tests.bms.test_estimator import (
    CELLS,
    MODEL,
    NOMINAL_AH,
    SOC0,
    P,
    R,
    cell_sigma,
    cell_soc,
    converged,
    drive_profile,
    feed,
    simulate,
    started_at,
)

EKF = P.estimator_settings.ekf
CAPACITY = P.estimator_settings.capacity
REST_THRESHOLD_A = EKF.rest_current_c_rate * NOMINAL_AH
OFFSET_A = -0.8  # the current sensor reads 0.8 A too low (0.004C, well inside the rest threshold)
WARM_S = 120  # a short drive first, so the SoC has converged before the rest begins


def cell_bias(outputs: list[BmsOutputs]) -> FloatArray:
    return np.asarray([out.cells.bias_a[0] for out in outputs])


def discharged_ah(current_a: FloatArray, dt_s: float = 1.0) -> FloatArray:
    return -np.cumsum(current_a) * dt_s / 3600.0


def rest_after_a_drive(rest_current_a: FloatArray, offset_a: float = OFFSET_A) -> tuple[FloatArray, FloatArray]:
    """Bias and SoC error per sample: a converging drive, then `rest_current_a` (true), read with the offset."""
    current = np.concatenate([drive_profile(WARM_S, seed=11), rest_current_a])
    truth = simulate(current, SOC0)
    _, outputs = feed(empty_state(P, R), current + offset_a, truth.voltage_v)
    return cell_bias(outputs), cell_soc(outputs) - truth.soc


# --- a rest reveals the current-sensor offset -------------------------------------------------------------------


def test_a_long_rest_reveals_the_current_sensor_offset() -> None:
    bias, soc_error = rest_after_a_drive(np.zeros(900))  # 15 min at true zero current
    assert np.abs(bias[WARM_S - 1]).max() <= 0.1  # not known before the rest
    np.testing.assert_allclose(bias[-1], -OFFSET_A, atol=0.15)
    # the pseudo-measurement only starts once the rest has lasted rest_min_s
    before = WARM_S + int(EKF.rest_min_s) - 10
    assert np.abs(bias[before] - bias[WARM_S - 1]).max() <= 0.1
    # learning the offset does not disturb the SoC
    assert np.abs(soc_error[-1]).max() <= 0.01


def test_a_real_small_load_is_not_taken_for_a_sensor_offset() -> None:
    load_a = -10.0  # 0.05C: a real draw above the rest threshold, read with the same offset
    assert abs(load_a) > REST_THRESHOLD_A
    bias, soc_error = rest_after_a_drive(np.full(900, load_a))
    # not dragged toward -(measured) = +10.8 A: the bias stays near its zero prior
    assert np.abs(bias).max() <= 0.15
    assert np.abs(soc_error[-1]).max() <= 0.01


def test_rests_shorter_than_rest_min_s_leave_the_bias_alone() -> None:
    short = int(EKF.rest_min_s) - 30
    # two short rests whose sum exceeds rest_min_s, with 30 s of real load between them
    rests = np.concatenate([np.zeros(short), np.full(30, -100.0), np.zeros(short)])
    assert 2 * short > EKF.rest_min_s
    bias, _ = rest_after_a_drive(rests)
    # (the voltage alone moves it by ~0.08 A here; the pseudo-measurement would pull it toward 0.8 A)
    assert np.abs(bias).max() <= 0.15


# --- capacity from a discharge between two rests ----------------------------------------------------------------

CAPACITY_TRUE_AH = 180.0  # 10 % below the nominal 200 Ah the estimator starts from
CAPACITY_OFFSET_A = -1.5  # 0.0075C, inside the rest threshold; over the ~2 h run, ~2.5 % of the charge moved
FIRST_REST_S, LAST_REST_S = 600, 900


@dataclass(frozen=True)
class CapacityRun:
    measured_a: FloatArray
    true_soc: FloatArray  # samples x cells
    capacity_ah: FloatArray  # cells, at the end of the last rest
    capacity_sigma_ah: FloatArray
    bias_a: FloatArray


@functools.cache
def discharge_between_rests(offset_a: float) -> CapacityRun:
    """Rest 10 min at SoC 0.9, a drive-profile discharge of 70 % of the true capacity, rest 15 min (1 Hz)."""
    profile = drive_profile(20_000, seed=4, low_a=-200.0, high_a=0.0)
    drive = profile[: int(np.searchsorted(discharged_ah(profile), 0.7 * CAPACITY_TRUE_AH))]
    current = np.concatenate([np.zeros(FIRST_REST_S), drive, np.zeros(LAST_REST_S)])
    truth = simulate(current, np.full(CELLS, 0.9), capacity_ah=CAPACITY_TRUE_AH)
    measured = current + offset_a
    _, outputs = feed(empty_state(P, R), measured, truth.voltage_v)
    last = outputs[-1].cells
    return CapacityRun(measured, truth.soc, last.capacity_ah[0], last.capacity_sigma_ah[0], last.bias_a[0])


def test_capacity_from_one_discharge_between_two_rests_is_within_two_percent() -> None:
    run = discharge_between_rests(CAPACITY_OFFSET_A)
    assert (run.true_soc[0] - run.true_soc[-1] >= 0.69).all()  # the pair spans ~70 % SoC
    np.testing.assert_allclose(run.capacity_ah, CAPACITY_TRUE_AH, rtol=0.02)


def test_capacity_learned_between_two_rests_is_corrected_for_the_sensor_offset() -> None:
    with_offset = discharge_between_rests(CAPACITY_OFFSET_A)
    without = discharge_between_rests(0.0)
    # the scenario is one where the offset matters: the measured charge alone is > 2 % off
    moved_soc = with_offset.true_soc[0, 0] - with_offset.true_soc[-1, 0]
    counted_only = discharged_ah(with_offset.measured_a)[-1] / moved_soc
    assert abs(counted_only / CAPACITY_TRUE_AH - 1.0) > 0.02
    # the rests reveal the offset, and the pair is corrected by it: no trace of it in the capacity
    np.testing.assert_allclose(with_offset.bias_a - without.bias_a, -CAPACITY_OFFSET_A, atol=0.15)
    np.testing.assert_allclose(with_offset.capacity_ah, without.capacity_ah, rtol=0.005)
    # one pair moves the estimate most of the way from the prior and its sigma covers what is left
    prior_ah, prior_sigma_ah = NOMINAL_AH, CAPACITY.prior_sigma_fraction * NOMINAL_AH
    error = np.abs(with_offset.capacity_ah - CAPACITY_TRUE_AH)
    assert (error < 0.5 * abs(prior_ah - CAPACITY_TRUE_AH)).all()
    assert (with_offset.capacity_sigma_ah < 0.5 * prior_sigma_ah).all()
    assert (error <= 1.5 * with_offset.capacity_sigma_ah).all()


# --- the published SoC sigma is honest about a capacity error ---------------------------------------------------


@pytest.mark.parametrize("capacity_error", [-0.07, +0.07])
def test_published_sigma_covers_the_soc_error_of_a_wrong_capacity(capacity_error: float) -> None:
    true_ah = NOMINAL_AH * (1.0 + capacity_error)
    profile = drive_profile(20_000, seed=6, low_a=-200.0, high_a=0.0)  # a discharge without long rests
    current = profile[: int(np.searchsorted(discharged_ah(profile), 0.6 * true_ah))]
    start = SOC0 + 0.3  # known well (e.g. after a long rest): started at the truth with the floor sigma
    truth = simulate(current, start, capacity_ah=true_ah)
    floor = EKF.reported_soc_floor
    _, outputs = feed(started_at(start, floor), current, truth.voltage_v)
    error = np.abs(cell_soc(outputs) - truth.soc)
    sigma = cell_sigma(outputs)
    after = 600
    assert (error[after:] <= 2.5 * sigma[after:]).all()  # (the error reaches ~1.2 %, more than the floor)
    assert (sigma[-1] >= 1.5 * floor).all()  # grows with the charge moved instead of sitting at the floor
    assert (sigma[-1] > sigma[after]).all()


# --- a gap or a current dropout drops the open capacity pair ----------------------------------------------------

UNSEEN_S = 30  # 3 x max_gap_s


def pair_then_reversal(interruption: str | None) -> tuple[BmsState, BmsState, BmsState, BmsOutputs]:
    """Discharge 0.19 SoC at 1C (an open pair), 30 s more at 1C (maybe unseen), then charge 0.08 SoC back.

    Returns the state before the 30 s, after them, at the end, and the outputs just after the 30 s.
    """
    before = np.concatenate([np.zeros(60), np.full(720, -200.0)])
    unseen = np.full(UNSEEN_S, -200.0)
    charge = np.full(600, 100.0)
    current = np.concatenate([before, unseen, charge])
    truth = simulate(current, np.full(CELLS, 0.9))
    n, m = len(before), len(before) + UNSEEN_S
    state, _ = feed(empty_state(P, R), before, truth.voltage_v[:n])
    if interruption == "gap":  # one interval longer than max_gap_s
        after, outputs = feed(state, current[m - 1 : m], truth.voltage_v[m - 1 : m], dt_s=float(UNSEEN_S))
    elif interruption == "dropout":  # the current sensor reports nothing
        after, outputs = feed(state, np.full(UNSEEN_S, np.nan), truth.voltage_v[n:m])
    else:
        after, outputs = feed(state, current[n:m], truth.voltage_v[n:m])
    end, _ = feed(after, charge, truth.voltage_v[m:])
    return state, after, end, outputs[-1]


def test_without_an_interruption_the_reversal_commits_the_pair() -> None:
    state, _, end, _ = pair_then_reversal(None)
    assert (state.estimator.capacity.extreme_span >= CAPACITY.min_span_soc).all()
    assert (state.estimator.capacity.sum_wxx == 0.0).all()
    assert (end.estimator.capacity.sum_wxx > 0.0).all()


@pytest.mark.parametrize("interruption", ["gap", "dropout"])
def test_a_gap_or_current_dropout_drops_the_open_capacity_pair(interruption: str) -> None:
    assert EKF.max_gap_s < UNSEEN_S
    state, after, end, outputs = pair_then_reversal(interruption)
    before = state.estimator.capacity
    assert np.isfinite(before.anchor_soc).all()
    assert (before.extreme_span >= CAPACITY.min_span_soc).all()  # the open pair counted
    dropped = after.estimator.capacity
    assert np.isnan(dropped.anchor_soc).all()
    np.testing.assert_array_equal(dropped.sum_wxx, before.sum_wxx)
    np.testing.assert_array_equal(dropped.sum_wxy, before.sum_wxy)
    np.testing.assert_array_equal(outputs.cells.capacity_ah[0], dropped.prior_ah[0])  # only the prior is left
    # a new pair starts after the interruption; the same reversal no longer commits a pair across it
    final = end.estimator.capacity
    assert np.isfinite(final.anchor_soc).all()
    assert (final.anchor_counted_h >= dropped.counted_h).all()  # anchored after the interruption
    np.testing.assert_array_equal(final.sum_wxx, before.sum_wxx)


# --- a measured capacity as the prior ---------------------------------------------------------------------------


def test_start_capacity_makes_a_measured_capacity_the_prior_and_the_soh() -> None:
    state, _, start = converged()
    measured = NOMINAL_AH * np.array([[0.9, 0.95, 0.85, 1.0]])
    estimator = start_capacity(state.estimator, P.cell_mask.copy(), measured, P.estimator, P.estimator_settings)
    np.testing.assert_array_equal(estimator.capacity.prior_ah, measured)
    np.testing.assert_allclose(estimator.capacity_ah, measured, rtol=1e-12)
    # the filter counts with it: 10 Ah (without voltage corrections) moves each cell by 10 Ah / its capacity
    current = np.full(360, -100.0)
    _, outputs = feed(replace(state, estimator=estimator), current, np.full((360, CELLS), 3.0),
                      new=np.zeros((360, CELLS), dtype=bool))
    moved = outputs[-1].cells.soc[0] - start.cells.soc[0]
    np.testing.assert_allclose(moved, -10.0 / measured[0], rtol=0.005)
    last = outputs[-1]
    np.testing.assert_allclose(last.cells.capacity_ah[0], measured[0], rtol=1e-9)  # 5 % is too short for a pair
    assert last.pack.soh_capacity[0] == pytest.approx(measured.min() / MODEL.nominal_capacity_ah)


def test_start_capacity_forgets_the_learned_pairs_of_the_chosen_cells_only() -> None:
    _, _, learned, _ = pair_then_reversal(None)
    assert (learned.estimator.capacity.sum_wxx > 0.0).all()
    which = np.array([[True, False, True, False]])
    measured = np.full((1, CELLS), 0.9 * NOMINAL_AH)
    estimator = start_capacity(learned.estimator, which, measured, P.estimator, P.estimator_settings)
    np.testing.assert_allclose(estimator.capacity_ah[which], measured[which], rtol=1e-12)
    np.testing.assert_array_equal(estimator.capacity_ah[~which], learned.estimator.capacity_ah[~which])
    np.testing.assert_array_equal(estimator.capacity.prior_ah[~which], NOMINAL_AH)
