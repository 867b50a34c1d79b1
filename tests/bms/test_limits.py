"""The state-of-power limit pipeline: derating, tapers, prediction cap, ramp, gating and power."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.bms.cell_conditions import CellConditions
from gateway.bms.derating import DeratingTable, soc_taper, temperature_factor, window_table
from gateway.bms.inputs import FloatArray
from gateway.bms.limits import CurrentLimits, LimitsInputs, LimitsState, limits_step
from gateway.bms.limits_settings import LimitsSettings
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.power_prediction import predict_power
from tests.bms.sop_helpers import pack_parameters, random_conditions, resting_conditions, simulated_voltages

TICK_S = 0.1
P = pack_parameters(packs=2, cells=4)
CHARGE_RATING_A = float(P.max_charge_current_a[0])  # 200 A: nmc-200ah at 1C
DISCHARGE_RATING_A = float(P.max_discharge_current_a[0])  # 400 A at 2C
RAMP_A_PER_TICK = LimitsSettings().ramp_up_c_rate_per_s * 200.0 * TICK_S


def limits_inputs(p: PackParameters = P, *, temperature_c: float = 25.0, soc: float = 0.5,
                  conditions: CellConditions | None = None, allowed: bool = True,
                  action: tuple[float, float] = (1.0, 1.0)) -> LimitsInputs:
    """Every pack alike: cells resting at `soc` (their OCV as the cell voltages) and `temperature_c`."""
    packs = p.pack_count
    conditions = conditions or resting_conditions(p, soc, temperature_c)
    model = p.layouts[0].cell_model
    cell_v = float(model.ocv_v(np.array([soc]), temperature_c)[0])
    return LimitsInputs(
        max_cell_voltage_v=np.full(packs, cell_v), min_cell_voltage_v=np.full(packs, cell_v),
        min_temperature_c=np.full(packs, temperature_c), max_temperature_c=np.full(packs, temperature_c),
        max_cell_soc=np.full(packs, soc), min_cell_soc=np.full(packs, soc), cells=conditions,
        allowed=np.full(packs, allowed), action_factor=np.tile(np.array(action), (packs, 1)))


def settled(inputs: LimitsInputs, p: PackParameters = P, limit_settings: LimitsSettings | None = None,
            state: LimitsState | None = None) -> tuple[LimitsState, CurrentLimits]:
    """The limits once the ramp has caught up (one long step)."""
    return limits_step(state or LimitsState.empty(p.pack_count), inputs, p, 1000.0, limit_settings or LimitsSettings())


def per_pack(value: float, p: PackParameters = P) -> FloatArray:
    return np.full(p.pack_count, value)


def test_in_the_middle_at_25_degc_the_continuous_ratings_apply() -> None:
    _, limits = settled(limits_inputs())
    assert limits.charge_a == pytest.approx(per_pack(CHARGE_RATING_A))
    assert limits.discharge_a == pytest.approx(per_pack(DISCHARGE_RATING_A))
    assert limits.charge_10s_a == pytest.approx(P.pulse_charge_current_a)
    assert limits.discharge_30s_a == pytest.approx(P.max_discharge_current_a)
    assert limits.charge_voltage_v == pytest.approx(per_pack(4 * 4.2))
    assert limits.discharge_voltage_v == pytest.approx(per_pack(4 * 2.5))


def test_the_default_derating_table_follows_the_cell_models_windows() -> None:
    charge = window_table(0.0, 45.0, 5.0)  # nmc-200ah: charge 0..45 degC, discharge -20..60 degC
    temperatures = np.array([-5.0, 0.0, 2.5, 5.0, 25.0, 40.0, 42.5, 45.0, 50.0, np.nan])
    assert charge.at(temperatures)[:-1].tolist() == [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    assert np.isnan(charge.at(temperatures)[-1])
    for temperature_c, charge_factor, discharge_factor in [(-17.5, 0.0, 0.5), (1.0, 0.2, 1.0), (42.5, 0.5, 1.0),
                                                           (57.5, 0.0, 0.5), (61.0, 0.0, 0.0)]:
        _, limits = settled(limits_inputs(temperature_c=temperature_c))
        assert limits.charge_a == pytest.approx(per_pack(CHARGE_RATING_A * charge_factor)), temperature_c
        assert limits.discharge_a == pytest.approx(per_pack(DISCHARGE_RATING_A * discharge_factor)), temperature_c
        # the predicted figures obey the same derating of the ratings
        assert limits.charge_10s_a == pytest.approx(P.pulse_charge_current_a * charge_factor)


def test_a_pack_is_derated_by_its_coldest_and_its_hottest_sensor() -> None:
    tables = [(window_table(0.0, 45.0, 5.0), window_table(-20.0, 60.0, 5.0))]
    factor = temperature_factor(tables, np.zeros(3, dtype=np.intp), np.array([1.0, 20.0, 20.0]),
                                np.array([30.0, 44.0, np.nan]))
    assert factor == pytest.approx(np.array([[0.2, 1.0], [0.2, 1.0], [0.0, 0.0]]))


def test_a_configured_table_replaces_the_default_for_its_cell_model() -> None:
    table = DeratingTable((0.0, 10.0, 15.0, 35.0, 45.0), (0.1, 0.1, 1.0, 1.0, 0.0))
    custom = LimitsSettings(charge_derating={"nmc-200ah": table})
    _, limits = settled(limits_inputs(temperature_c=5.0), limit_settings=custom)
    assert limits.charge_a == pytest.approx(per_pack(0.1 * CHARGE_RATING_A))
    _, limits = settled(limits_inputs(temperature_c=12.5), limit_settings=custom)
    assert limits.charge_a == pytest.approx(per_pack(0.55 * CHARGE_RATING_A))
    assert limits.discharge_a == pytest.approx(per_pack(DISCHARGE_RATING_A))  # the discharge table is the default
    with pytest.raises(ValueError, match="increase"):
        DeratingTable((10.0, 5.0), (1.0, 1.0))


def test_soc_taper_on_the_fullest_and_the_emptiest_cell() -> None:
    factor = soc_taper(np.array([0.5, 0.9, 0.95, 1.0, np.nan]), np.array([0.5, 0.1, 0.05, 0.0, 0.5]), (0.9, 1.0),
                       (0.1, 0.0))
    assert factor == pytest.approx(np.array([[1.0, 1.0], [1.0, 1.0], [0.5, 0.5], [0.0, 0.0], [0.0, 1.0]]))
    inputs = dataclasses.replace(limits_inputs(), max_cell_soc=per_pack(0.95), min_cell_soc=per_pack(0.04))
    _, limits = settled(inputs)
    assert limits.charge_a == pytest.approx(per_pack(0.5 * CHARGE_RATING_A))
    assert limits.discharge_a == pytest.approx(per_pack(0.4 * DISCHARGE_RATING_A))
    _, limits = settled(inputs, limit_settings=LimitsSettings(charge_soc_taper=(0.8, 1.0)))
    assert limits.charge_a == pytest.approx(per_pack(0.25 * CHARGE_RATING_A))


def test_the_model_prediction_caps_the_limit_right_after_a_strong_charge() -> None:
    resting = resting_conditions(P, soc=0.9)
    charged = dataclasses.replace(resting, rc_current_a=np.full_like(resting.rc_current_a, 100.0))
    _, limits = settled(limits_inputs(soc=0.9, conditions=charged))  # the tapers alone would allow the rating
    assert (limits.charge_a < 0.5 * CHARGE_RATING_A).all()
    assert limits.charge_a == pytest.approx(limits.charge_30s_a)
    assert (limits.charge_10s_a >= limits.charge_30s_a).all()  # here t = 0+ binds both: the branches relax
    assert limits.discharge_a == pytest.approx(per_pack(DISCHARGE_RATING_A))


def test_a_rising_limit_ramps_and_a_falling_one_drops_at_once() -> None:
    state = LimitsState.empty(P.pack_count)
    inputs = limits_inputs()
    seen = []
    for _ in range(150):
        state, limits = limits_step(state, inputs, P, TICK_S)
        seen.append(limits.charge_a[0])
    rises = np.diff([0.0, *seen])
    assert rises[:99] == pytest.approx(np.full(99, RAMP_A_PER_TICK))  # 2 A per 0.1 s reaches 200 A in 10 s
    assert seen[-1] == pytest.approx(CHARGE_RATING_A)
    assert seen[-1] == seen[-2]
    state, limits = limits_step(state, limits_inputs(temperature_c=42.5), P, TICK_S)  # half the charge rating
    assert limits.charge_a == pytest.approx(per_pack(0.5 * CHARGE_RATING_A))
    state, limits = limits_step(state, inputs, P, TICK_S)
    assert limits.charge_a == pytest.approx(per_pack(0.5 * CHARGE_RATING_A + RAMP_A_PER_TICK))


def test_not_allowed_gives_zero_in_the_same_step_and_the_ramp_starts_again_from_zero() -> None:
    state, limits = settled(limits_inputs())
    blocked = dataclasses.replace(limits_inputs(), allowed=np.array([False, True]))
    state, limits = limits_step(state, blocked, P, TICK_S)
    assert [limits.charge_a[0], limits.discharge_a[0], limits.power_charge_w[0], limits.discharge_10s_a[0]] == [0.0] * 4
    assert limits.charge_a[1] == pytest.approx(CHARGE_RATING_A)
    state, limits = limits_step(state, limits_inputs(), P, TICK_S)
    assert limits.charge_a[0] == pytest.approx(RAMP_A_PER_TICK)
    assert limits.discharge_a[0] == pytest.approx(RAMP_A_PER_TICK)


def test_the_action_factor_of_the_protection_core_applies_at_once_per_direction() -> None:
    state, _ = settled(limits_inputs())
    state, limits = limits_step(state, limits_inputs(action=(0.0, 0.5)), P, TICK_S)
    assert limits.charge_a == pytest.approx(per_pack(0.0))
    assert limits.charge_30s_a == pytest.approx(per_pack(0.0))
    assert limits.discharge_a == pytest.approx(per_pack(0.5 * DISCHARGE_RATING_A))
    assert limits.discharge_10s_a == pytest.approx(0.5 * P.pulse_discharge_current_a)
    _, limits = limits_step(state, limits_inputs(action=(1.0, 1.0)), P, TICK_S)
    assert limits.charge_a == pytest.approx(per_pack(RAMP_A_PER_TICK))


@pytest.mark.parametrize("field", ["max_cell_voltage_v", "min_cell_voltage_v", "min_temperature_c",
                                   "max_temperature_c", "max_cell_soc", "min_cell_soc", "action_factor"])
def test_an_unknown_pack_input_gives_that_pack_zero(field: str) -> None:
    state, _ = settled(limits_inputs())
    inputs = limits_inputs()
    values = getattr(inputs, field).copy()
    values[1] = np.nan
    _, limits = limits_step(state, dataclasses.replace(inputs, **{field: values}), P, TICK_S)
    for figure in (limits.charge_a, limits.discharge_a, limits.power_charge_w, limits.power_discharge_w,
                   limits.charge_10s_a, limits.discharge_30s_a):
        assert figure[1] == 0.0, field
        assert figure[0] > 0.0, field


@pytest.mark.parametrize("field", ["soc", "temperature_c"])
def test_an_unknown_cell_gives_its_pack_zero(field: str) -> None:
    state, _ = settled(limits_inputs())
    inputs = limits_inputs()
    values = getattr(inputs.cells, field).copy()
    values[0, 2] = np.nan
    cells = dataclasses.replace(inputs.cells, **{field: values})
    _, limits = limits_step(state, dataclasses.replace(inputs, cells=cells), P, TICK_S)
    assert [limits.charge_a[0], limits.discharge_a[0], limits.charge_10s_a[0], limits.discharge_10s_a[0]] == [0.0] * 4
    assert limits.charge_a[1] > 0.0


def test_power_is_the_current_limit_at_the_lowest_predicted_pack_voltage() -> None:
    inputs = limits_inputs(soc=0.6)
    _, limits = settled(inputs)
    charge = simulated_voltages(P, inputs.cells, limits.charge_a, 30.0).sum(axis=2)  # steps x packs
    discharge = simulated_voltages(P, inputs.cells, -limits.discharge_a, 30.0).sum(axis=2)
    assert limits.power_charge_w == pytest.approx(limits.charge_a * charge.min(axis=0), rel=1e-3)
    assert limits.power_discharge_w == pytest.approx(limits.discharge_a * discharge.min(axis=0), rel=1e-3)


finite_or_nan = st.one_of(st.floats(-1e3, 1e3), st.just(float("nan")))
PROPERTY_P = pack_parameters(packs=3, cells=4)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), temperature_c=st.lists(finite_or_nan, min_size=6, max_size=6),
       cell_v=st.lists(st.one_of(st.floats(2.0, 4.6), st.just(float("nan"))), min_size=6, max_size=6),
       soc=st.lists(st.one_of(st.floats(-0.1, 1.1), st.just(float("nan"))), min_size=6, max_size=6),
       action=st.lists(st.one_of(st.floats(-1.0, 2.0), st.just(float("nan"))), min_size=6, max_size=6),
       allowed=st.lists(st.booleans(), min_size=3, max_size=3),
       previous_a=st.lists(st.floats(0.0, 5000.0), min_size=6, max_size=6),
       dt_s=st.one_of(st.floats(-1.0, 1e4), st.just(float("nan"))))
def test_limits_never_exceed_the_datasheet_ratings(seed: int, temperature_c: list[float], cell_v: list[float],
                                                   soc: list[float], action: list[float], allowed: list[bool],
                                                   previous_a: list[float], dt_s: float) -> None:
    p = PROPERTY_P
    inputs = LimitsInputs(
        max_cell_voltage_v=np.array(cell_v[:3]), min_cell_voltage_v=np.array(cell_v[3:]),
        min_temperature_c=np.array(temperature_c[:3]), max_temperature_c=np.array(temperature_c[3:]),
        max_cell_soc=np.array(soc[:3]), min_cell_soc=np.array(soc[3:]),
        cells=random_conditions(p, seed % 1000, soc_range=(0.0, 1.0)), allowed=np.array(allowed),
        action_factor=np.array(action).reshape(3, 2))
    previous = dataclasses.replace(LimitsState.empty(3), published_a=np.array(previous_a).reshape(3, 2))
    state, limits = limits_step(previous, inputs, p, dt_s)
    figures = {
        "charge_a": (limits.charge_a, p.max_charge_current_a),
        "discharge_a": (limits.discharge_a, p.max_discharge_current_a),
        "charge_10s_a": (limits.charge_10s_a, p.pulse_charge_current_a),
        "discharge_10s_a": (limits.discharge_10s_a, p.pulse_discharge_current_a),
        "charge_30s_a": (limits.charge_30s_a, p.max_charge_current_a),
        "discharge_30s_a": (limits.discharge_30s_a, p.max_discharge_current_a),
    }
    for name, (figure, rating) in figures.items():
        assert np.isfinite(figure).all(), name
        assert (figure >= 0.0).all(), name
        assert (figure <= rating + 1e-9).all(), name
    for power in (limits.power_charge_w, limits.power_discharge_w):
        assert np.isfinite(power).all()
        assert (power >= 0.0).all()
    assert (limits.power_charge_w <= limits.charge_a * limits.charge_voltage_v * 1.01).all()
    assert (state.published_a == np.column_stack((limits.charge_a, limits.discharge_a))).all()
    not_allowed = ~np.array(allowed)
    assert (limits.charge_a[not_allowed] == 0.0).all()
    assert (limits.discharge_a[not_allowed] == 0.0).all()


def test_a_large_site_predicts_its_packs_in_turns_and_an_unknown_cell_still_zeroes_at_once() -> None:
    p = pack_parameters(packs=5, cells=4)
    conditions = random_conditions(p, seed=3, soc_range=(0.3, 0.95))
    inputs = limits_inputs(p, conditions=conditions)
    in_turns = LimitsSettings(predicted_cells_per_step=8)  # 2 packs of 4 cells per step: 3 steps for 5 packs
    state = LimitsState.empty(p.pack_count)
    state, _ = limits_step(state, inputs, p, TICK_S, in_turns)
    assert (state.prediction.current_a[:, :2] > 0.0).all()
    assert (state.prediction.current_a[:, 2:] == 0.0).all()  # not predicted yet: nothing allowed
    state, _ = limits_step(state, inputs, p, TICK_S, in_turns)
    state, limits = limits_step(state, inputs, p, TICK_S, in_turns)
    assert state.next_pack == 0
    all_at_once = predict_power(conditions, p)
    assert state.prediction.current_a == pytest.approx(all_at_once.current_a)
    assert state.prediction.pack_voltage.unloaded_v == pytest.approx(all_at_once.pack_voltage.unloaded_v)
    soc = conditions.soc.copy()
    soc[4, 1] = np.nan
    unknown = dataclasses.replace(inputs, cells=dataclasses.replace(conditions, soc=soc))
    state, limits = limits_step(state, unknown, p, TICK_S, in_turns)  # predicts packs 0 and 1 only
    assert limits.charge_a[4] == 0.0
    assert limits.discharge_30s_a[4] == 0.0
    assert (limits.charge_a[:4] > 0.0).all()
