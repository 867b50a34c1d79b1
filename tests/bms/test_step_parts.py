from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from gateway.bms.cell_model import load_cell_model
from gateway.bms.inputs import BmsInputs
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.pack_reports import PackReports
from gateway.bms.predictive import PredictiveWarnings
from gateway.bms.protection import active_alarms
from gateway.bms.protection_rules import ProtectionRules
from gateway.bms.quantities import Quantity, compute_quantities, screen
from gateway.bms.signal_trends import TrendSettings, TrendState, trends_step
from gateway.bms.step import BmsOutputs, BmsState, bms_step
from gateway.bms.usage import UsageState, usage_step
from gateway.domain.alarms import AlarmCode, Severity
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.bms.helpers import TICK_S, empty_state, inputs, parameters, quantities_of, rules


def mixed_parameters() -> PackParameters:
    """A 4-cell pack with 2 sensors beside a 3-cell pack with 1 sensor: padded cells and sensors."""
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    return PackParameters.build([PackLayout("a", 4, 2, model), PackLayout("b", 3, 1, model)])


def test_each_quantity_is_the_one_its_name_says() -> None:
    p = mixed_parameters()
    x = inputs(p)
    x.cell_voltage_v[:] = [[3.6, 3.9, 9.0, np.nan], [3.5, 3.7, 3.8, 2.0]]  # 9 V implausible; 2.0 V is padding
    x.temperature_c[:] = [[21.0, 30.0], [26.0, -99.0]]  # -99: padding, not a sensor
    x.pack_current_a[:] = [-40.0, 12.0]
    x.data_age_s[:] = [0.2, 0.3]
    x.temperature_age_s[:] = [0.4, 0.5]
    x.pack_fault_flags[:] = [0, 5 | 16]  # 16: insulation
    x.pack_voltage_v[:] = [15.0, 11.0]
    reports = PackReports.unreported(2)
    x = dataclasses.replace(x, reports=dataclasses.replace(reports, protection_flags=np.array([np.nan, 2.0 + 8.0]),
                                                           warning_flags=np.array([np.nan, 16.0])))
    q = quantities_of(x, p)
    expected = {
        Quantity.MAX_CELL_VOLTAGE_V: [3.9, 3.8],
        Quantity.MIN_CELL_VOLTAGE_V: [3.6, 3.5],
        Quantity.MAX_TEMPERATURE_C: [30.0, 26.0],
        Quantity.MIN_TEMPERATURE_C: [21.0, 26.0],
        Quantity.CHARGE_CURRENT_A: [-40.0, 12.0],
        Quantity.DISCHARGE_CURRENT_A: [40.0, -12.0],
        Quantity.DATA_AGE_S: [0.2, 0.3],
        Quantity.TEMPERATURE_AGE_S: [0.4, 0.5],
        Quantity.IMPLAUSIBLE_READINGS: [1.0, 0.0],
        Quantity.PACK_FAULT_FLAGS: [0.0, 5.0],
        Quantity.PACK_VOLTAGE_V: [15.0, 11.0],
        Quantity.CELL_VOLTAGE_SPREAD_V: pytest.approx([0.3, 0.3]),
        Quantity.TEMPERATURE_SPREAD_C: [9.0, 0.0],
        Quantity.TEMPERATURE_RISE_C_PER_MIN: "unknown",  # the averages have not run for their time constant
        Quantity.PEAK_DISCHARGE_CURRENT_A: [40.0, -12.0],
        Quantity.OPEN_OR_SHORTED_THERMISTORS: [0.0, 0.0],
        Quantity.FROZEN_READINGS: [0.0, 0.0],
        Quantity.INSULATION_FAULT: [0.0, 1.0],
        Quantity.CONTACTOR_FAULT: [0.0, 0.0],
        Quantity.MODEL_RESIDUAL_MV: [0.0, 0.0],
        Quantity.CELL_RESISTANCE_EXCESS: "unknown",  # no predictive statistic before the first step
        Quantity.SENSOR_HEATING_EXCESS_C: "unknown",
        Quantity.CELL_LEAK_C_RATE: "unknown",
        Quantity.CURRENT_REVERSAL_RATIO: "unknown",
        Quantity.PACK_PROTECTION_FLAGS: [0.0, 10.0],  # not reported: no bit
        Quantity.PACK_WARNING_FLAGS: [0.0, 16.0],
    }
    assert set(expected) == set(Quantity)
    for quantity, values in expected.items():
        if values == "unknown":
            assert np.isnan(q[quantity]).all(), quantity
            continue
        assert q[quantity].tolist() == values, quantity  # type: ignore[comparison-overlap]


def test_the_predictive_quantities_are_the_highest_statistic_and_name_its_cell() -> None:
    p = mixed_parameters()
    x = inputs(p)
    readings = screen(x, p)
    _, trends = trends_step(TrendState.empty(p.cell_mask.shape, p.sensor_mask.shape), readings.temperature_c,
                            readings.cell_voltage_v, x.pack_current_a, p.capacity_ah, TICK_S, TrendSettings())
    empty = PredictiveWarnings.empty(p.cell_mask.shape, p.sensor_mask.shape[1])
    warnings = dataclasses.replace(
        empty, resistance_excess=np.array([[0.01, 0.2, -0.1, np.nan], [0.0, 0.0, 0.05, np.nan]]),
        heating_excess_c=np.array([[0.5, 6.0], [np.nan, np.nan]]),
        standing_leak_c_rate=np.array([[0.0, 0.0, 0.0, np.nan], [0.0, 0.0, 0.0, 8e-4]]),
        current_reversals_per_min=np.array([45.0, 10.0]), current_threshold_per_min=np.array([30.0, 40.0]))
    q = compute_quantities(x, p, readings, trends, np.zeros(p.cell_mask.shape), np.zeros(p.pack_count, dtype=bool),
                           warnings)
    assert q[Quantity.CELL_RESISTANCE_EXCESS].tolist() == [0.2, 0.05]
    assert q.position(Quantity.CELL_RESISTANCE_EXCESS, 0) == 2
    assert q[Quantity.SENSOR_HEATING_EXCESS_C][0] == 6.0
    assert math.isnan(q[Quantity.SENSOR_HEATING_EXCESS_C][1])  # unknown never raises
    assert q.position(Quantity.SENSOR_HEATING_EXCESS_C, 1) is None
    assert q[Quantity.CELL_LEAK_C_RATE].tolist() == [0.0, 8e-4]
    assert q.position(Quantity.CELL_LEAK_C_RATE, 1) == 4
    assert q[Quantity.CURRENT_REVERSAL_RATIO].tolist() == pytest.approx([1.5, 0.25])


def test_a_pack_without_plausible_readings_has_unknown_extremes() -> None:
    p = mixed_parameters()
    x = inputs(p)
    x.cell_voltage_v[1] = np.nan
    x.temperature_c[1] = 500.0
    q = quantities_of(x, p)
    assert math.isnan(q[Quantity.MAX_CELL_VOLTAGE_V][1])
    assert math.isnan(q[Quantity.MIN_TEMPERATURE_C][1])
    assert q[Quantity.IMPLAUSIBLE_READINGS].tolist() == [0.0, 1.0]  # the padded sensor is not counted
    assert q[Quantity.MAX_CELL_VOLTAGE_V][0] == 3.75


def test_a_missing_temperature_reading_takes_the_pack_mean_then_the_unknown_value() -> None:
    p = parameters(packs=3, cells=4, sensors=2)  # cells 0-1 read sensor 0, cells 2-3 sensor 1
    temperature = np.array([[20.0, 30.0], [np.nan, 30.0], [np.nan, np.inf]])
    assert p.cell_temperature_c(temperature, 25.0).tolist() == [[20.0, 20.0, 30.0, 30.0], [30.0] * 4, [25.0] * 4]
    assert np.isnan(p.cell_temperature_c(temperature)[2]).all()


def test_usage_histograms_count_the_known_values_of_counted_packs() -> None:
    state = UsageState.empty(3)
    hottest = np.array([25.0, np.nan, 65.0])
    soc = np.array([0.55, 0.95, 0.05])
    counted = np.array([True, True, False])
    after = usage_step(state, np.array([-36.0, 18.0, 50.0]), np.array([100.0, np.nan, 100.0]), hottest, soc,
                       counted, 10.0)
    assert after.time_at_temperature_s[0].tolist() == [0.0] * 5 + [10.0] + [0.0] * 4  # 20..30 degC
    assert after.time_at_temperature_s[1:].sum() == 0.0  # unknown temperature, not counted
    assert after.time_at_soc_s.tolist()[:2] == [[0.0] * 5 + [10.0] + [0.0] * 4, [0.0] * 9 + [10.0]]
    assert after.time_at_soc_s[2].sum() == 0.0
    assert after.ah_discharged.tolist() == pytest.approx([0.1, 0.0, 0.0])
    assert after.ah_charged.tolist() == pytest.approx([0.0, 0.05, 0.0])
    assert after.wh_discharged.tolist() == pytest.approx([10.0, 0.0, 0.0])
    assert after.wh_charged.tolist() == [0.0, 0.0, 0.0]  # unknown pack voltage: no energy


def settled(p: PackParameters, r: ProtectionRules, x: BmsInputs) -> tuple[BmsState, BmsOutputs]:
    """Constant inputs for 30 s: past the limits' ramp-up from 0 (0.1 C/s)."""
    state = empty_state(p, r)
    for _ in range(300):
        state, out = bms_step(state, x, p, r, TICK_S)
    return state, out


def test_charge_and_discharge_are_derated_by_their_own_temperature_window() -> None:
    p = parameters(packs=1)
    r = rules(p)
    # charge window 0..45 degC, discharge -20..60 degC, derated over 5 degC at each edge
    _, out = settled(p, r, inputs(p, temp_c=42.5))
    assert out.limits.charge_a[0] == pytest.approx(0.5 * p.max_charge_current_a[0])
    assert out.limits.discharge_a[0] == pytest.approx(p.max_discharge_current_a[0])
    _, out = settled(p, r, inputs(p, temp_c=-17.5))
    assert out.limits.charge_a[0] == 0.0
    assert out.limits.discharge_a[0] == pytest.approx(0.5 * p.max_discharge_current_a[0])
    assert out.limits.charge_voltage_v[0] == pytest.approx(32 * 4.2)
    assert out.limits.discharge_voltage_v[0] == pytest.approx(32 * 2.5)


def test_a_below_rule_raises_after_its_delay_and_clears_past_its_hysteresis() -> None:
    p = parameters(packs=1)
    r = rules(p)
    state = empty_state(p, r)
    for _ in range(19):  # 1.9 s of the 2 s delay
        state, _ = bms_step(state, inputs(p, temp_c=-1.0), p, r, TICK_S)
    assert active_alarms(state.protection, r, 0) == {}
    state, _ = bms_step(state, inputs(p, temp_c=-1.0), p, r, TICK_S)
    assert active_alarms(state.protection, r, 0) == {AlarmCode.CHARGE_UNDERTEMPERATURE: Severity.ALARM}
    state, _ = bms_step(state, inputs(p, temp_c=2.5), p, r, TICK_S)  # inside the 3 degC band
    assert active_alarms(state.protection, r, 0) == {AlarmCode.CHARGE_UNDERTEMPERATURE: Severity.ALARM}
    state, _ = bms_step(state, inputs(p, temp_c=3.0), p, r, TICK_S)
    assert active_alarms(state.protection, r, 0) == {}
