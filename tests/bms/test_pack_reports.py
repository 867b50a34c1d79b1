"""What a pack's own BMS reports (the common battery CAN protocol's packs) in one BMS step: its limits cap the
gateway's and never raise them, its alarm bits raise pack_protection, and a pack that switches its contactor
itself or reports only extremes is treated as such."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gateway.bms.cell_model import load_cell_model
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.pack_reports import PackReports
from gateway.bms.step import BmsOutputs, BmsState, bms_step
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.pack_reporting import PackReporting
from gateway.domain.states import BalancingStatus
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.bms.helpers import TICK_S, empty_state, inputs, parameters, rules

NAN = float("nan")
PACKS = 4


def run(p: PackParameters, reports: PackReports | None, seconds: float,
        state: BmsState | None = None) -> tuple[BmsState, BmsOutputs]:
    r = rules(p)
    state = state or empty_state(p, r)
    x = dataclasses.replace(inputs(p), reports=reports)
    outputs = None
    for _ in range(round(seconds / TICK_S)):
        state, outputs = bms_step(state, x, p, r, TICK_S)
    assert outputs is not None
    return state, outputs


def reports(**columns: list[float]) -> PackReports:
    return dataclasses.replace(PackReports.unreported(PACKS), **{k: np.array(v) for k, v in columns.items()})


def test_the_packs_own_limits_cap_the_gateways_and_never_raise_them() -> None:
    p = parameters(packs=PACKS, cells=24, sensors=4)
    _, own = run(p, None, 25.0)  # long enough for the ramp to reach the ratings
    assert own.limits.charge_a.min() > 100.0
    assert own.limits.discharge_a.min() > 300.0
    _, out = run(p, reports(charge_current_limit_a=[50.0, 1e4, NAN, 80.0],
                            discharge_current_limit_a=[1e4, 120.0, NAN, 30.0],
                            charge_enabled=[1.0, 1.0, NAN, 0.0], discharge_enabled=[1.0, NAN, 1.0, 1.0]), 25.0)
    assert out.limits.charge_a.tolist() == pytest.approx([50.0, own.limits.charge_a[1], own.limits.charge_a[2], 0.0])
    assert out.limits.discharge_a.tolist() == pytest.approx(
        [own.limits.discharge_a[0], 120.0, own.limits.discharge_a[2], 30.0])
    assert out.limits.charge_30s_a[0] <= 50.0
    assert out.limits.discharge_10s_a[3] <= 30.0
    assert out.limits.power_charge_w[0] < own.limits.power_charge_w[0]


def test_the_voltage_window_narrows_to_the_packs() -> None:
    p = parameters(packs=PACKS, cells=24, sensors=4)  # nmc: 24 x 4.2 = 100.8 V, 24 x 2.5 = 60 V
    _, out = run(p, reports(charge_voltage_limit_v=[99.6, 120.0, 0.0, NAN],
                            discharge_voltage_limit_v=[72.0, 50.0, 0.0, NAN]), TICK_S)
    assert out.limits.charge_voltage_v.tolist() == pytest.approx([99.6, 100.8, 100.8, 100.8])  # a CVL of 0: no limit
    assert out.limits.discharge_voltage_v.tolist() == pytest.approx([72.0, 60.0, 60.0, 60.0])


def test_a_rising_own_limit_ramps_the_published_one() -> None:
    p = parameters(packs=PACKS, cells=24, sensors=4)
    state, out = run(p, reports(charge_enabled=[0.0] * PACKS), 25.0)
    assert out.limits.charge_a.tolist() == [0.0] * PACKS
    _, out = run(p, reports(charge_enabled=[1.0] * PACKS), TICK_S, state)
    assert out.limits.charge_a.max() <= 0.1 * 200.0 * TICK_S + 1e-9  # ramp_up_c_rate_per_s x capacity x dt


def test_the_packs_alarm_bits_raise_pack_protection() -> None:
    p = parameters(packs=PACKS, cells=24, sensors=4)
    _, out = run(p, reports(protection_flags=[0.0, 1 << 3, NAN, 0.0], warning_flags=[0.0, 0.0, NAN, 1 << 1]), 1.0)
    severity = out.severity.tolist()
    assert severity == [0, int(Severity.ALARM), 0, int(Severity.WARNING)]
    assert out.limits.charge_a[1] == out.limits.discharge_a[1] == 0.0
    assert out.limits.charge_a[3] > 0.0  # a warning informs
    mask = int(AlarmCode.PACK_PROTECTION.bit)
    assert out.unacknowledged_mask[1] == mask
    assert out.unacknowledged_mask[3] == mask


def test_a_pack_that_reports_only_extremes_and_no_contactor() -> None:
    """A trip asks to open the contactor; such a pack cannot be asked, so no contactor fault follows. Its made-up
    cells never bleed."""
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    extremes = PackReporting(cells_from_extremes=True, contactor_reported=False, identity_reported=False)
    p = PackParameters.build([PackLayout("ref", 24, 4, model), PackLayout("pylon", 24, 4, model, extremes)])
    r = rules(p)
    x = inputs(p)
    x.cell_voltage_v[:, 0] = 4.35  # above the trip threshold of 4.2 + 0.1 V
    state, out = empty_state(p, r), None
    for _ in range(round(4.0 / TICK_S)):
        state, out = bms_step(state, x, p, r, TICK_S)
    assert out is not None
    assert out.actions.open_contactor.tolist() == [True, True]
    assert [bool(int(codes) & AlarmCode.CONTACTOR_FAULT.bit) for codes in out.unacknowledged_mask] == [True, False]
    _, healthy = bms_step(empty_state(p, r), inputs(p), p, r, TICK_S)
    assert healthy.balancing.status.tolist() == [int(BalancingStatus.WAITING), int(BalancingStatus.BLOCKED_FAULT)]
