"""The site's limits: the packs on the DC bus share its current; the first to reach its limit sets the pace."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from gateway.domain.states import ContactorState
from gateway.runtime.site_aggregate import aggregate_site
from tests.factories import make_pack


def test_packs_sharing_evenly_add_up() -> None:
    packs = [replace(make_pack(i), pack_current_a=0.0) for i in range(3)]
    site = aggregate_site(packs)
    assert site.packs_eligible == 3
    assert site.charge_current_limit_a == pytest.approx(3 * 200.0)
    assert site.discharge_power_limit_w == pytest.approx(3 * packs[0].discharge_power_limit_w)


def test_a_pack_on_the_bus_that_takes_no_charge_blocks_the_site_charge() -> None:
    packs = [replace(make_pack(i), pack_current_a=0.0) for i in range(3)]
    packs[1] = replace(packs[1], charge_current_limit_a=0.0, charge_power_limit_w=0.0)
    site = aggregate_site(packs)
    assert site.charge_current_limit_a == 0.0  # it would take its share of any charge current
    assert site.charge_power_limit_w == 0.0
    assert site.discharge_current_limit_a == pytest.approx(3 * 400.0)


def test_offline_and_disconnected_packs_carry_nothing_and_limit_nothing() -> None:
    packs = [replace(make_pack(i), pack_current_a=0.0) for i in range(3)]
    packs[1] = make_pack(1, online=False)
    packs[2] = replace(packs[2], contactor_state=ContactorState.OPEN, charge_current_limit_a=0.0)
    site = aggregate_site(packs)
    assert site.packs_eligible == 1
    assert site.packs_online == 2
    assert site.charge_current_limit_a == pytest.approx(200.0)


def test_an_uneven_measured_split_lowers_the_site_limit_below_the_sum() -> None:
    packs = [replace(make_pack(i), pack_current_a=current) for i, current in enumerate((-90.0, -30.0))]
    site = aggregate_site(packs)
    # the first pack carries 3/4 of the discharge: it reaches its 400 A when the site draws 533 A, not 800 A
    assert site.discharge_current_limit_a == pytest.approx(400.0 / 0.75)


def test_no_pack_on_the_bus_gives_zero_and_unknown_voltage_limits() -> None:
    site = aggregate_site([make_pack(0, online=False)])
    assert (site.charge_current_limit_a, site.discharge_current_limit_a, site.packs_eligible) == (0.0, 0.0, 0)
    assert math.isnan(site.charge_voltage_limit_v)
