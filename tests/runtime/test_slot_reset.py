"""A swapped pack starts from scratch in its slot; the other slots and the latched trips keep what they have."""

from __future__ import annotations

import dataclasses

import numpy as np

from gateway.bms.step import bms_step
from gateway.runtime.slot_reset import reset_slots
from tests.bms.helpers import TICK_S, empty_state, inputs, parameters, rules

P = parameters(packs=3, cells=4, sensors=4)
R = rules(P)


def test_the_swapped_slot_is_new_and_the_others_keep_their_estimates() -> None:
    state = empty_state(P, R)
    x = dataclasses.replace(inputs(P, current_a=-100.0))
    for _ in range(50):
        state, _ = bms_step(state, x, P, R, TICK_S)
    latched = state.protection.latched.copy()
    latched[0, 1] = True
    state = dataclasses.replace(state, protection=dataclasses.replace(state.protection, latched=latched))
    empty = empty_state(P, R)
    reset = reset_slots(state, empty, [1])
    ekf, before = reset.estimator.ekf, state.estimator.ekf
    assert not ekf.initialised[1].any()  # the new pack's SoC starts from its open-circuit voltage
    assert ekf.initialised[[0, 2]].all()
    np.testing.assert_array_equal(ekf.soc[[0, 2]], before.soc[[0, 2]])
    np.testing.assert_array_equal(ekf.rc_current_a[:, 1], empty.estimator.ekf.rc_current_a[:, 1])
    np.testing.assert_array_equal(ekf.rc_current_a[:, [0, 2]], before.rc_current_a[:, [0, 2]])
    assert reset.usage.ah_discharged[1] == 0.0
    assert reset.usage.ah_discharged[0] == state.usage.ah_discharged[0] > 0.0
    assert reset.protection.latched[0, 1]  # a latched trip waits for its authorised reset
    assert reset.estimator.clock_s == state.estimator.clock_s


def test_no_swap_changes_nothing() -> None:
    state = empty_state(P, R)
    assert reset_slots(state, empty_state(P, R), []) is state
