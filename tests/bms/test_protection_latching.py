"""Tiers, latching, acknowledgement and reset, guards and actions of the protection core (bms_step level)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gateway.bms.inputs import BmsInputs
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.protection import OperatorRequests, active_alarms
from gateway.bms.protection_rules import ProtectionRules
from gateway.bms.quantities import Quantity
from gateway.bms.step import BmsOutputs, BmsState, bms_step
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.states import ContactorState
from tests.bms.helpers import TICK_S, empty_state, inputs, parameters, rules


def run(state: BmsState, p: PackParameters, r: ProtectionRules, x: BmsInputs, seconds: float,
        requests: OperatorRequests | None = None) -> tuple[BmsState, BmsOutputs]:
    state, out = bms_step(state, x, p, r, TICK_S, requests)
    for _ in range(round(seconds / TICK_S) - 1):
        state, out = bms_step(state, x, p, r, TICK_S)
    return state, out


def opened(x: BmsInputs, pack: int = 0) -> BmsInputs:
    """The pack obeyed the open request."""
    x.contactor_state[pack] = int(ContactorState.OPEN)
    return x


def ask(p: PackParameters, *, acknowledge: bool = False, reset: bool = False) -> OperatorRequests:
    return OperatorRequests(np.full((len(rules(p)), p.pack_count), acknowledge), np.full(p.pack_count, reset))


def test_a_trip_latches_keeps_limits_zero_and_asks_to_open_until_a_reset_after_the_condition_cleared() -> None:
    p = parameters(packs=2)
    r = rules(p)
    high = inputs(p, cell_v=3.75)
    high.cell_voltage_v[0, 5] = 4.31  # cell 6 of pack 0 beyond 4.2 V + 0.10 V
    state, out = run(empty_state(p, r), p, r, high, 0.6)
    alarms = active_alarms(state.protection, r, 0)
    assert alarms[AlarmCode.CELL_OVERVOLTAGE] is Severity.TRIP
    assert out.latched_mask[0] == AlarmCode.CELL_OVERVOLTAGE.bit
    assert out.actions.open_contactor.tolist() == [True, False]
    assert out.limits.charge_a[0] == 0.0
    assert out.limits.discharge_a[0] == 0.0
    assert out.limits.charge_a[1] > 0.0  # the other pack is untouched

    state, out = run(state, p, r, opened(high), 0.5, ask(p, reset=True))  # refused: the condition is present
    assert out.latched_mask[0] == AlarmCode.CELL_OVERVOLTAGE.bit

    state, out = run(state, p, r, opened(inputs(p, cell_v=3.75)), 5.0)  # cleared, but the trip stays latched
    assert set(active_alarms(state.protection, r, 0)) == {AlarmCode.CELL_OVERVOLTAGE}
    assert out.limits.charge_a[0] == 0.0
    assert out.actions.open_contactor[0]

    state, out = run(state, p, r, opened(inputs(p, cell_v=3.75)), 0.1, ask(p, reset=True))
    assert active_alarms(state.protection, r, 0) == {}
    assert out.latched_mask[0] == 0
    assert not out.actions.open_contactor[0]
    state, out = run(state, p, r, inputs(p, cell_v=3.75), 0.1)  # the contactor closes again
    assert out.limits.charge_a[0] > 0.0


def test_an_alarm_is_unacknowledged_when_it_raises_and_again_when_it_raises_again() -> None:
    p = parameters(packs=1)
    r = rules(p)
    hot = inputs(p, temp_c=46.0)
    state, out = run(empty_state(p, r), p, r, hot, 2.1)
    assert out.unacknowledged_mask[0] == AlarmCode.CHARGE_OVERTEMPERATURE.bit
    state, out = run(state, p, r, hot, 0.1, ask(p, acknowledge=True))
    assert out.unacknowledged_mask[0] == 0
    assert AlarmCode.CHARGE_OVERTEMPERATURE in active_alarms(state.protection, r, 0)  # still active
    state, out = run(state, p, r, inputs(p, temp_c=30.0), 0.5)  # clears
    state, out = run(state, p, r, hot, 2.1)  # and raises again
    assert out.unacknowledged_mask[0] == AlarmCode.CHARGE_OVERTEMPERATURE.bit


def test_low_temperature_charging_needs_both_the_current_and_the_cold() -> None:
    p = parameters(packs=1)
    r = rules(p)
    cold_charge = inputs(p, temp_c=-5.0, current_a=20.0)  # 0.1 C into a pack below the 0 degC charge window
    state, _ = run(empty_state(p, r), p, r, cold_charge, 5.1)
    assert active_alarms(state.protection, r, 0)[AlarmCode.LOW_TEMPERATURE_CHARGING] is Severity.ALARM
    warm_charge = inputs(p, temp_c=20.0, current_a=20.0)
    state, _ = run(state, p, r, warm_charge, 0.1)  # the guard no longer holds: the alarm clears
    assert AlarmCode.LOW_TEMPERATURE_CHARGING not in active_alarms(state.protection, r, 0)
    state, _ = run(empty_state(p, r), p, r, inputs(p, temp_c=-5.0, current_a=-20.0), 6.0)  # discharging is fine
    assert AlarmCode.LOW_TEMPERATURE_CHARGING not in active_alarms(state.protection, r, 0)


def test_a_short_circuit_seen_in_any_frame_trips_at_the_next_tick_even_if_the_current_is_gone() -> None:
    p = parameters(packs=1)
    r = rules(p)
    x = inputs(p, current_a=-10.0)
    burst = BmsInputs(**{**x.__dict__, "peak_discharge_current_a": np.array([2000.0])})  # 3 x 600 A = 1800 A
    state, out = bms_step(empty_state(p, r), burst, p, r, TICK_S)
    assert active_alarms(state.protection, r, 0)[AlarmCode.SHORT_CIRCUIT] is Severity.TRIP
    assert out.actions.open_contactor[0]
    assert out.latched_mask[0] == AlarmCode.SHORT_CIRCUIT.bit


@pytest.mark.parametrize(("flags", "code"), [(1 << 4, AlarmCode.INSULATION_FAULT), (1 << 5, AlarmCode.CONTACTOR_FAULT),
                                         (1 << 0, AlarmCode.PACK_REPORTED_FAULT)])
def test_pack_reported_faults_have_their_own_codes(flags: int, code: AlarmCode) -> None:
    p = parameters(packs=1)
    r = rules(p)
    x = inputs(p)
    x.pack_fault_flags[:] = flags
    state, out = run(empty_state(p, r), p, r, x, 1.1)
    assert set(active_alarms(state.protection, r, 0)) == {code}
    assert out.limits.charge_a[0] == 0.0


def test_a_contactor_that_stays_closed_after_an_open_request_is_a_contactor_fault() -> None:
    p = parameters(packs=1)
    r = rules(p)
    x = inputs(p)
    x.cell_voltage_v[0, 0] = 4.4  # trip: open requested; the pack keeps reporting CLOSED
    state, _ = run(empty_state(p, r), p, r, x, 1.0)
    assert AlarmCode.CONTACTOR_FAULT not in active_alarms(state.protection, r, 0)
    state, _ = run(state, p, r, x, 2.2)
    assert AlarmCode.CONTACTOR_FAULT in active_alarms(state.protection, r, 0)


def test_a_frozen_voltage_channel_is_a_sensor_fault_a_live_one_is_not() -> None:
    p = parameters(packs=1, cells=4, sensors=1)
    r = rules(p)
    state = empty_state(p, r)
    currents = [-100.0, 0.0, -60.0, 10.0]  # a swing of 110 A > 0.25 C
    for current in currents:
        x = inputs(p, current_a=current)
        x.cell_voltage_v[0, :3] = 3.7 + 0.0005 * current + np.array([0.0, 0.001, 0.002])  # live: follow R0 x I
        x.cell_voltage_v[0, 3] = 3.7  # frozen
        state, out = bms_step(state, x, p, r, TICK_S)
    assert active_alarms(state.protection, r, 0)[AlarmCode.SENSOR_FAULT] is Severity.ALARM
    assert out.quantities[Quantity.FROZEN_READINGS][0] == 1.0  # only the frozen channel


def test_an_open_thermistor_is_a_sensor_fault_and_also_cold() -> None:
    p = parameters(packs=1)
    r = rules(p)
    x = inputs(p)
    x.temperature_c[0, 2] = -45.0
    state, _ = run(empty_state(p, r), p, r, x, 2.1)
    alarms = active_alarms(state.protection, r, 0)
    assert alarms[AlarmCode.SENSOR_FAULT] is Severity.ALARM
    assert AlarmCode.CELL_UNDERTEMPERATURE in alarms


def test_a_fast_temperature_rise_warns_then_alarms() -> None:
    p = parameters(packs=1)
    r = rules(p)
    state = empty_state(p, r)
    temperature = 30.0
    for _ in range(1200):  # 120 s at 4 degC/min
        temperature += 4.0 / 60.0 * TICK_S
        state, out = bms_step(state, inputs(p, temp_c=temperature), p, r, TICK_S)
    alarms = active_alarms(state.protection, r, 0)
    assert alarms[AlarmCode.TEMPERATURE_RISE_RATE] is Severity.ALARM
    assert out.actions.cooling[0]  # 38 degC, above the cooling threshold of 45 - 10 degC


def test_limits_never_exceed_the_ratings_and_are_zero_while_a_trip_is_latched() -> None:
    p = parameters(packs=3)
    r = rules(p)
    rng = np.random.default_rng(7)
    state = empty_state(p, r)
    for _ in range(300):
        x = inputs(p, cell_v=float(rng.uniform(2.3, 4.35)), temp_c=float(rng.uniform(-25.0, 70.0)),
                   current_a=float(rng.uniform(-700.0, 350.0)))
        x.cell_voltage_v[:] += rng.normal(0.0, 0.02, x.cell_voltage_v.shape)
        state, out = bms_step(state, x, p, r, 0.5)
        assert (out.limits.charge_a <= p.max_charge_current_a + 1e-9).all()
        assert (out.limits.discharge_a <= p.max_discharge_current_a + 1e-9).all()
        latched = out.latched_mask > 0
        assert (out.limits.charge_a[latched] == 0.0).all()
        assert (out.limits.discharge_a[latched] == 0.0).all()
    assert (out.latched_mask > 0).any(), "the sweep should have latched some trip"


def test_a_restored_latch_cannot_be_reset_before_its_condition_has_been_seen_cleared() -> None:
    p = parameters(packs=1)
    r = rules(p)
    x = inputs(p, temp_c=75.0)  # above the 70 degC over-temperature trip
    tripped, _ = run(empty_state(p, r), p, r, x, 2.1)
    assert tripped.protection.latched.any()
    # a restart: only the latch comes back; the first tick has no data yet
    restarted = replace(empty_state(p, r), protection=replace(
        empty_state(p, r).protection, latched=tripped.protection.latched.copy()))
    unseen = inputs(p)
    unseen.temperature_c[:] = np.nan
    state, out = run(restarted, p, r, unseen, 0.1, ask(p, reset=True))
    assert out.latched_mask[0] == AlarmCode.CELL_OVERTEMPERATURE.bit, "reset with the quantity unknown"
    state, out = run(state, p, r, opened(inputs(p, temp_c=25.0)), 1.0, ask(p, reset=True))
    assert out.latched_mask[0] == AlarmCode.CELL_OVERTEMPERATURE.bit, "reset after 1 s of a cleared condition"
    state, out = run(state, p, r, opened(inputs(p, temp_c=25.0)), 1.5)
    state, out = run(state, p, r, opened(inputs(p, temp_c=25.0)), 0.1, ask(p, reset=True))
    assert out.latched_mask[0] == 0
