"""Site limits of parallel packs: only eligible packs count, and the unevenly shared current meets the weakest first."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.bms.site_limits import aggregate_parallel_limits

MILLIOHM = 1e-3


def test_an_offline_pack_contributes_nothing() -> None:
    site = aggregate_parallel_limits(
        limit_charge=np.array([100.0, 100.0, 100.0, 100.0]), limit_discharge=np.array([200.0, 200.0, 200.0, 0.0]),
        eligible=np.array([True, True, True, False]), measured_current_a=np.zeros(4),
        pack_resistance_ohm=np.full(4, 3.0 * MILLIOHM))
    assert site.charge == pytest.approx(300.0)
    assert site.discharge == pytest.approx(600.0)
    assert site.charge_share.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])


def test_a_measured_60_40_split_lets_the_pack_taking_more_reach_its_limit_first() -> None:
    site = aggregate_parallel_limits(
        limit_charge=np.array([100.0, 100.0]), limit_discharge=np.array([200.0, 200.0]),
        eligible=np.array([True, True]), measured_current_a=np.array([60.0, 40.0]),  # charging at 100 A
        pack_resistance_ohm=np.full(2, 3.0 * MILLIOHM))
    assert site.charge == pytest.approx(100.0 / 0.6)  # not 200: at 167 A the first pack takes its 100 A
    assert site.charge_share.tolist() == pytest.approx([0.6, 0.4])
    # the discharge direction is not flowing now: the packs' conductances share it (equal here)
    assert site.discharge == pytest.approx(400.0)
    # discharging at 100 A with the same split: the measured shares now apply to discharge
    site = aggregate_parallel_limits(np.array([100.0, 100.0]), np.array([200.0, 100.0]), np.array([True, True]),
                                     np.array([-60.0, -40.0]), np.full(2, 3.0 * MILLIOHM))
    assert site.discharge == pytest.approx(min(200.0 / 0.6, 100.0 / 0.4))
    assert site.charge == pytest.approx(200.0)


def test_without_significant_current_the_conductances_set_the_shares() -> None:
    site = aggregate_parallel_limits(np.array([100.0, 100.0]), np.array([300.0, 100.0]), np.array([True, True]),
                                     np.array([3.0, 2.0]), np.array([2.0 * MILLIOHM, 4.0 * MILLIOHM]))
    assert site.charge_share.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert site.charge == pytest.approx(150.0)  # the low-resistance pack takes 2/3 of the current
    assert site.discharge == pytest.approx(300.0)  # both reach their limits together: the sum


def test_a_blocked_pack_with_zero_limits_does_not_block_the_site_but_an_eligible_one_does() -> None:
    limits = np.array([100.0, 0.0, 100.0])
    resistance = np.full(3, 3.0 * MILLIOHM)
    blocked = aggregate_parallel_limits(limits, limits, np.array([True, False, True]), np.zeros(3), resistance)
    assert blocked.charge == pytest.approx(200.0)
    connected = aggregate_parallel_limits(limits, limits, np.array([True, True, True]), np.zeros(3), resistance)
    assert connected.charge == 0.0  # it is in parallel and would take its share


def test_unknown_values_never_raise_the_site_limit() -> None:
    resistance = np.full(2, 3.0 * MILLIOHM)
    unknown_limit = aggregate_parallel_limits(np.array([100.0, np.nan]), np.array([100.0, 100.0]),
                                              np.array([True, True]), np.zeros(2), resistance)
    assert unknown_limit.charge == 0.0
    unknown_resistance = aggregate_parallel_limits(np.array([100.0, 50.0]), np.array([100.0, 100.0]),
                                                   np.array([True, True]), np.zeros(2),
                                                   np.array([np.nan, 3.0 * MILLIOHM]))
    assert unknown_resistance.charge == pytest.approx(100.0)  # even split
    unknown_current = aggregate_parallel_limits(np.array([100.0, 50.0]), np.array([100.0, 100.0]),
                                                np.array([True, True]), np.array([np.nan, 80.0]), resistance)
    assert unknown_current.charge == pytest.approx(100.0)  # the conductances, not the measurement
    nobody = aggregate_parallel_limits(np.array([100.0]), np.array([100.0]), np.array([False]), np.zeros(1),
                                       resistance[:1])
    assert (nobody.charge, nobody.discharge) == (0.0, 0.0)


def test_a_pack_flowing_against_the_site_current_takes_no_share() -> None:
    site = aggregate_parallel_limits(np.array([100.0, 100.0, 10.0]), np.full(3, 100.0), np.full(3, True),
                                     np.array([70.0, 50.0, -20.0]), np.full(3, 3.0 * MILLIOHM))
    assert site.charge_share.tolist() == pytest.approx([70 / 120, 50 / 120, 0.0])
    assert site.charge == pytest.approx(100.0 * 120 / 70)


limits_strategy = st.lists(st.floats(0.0, 1000.0), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), limits=limits_strategy)
def test_the_site_limit_never_exceeds_the_sum_of_the_eligible_limits(data: st.DataObject, limits: list[float]) -> None:
    packs = len(limits)
    eligible = np.array(data.draw(st.lists(st.booleans(), min_size=packs, max_size=packs)))
    current = np.array(data.draw(st.lists(st.floats(-500.0, 500.0), min_size=packs, max_size=packs)))
    resistance = np.array(data.draw(st.lists(st.floats(1e-4, 1e-1), min_size=packs, max_size=packs)))
    site = aggregate_parallel_limits(np.array(limits), np.array(limits), eligible, current, resistance)
    total = float(np.array(limits)[eligible].sum())
    for value, share in ((site.charge, site.charge_share), (site.discharge, site.discharge_share)):
        assert 0.0 <= value <= total * (1 + 1e-12)
        assert (share[~eligible] == 0.0).all()
        assert share.sum() == pytest.approx(1.0 if eligible.any() else 0.0)
        # no eligible pack is pushed past its limit at the site limit
        assert (value * share <= np.array(limits) * (1 + 1e-9) + 1e-9).all()
