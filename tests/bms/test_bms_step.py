from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.bms.pack_figures import pack_soc
from gateway.bms.protection import active_alarms
from gateway.bms.protection_rules import build_rules
from gateway.bms.quantities import Quantity
from gateway.bms.step import BmsOutputs, BmsState, bms_step
from gateway.domain.alarms import AlarmCode, Severity
from tests.bms.helpers import TICK_S, empty_state, inputs, parameters, rules


def run(state: BmsState, p, r, x, seconds: float) -> tuple[BmsState, BmsOutputs]:  # type: ignore[no-untyped-def]
    outputs = None
    for _ in range(round(seconds / TICK_S)):
        state, outputs = bms_step(state, x, p, r, TICK_S)
    assert outputs is not None
    return state, outputs


def test_soc_initialises_from_ocv_and_counts_coulombs_between_voltage_samples() -> None:
    p = parameters(packs=1)
    r = rules(p)
    model = p.layouts[0].cell_model
    rest = inputs(p, cell_v=float(model.ocv_v(np.array([0.5]))[0]))
    state, out = bms_step(empty_state(p, r), rest, p, r, TICK_S)
    assert out.soc[0] == pytest.approx(0.5, abs=0.002)
    # 100 A discharge for 360 s = 10 Ah = 5 % of 200 Ah, with no new voltage sample: pure coulomb counting
    no_new_voltage = np.zeros_like(p.cell_mask)
    discharge = dataclasses.replace(rest, pack_current_a=np.array([-100.0]), cell_voltage_new=no_new_voltage)
    state, out = run(state, p, r, discharge, 360.0)
    assert out.soc[0] == pytest.approx(0.45, abs=0.002)
    assert state.usage.ah_discharged[0] == pytest.approx(10.0, rel=1e-6)
    assert state.usage.ah_charged[0] == 0.0


def test_initial_soc_corrects_for_the_resistance_drop_under_load() -> None:
    p = parameters(packs=1)
    r = rules(p)
    model = p.layouts[0].cell_model
    loaded_v = float(model.ocv_v(np.array([0.6]))[0]) - 200.0 * model.r0_ohm  # 200 A discharge
    _, out = bms_step(empty_state(p, r), inputs(p, cell_v=loaded_v, current_a=-200.0), p, r, TICK_S)
    assert out.soc[0] == pytest.approx(0.6, abs=0.003)


def test_pack_soc_formula_uses_weakest_and_strongest_cells() -> None:
    cell_soc = np.array([[0.2, 0.5, 0.9]])
    assert pack_soc(cell_soc, np.ones((1, 3), dtype=bool))[0] == pytest.approx(0.2 / (1 - 0.9 + 0.2))


def test_stale_pack_gets_zero_limits_and_comm_loss_before_the_timeout() -> None:
    p = parameters(packs=2)
    r = rules(p, stale_timeout_s=1.0)
    x = inputs(p)
    state, out = run(empty_state(p, r), p, r, x, 1.0)
    assert (out.limits.charge_a > 0).all()
    stale = dataclasses.replace(x, data_age_s=np.array([0.05, 0.95]))  # one tick before the timeout
    state, out = bms_step(state, stale, p, r, TICK_S)
    assert out.limits.charge_a[1] == 0.0
    assert out.limits.discharge_a[1] == 0.0
    assert not out.fresh[1]
    assert active_alarms(state.protection, r, 1) == {AlarmCode.COMMUNICATION_LOSS: Severity.ALARM}
    assert out.limits.charge_a[0] > 0  # the other pack is untouched
    # data coming back clears the condition and restores limits
    state, out = bms_step(state, x, p, r, TICK_S)
    assert out.fresh[1]
    assert out.limits.charge_a[1] > 0


def test_never_seen_pack_has_zero_limits_and_no_soc() -> None:
    p = parameters(packs=1)
    r = rules(p)
    unseen = dataclasses.replace(inputs(p, cell_v=np.nan), data_age_s=np.array([np.inf]),
                                 temperature_age_s=np.array([np.inf]),
                                 pack_current_a=np.array([np.nan]))
    _state, out = bms_step(empty_state(p, r), unseen, p, r, TICK_S)
    assert out.limits.charge_a[0] == 0.0
    assert out.limits.discharge_a[0] == 0.0
    assert np.isnan(out.soc[0])


def test_temperature_outside_the_charge_window_stops_charging_only_then_the_operating_window_stops_all() -> None:
    p = parameters(packs=1)
    r = rules(p)
    state, out = run(empty_state(p, r), p, r, inputs(p, temp_c=46.0), 1.0)
    assert AlarmCode.CHARGE_OVERTEMPERATURE not in active_alarms(state.protection, r, 0)  # 2 s delay
    state, out = run(state, p, r, inputs(p, temp_c=46.0), 1.1)
    assert active_alarms(state.protection, r, 0)[AlarmCode.CHARGE_OVERTEMPERATURE] is Severity.ALARM
    assert AlarmCode.CELL_OVERTEMPERATURE not in active_alarms(state.protection, r, 0)  # 55 degC warns
    assert out.limits.charge_a[0] == 0.0  # outside the charge window
    assert out.limits.discharge_a[0] > 0.0
    state, out = run(state, p, r, inputs(p, temp_c=61.0), 2.1)
    assert active_alarms(state.protection, r, 0)[AlarmCode.CELL_OVERTEMPERATURE] is Severity.ALARM
    assert out.limits.discharge_a[0] == 0.0
    state, out = run(state, p, r, inputs(p, temp_c=58.5), 1.0)  # inside the 3 degC hysteresis band
    assert active_alarms(state.protection, r, 0)[AlarmCode.CELL_OVERTEMPERATURE] is Severity.ALARM
    state, out = run(state, p, r, inputs(p, temp_c=38.0), 0.1)  # below the charge warning's 42 - 3 degC
    assert AlarmCode.CELL_OVERTEMPERATURE not in active_alarms(state.protection, r, 0)
    assert AlarmCode.CHARGE_OVERTEMPERATURE not in active_alarms(state.protection, r, 0)


def test_cell_voltage_taper_and_overvoltage() -> None:
    p = parameters(packs=1)
    r = rules(p)
    _, out = run(empty_state(p, r), p, r, inputs(p, cell_v=4.15), 30.0)
    # halfway through the voltage taper, and the SoC taper and the model's 50 mV of headroom cut it further
    assert 0.0 < out.limits.charge_a[0] <= 200.0 * 0.5
    assert out.limits.charge_a[0] <= out.limits.charge_30s_a[0]
    assert out.limits.discharge_a[0] == pytest.approx(400.0)
    state, out = run(empty_state(p, r), p, r, inputs(p, cell_v=4.26), 1.1)
    assert active_alarms(state.protection, r, 0)[AlarmCode.CELL_OVERVOLTAGE] is Severity.ALARM
    assert out.limits.charge_a[0] == 0.0
    assert out.limits.discharge_a[0] == 0.0


def test_undervoltage_and_overcurrent() -> None:
    p = parameters(packs=1)
    r = rules(p)
    state, _ = run(empty_state(p, r), p, r, inputs(p, cell_v=2.52), 1.1)
    assert active_alarms(state.protection, r, 0)[AlarmCode.CELL_UNDERVOLTAGE] is Severity.WARNING
    state, _ = run(empty_state(p, r), p, r, inputs(p, current_a=-650.0), 1.1)  # above 3C pulse rating
    assert active_alarms(state.protection, r, 0)[AlarmCode.DISCHARGE_OVERCURRENT] is Severity.ALARM


def test_implausible_reading_is_a_sensor_fault_not_a_value() -> None:
    p = parameters(packs=1)
    r = rules(p)
    x = inputs(p)
    x.temperature_c[0, 3] = 400.0  # shorted thermistor
    state, out = bms_step(empty_state(p, r), x, p, r, TICK_S)
    assert active_alarms(state.protection, r, 0) == {AlarmCode.SENSOR_FAULT: Severity.ALARM}
    assert out.limits.charge_a[0] == 0.0
    assert out.quantities[Quantity.MAX_TEMPERATURE_C][0] == 25.0  # the implausible reading is not used


@settings(max_examples=60, deadline=None)
@given(cell_v=st.floats(2.0, 4.5), temp_c=st.floats(-40.0, 90.0), current_a=st.floats(-900.0, 500.0),
       age_s=st.floats(0.0, 5.0))
def test_limits_never_exceed_the_datasheet_ratings(cell_v: float, temp_c: float, current_a: float,
                                                   age_s: float) -> None:
    p = parameters(packs=1)
    r = rules(p)
    _, out = run(empty_state(p, r), p, r, inputs(p, cell_v=cell_v, temp_c=temp_c, current_a=current_a,
                                                  age_s=age_s), 0.3)
    assert 0.0 <= out.limits.charge_a[0] <= p.max_charge_current_a[0]
    assert 0.0 <= out.limits.discharge_a[0] <= p.max_discharge_current_a[0]
    if age_s > 0.85:  # stale once older than the timeout minus 1.5 ticks
        assert out.limits.charge_a[0] == 0.0
        assert out.limits.discharge_a[0] == 0.0


def test_temperatures_have_their_own_longer_timeout() -> None:
    p = parameters(packs=1)
    r = build_rules(p, 1.0, TICK_S, temperature_stale_timeout_s=3.0)
    x = dataclasses.replace(inputs(p), temperature_age_s=np.array([1.5]))  # 1 Hz sensors, one frame late
    state, out = run(empty_state(p, r), p, r, x, 0.5)
    assert out.fresh[0]
    assert out.limits.charge_a[0] > 0
    state, out = bms_step(state, dataclasses.replace(x, temperature_age_s=np.array([2.95])), p, r, TICK_S)
    assert not out.fresh[0]
    assert out.limits.charge_a[0] == 0.0
    assert active_alarms(state.protection, r, 0) == {AlarmCode.COMMUNICATION_LOSS: Severity.ALARM}


def test_a_locally_hot_sensor_raises_the_local_heating_warning_through_the_rule_table() -> None:
    p = parameters(packs=2)
    r = rules(p)
    x = inputs(p, temp_c=25.0)
    x.temperature_c[1, 5] = 32.0  # 7 degC above its neighbours (the spread warning starts at 8)
    state = empty_state(p, r)
    state, _ = run(state, p, r, x, 60.0)
    assert AlarmCode.LOCAL_HEATING not in active_alarms(state.protection, r, 1)  # the rule's 60 s delay
    state, out = run(state, p, r, x, 20.0)
    assert active_alarms(state.protection, r, 1) == {AlarmCode.LOCAL_HEATING: Severity.WARNING}
    assert active_alarms(state.protection, r, 0) == {}
    assert out.quantities.position(Quantity.SENSOR_HEATING_EXCESS_C, 1) == 6
    assert out.quantities[Quantity.SENSOR_HEATING_EXCESS_C][1] == pytest.approx(7.0, abs=0.5)
    cooled = inputs(p, temp_c=25.0)
    cooled.temperature_c[1, 5] = 29.5  # below the 5 degC threshold, not yet below its 4 degC clear point
    state, _ = run(state, p, r, cooled, 300.0)
    assert AlarmCode.LOCAL_HEATING in active_alarms(state.protection, r, 1)
    cooled.temperature_c[1, 5] = 28.0
    state, _ = run(state, p, r, cooled, 300.0)
    assert active_alarms(state.protection, r, 1) == {}


step_strategy = st.tuples(st.floats(2.3, 4.45), st.floats(-30.0, 75.0), st.floats(-700.0, 400.0),
                          st.lists(st.booleans(), min_size=2, max_size=2))


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(step_strategy, min_size=3, max_size=40))
def test_limits_are_zero_while_a_trip_is_latched_or_the_pack_is_not_admitted(
        steps: list[tuple[float, float, float, list[bool]]]) -> None:
    p = parameters(packs=2)
    r = rules(p)
    state = empty_state(p, r)
    for cell_v, temp_c, current_a, admitted in steps:
        x = inputs(p, cell_v=cell_v, temp_c=temp_c, current_a=current_a)
        for _ in range(5):  # 0.5 s at the tick
            state, out = bms_step(state, x, p, r, TICK_S, admitted=np.array(admitted))
            latched = state.protection.latched.any(axis=0)
            for pack in range(2):
                assert 0.0 <= out.limits.charge_a[pack] <= p.max_charge_current_a[pack]
                assert 0.0 <= out.limits.discharge_a[pack] <= p.max_discharge_current_a[pack]
                assert 0.0 <= out.limits.power_charge_w[pack] <= p.max_charge_current_a[pack] * 4.45 * 32
                if latched[pack] or not admitted[pack]:
                    assert out.limits.charge_a[pack] == 0.0
                    assert out.limits.discharge_a[pack] == 0.0
                    assert out.limits.power_discharge_w[pack] == 0.0
                    assert not out.balancing.mask[pack].any()
