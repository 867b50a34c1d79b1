"""Estimator checkpoints: what is saved to the real store (SQLite) comes back field for field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from gateway.adapters.state_store import StateStore
from gateway.bms.estimator import start_capacity
from gateway.bms.step import BmsState, bms_step
from gateway.runtime.checkpoints import checkpoints_of, restore
from tests.bms.helpers import empty_state, inputs, parameters, rules

P = parameters(packs=2, cells=4, sensors=2)
R = rules(P)
# Fields added with the rest/offset and capacity-pair changes: each must be persisted.
NEW_EKF_FIELDS = ("coasted_soc", "branch_doubt_a", "quiet_s", "drift_sigma")
NEW_CAPACITY_FIELDS = ("anchor_counted_h", "counted_h", "prior_ah")


def run(state: BmsState, pack_current_a: tuple[float, float], seconds: int) -> BmsState:
    base = inputs(P)
    for k in range(seconds):
        cell_v = 3.75 - 0.0005 * k * np.array([[1.0], [0.0]])  # pack 0 discharges, pack 1 rests
        sample = dataclasses.replace(base, pack_current_a=np.array(pack_current_a), cell_voltage_v=cell_v.repeat(4, 1),
                                     pack_voltage_v=4 * cell_v[:, 0])
        state, _ = bms_step(state, sample, P, R, 1.0)
    return state


def learned_state() -> BmsState:
    """Pack 0: a discharge, then a current dropout (coasting); pack 1: a long rest; pack 0 with a measured capacity."""
    state = run(empty_state(P, R), (-100.0, 0.0), 400)
    state = run(state, (float("nan"), 0.0), 5)
    estimator = start_capacity(state.estimator, np.array([[True] * 4, [False] * 4]), np.full((2, 4), 170.0),
                               P.estimator, P.estimator_settings)
    return dataclasses.replace(state, estimator=estimator)


def through_the_store(saved: BmsState, tmp_path: Path) -> tuple[BmsState, list[str]]:
    """Saved to a real store and restored into an empty state: the restored state and the restored packs."""
    store = StateStore(tmp_path / "state.sqlite")
    try:
        store.save(checkpoints_of(saved, P, R))
        return restore(empty_state(P, R), P, store.load(), R)
    finally:
        store.close()


def test_restored_state_equals_the_saved_one_including_the_new_fields(tmp_path: Path) -> None:
    saved = learned_state()
    fresh = empty_state(P, R)
    # every new field carries something a fresh state does not have, so a field that is not persisted shows
    for part, names in (("ekf", NEW_EKF_FIELDS), ("capacity", NEW_CAPACITY_FIELDS)):
        for name in names:
            learned = getattr(getattr(saved.estimator, part), name)
            empty = getattr(getattr(fresh.estimator, part), name)
            assert not np.array_equal(learned, empty, equal_nan=True), f"{part}.{name} is not exercised"

    restored, packs = through_the_store(saved, tmp_path)

    assert packs == [layout.pack_id for layout in P.layouts]
    for part in ("ekf", "capacity"):
        before, after = getattr(saved.estimator, part), getattr(restored.estimator, part)
        for f in dataclasses.fields(before):
            np.testing.assert_array_equal(getattr(after, f.name), getattr(before, f.name),
                                          err_msg=f"{part}.{f.name}")
    for name in ("sum_xx", "sum_xy"):
        np.testing.assert_array_equal(getattr(restored.estimator.resistance, name),
                                      getattr(saved.estimator.resistance, name), err_msg=f"resistance.{name}")
    for f in dataclasses.fields(saved.usage):
        np.testing.assert_array_equal(getattr(restored.usage, f.name), getattr(saved.usage, f.name),
                                      err_msg=f"usage.{f.name}")


def test_the_first_step_after_a_restore_counts_like_the_uninterrupted_run(tmp_path: Path) -> None:
    saved = learned_state()
    restored, _ = through_the_store(saved, tmp_path)
    # one step of 1C with no new cell voltages: pure coulomb counting, with the same capacity and bias
    sample = dataclasses.replace(inputs(P), pack_current_a=np.array([-200.0, -200.0]),
                                 cell_voltage_new=np.zeros(P.cell_mask.shape, dtype=bool))
    continued, _ = bms_step(saved, sample, P, R, 1.0)
    after_restart, _ = bms_step(restored, sample, P, R, 1.0)
    np.testing.assert_allclose(after_restart.estimator.ekf.soc, continued.estimator.ekf.soc, rtol=0.0, atol=1e-12)


def test_what_the_predictive_warnings_learn_slowly_survives_a_restart(tmp_path: Path) -> None:
    saved = learned_state()
    predictive = saved.predictive
    learned = dataclasses.replace(
        predictive,
        drift=dataclasses.replace(predictive.drift, pooled_sxx=np.full((2, 4), 3.5), pooled_sxy=np.full((2, 4), -0.25)),
        resistance=dataclasses.replace(predictive.resistance, sum_ii=np.full((2, 4), 12.0),
                                       sum_iv=np.full((2, 4), 0.125)),
        current=dataclasses.replace(predictive.current, baseline_per_min=np.array([4.0, 9.5])))
    saved = dataclasses.replace(saved, predictive=learned)
    restored, _ = through_the_store(saved, tmp_path)
    for part, name in (("drift", "pooled_sxx"), ("drift", "pooled_sxy"), ("resistance", "sum_ii"),
                       ("resistance", "sum_iv"), ("current", "baseline_per_min")):
        np.testing.assert_array_equal(getattr(getattr(restored.predictive, part), name),
                                      getattr(getattr(learned, part), name), err_msg=f"{part}.{name}")
    assert restored.predictive.clock_s == 0.0  # the clocks restart; what they time restarts with them
