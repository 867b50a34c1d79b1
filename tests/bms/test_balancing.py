"""Balancing decisions: the window, the cell choice on excess charge, the dwell, and a closed loop on the
simulator's pack model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gateway.bms.balancing import Balancing, BalancingInputs, BalancingState, balancing_step
from gateway.bms.balancing_settings import BalancingSettings
from gateway.bms.cell_model import load_cell_model
from gateway.domain.states import BalancingStatus
from gateway.settings import DEFAULT_MAPPINGS_DIR
from gateway.sim.pack_model import BALANCING_BLEED_A, PackModel

DEFAULT = BalancingSettings()
CHARGING_A = 10.0  # 0.1 C of the 100 Ah cells below


def make_inputs(soc: list[float] | np.ndarray, *, sigma: float = 0.001, capacity_ah: float | np.ndarray = 100.0,
                current_a: float = CHARGING_A, low_c: float = 25.0, high_c: float = 25.0, fresh: bool = True,
                allowed: bool = True, cell_mask: np.ndarray | None = None) -> BalancingInputs:
    values = np.atleast_2d(np.asarray(soc, dtype=np.float64))
    packs, cells = values.shape
    return BalancingInputs(
        soc=values, soc_sigma=np.full((packs, cells), sigma),
        capacity_ah=np.broadcast_to(np.asarray(capacity_ah, dtype=np.float64), (packs, cells)).copy(),
        cell_mask=np.ones((packs, cells), dtype=bool) if cell_mask is None else cell_mask,
        current_a=np.full(packs, current_a), min_temperature_c=np.full(packs, low_c),
        max_temperature_c=np.full(packs, high_c), fresh=np.full(packs, fresh), allowed=np.full(packs, allowed))


def run(state: BalancingState, x: BalancingInputs, seconds: float, dt_s: float = 1.0,
        settings: BalancingSettings = DEFAULT) -> tuple[BalancingState, Balancing]:
    out = None
    for _ in range(round(seconds / dt_s)):
        state, out = balancing_step(state, x, dt_s, settings)
    assert out is not None
    return state, out


def start(x: BalancingInputs, settings: BalancingSettings = DEFAULT) -> tuple[BalancingState, Balancing]:
    """A fresh state run past the rest dwell with `x`."""
    return run(BalancingState.empty(x.soc.shape), x, settings.rest_dwell_s + 1.0, settings=settings)


def bleeding(out: Balancing, pack: int = 0) -> list[int]:
    return np.flatnonzero(out.mask[pack]).tolist()


def test_no_bleeding_while_discharging_and_a_discharge_stops_it_at_once() -> None:
    soc = [0.50, 0.55, 0.52]
    state, out = run(BalancingState.empty((1, 3)), make_inputs(soc, current_a=-50.0), 600.0)
    assert bleeding(out) == []
    assert out.status[0] == BalancingStatus.WAITING
    state, out = run(state, make_inputs(soc, current_a=CHARGING_A), DEFAULT.rest_dwell_s + 1.0)
    assert bleeding(out) == [1, 2]
    assert out.status[0] == BalancingStatus.ACTIVE
    state, out = balancing_step(state, make_inputs(soc, current_a=-50.0), 0.1, DEFAULT)
    assert bleeding(out) == []  # the first discharging tick, not the next decision
    state, out = run(state, make_inputs(soc, current_a=CHARGING_A), DEFAULT.rest_dwell_s - 5.0)
    assert bleeding(out) == []  # the dwell counts again from the end of the discharge


def test_charging_bleeds_cells_beyond_the_target_and_keeps_them_down_to_the_hysteresis() -> None:
    # leads over the lowest cell: 0.3 %, 0.9 % (within the 1 % target), 1.6 %
    state, out = start(make_inputs([0.500, 0.503, 0.509, 0.516]))
    assert bleeding(out) == [3]
    # bled down to a 0.7 % lead: still above target - hysteresis (0.5 %), it goes on
    state, out = run(state, make_inputs([0.500, 0.503, 0.509, 0.507]), 30.0)
    assert bleeding(out) == [3]
    state, out = run(state, make_inputs([0.500, 0.503, 0.509, 0.504]), 30.0)
    assert bleeding(out) == []
    assert out.status[0] == BalancingStatus.BALANCED
    # a cell not bleeding starts only beyond the target itself
    state, out = run(state, make_inputs([0.500, 0.503, 0.509, 0.508]), 30.0)
    assert bleeding(out) == []
    state, out = run(state, make_inputs([0.500, 0.503, 0.511, 0.508]), 30.0)
    assert bleeding(out) == [2]


def test_rest_opens_the_window_after_the_dwell() -> None:
    resting = make_inputs([0.50, 0.53], current_a=-0.5)  # 0.005 C of discharge: below the rest threshold
    state, out = run(BalancingState.empty((1, 2)), resting, DEFAULT.rest_dwell_s - 2.0)
    assert bleeding(out) == []
    assert out.status[0] == BalancingStatus.WAITING
    state, out = run(state, resting, 3.0)
    assert bleeding(out) == [1]
    _, out = run(state, replace(resting, current_a=np.array([-3.0])), 1.0)  # 0.03 C: a discharge
    assert bleeding(out) == []


def test_temperature_outside_the_window_blocks_with_hysteresis() -> None:
    soc = [0.50, 0.53]
    state, out = start(make_inputs(soc, high_c=44.0))
    assert bleeding(out) == [1]
    state, out = balancing_step(state, make_inputs(soc, high_c=45.5), 0.1, DEFAULT)
    assert bleeding(out) == []
    assert out.status[0] == BalancingStatus.BLOCKED_TEMPERATURE
    state, out = run(state, make_inputs(soc, high_c=44.0), 60.0)  # back inside, not by the 2 degC hysteresis
    assert out.status[0] == BalancingStatus.BLOCKED_TEMPERATURE
    state, out = run(state, make_inputs(soc, high_c=42.5), 1.0)
    assert bleeding(out) == [1]
    state, out = run(state, make_inputs(soc, low_c=4.0), 1.0)
    assert out.status[0] == BalancingStatus.BLOCKED_TEMPERATURE
    state, out = run(state, make_inputs(soc, low_c=6.0), 60.0)
    assert bleeding(out) == []
    _, out = run(state, make_inputs(soc, low_c=7.5), 11.0)
    assert bleeding(out) == [1]


def test_unknown_soc_stale_data_or_a_blocking_fault_stop_bleeding() -> None:
    soc = [0.50, 0.53, 0.52]
    state, out = start(make_inputs(soc))
    assert bleeding(out) == [1, 2]
    for x in (make_inputs([0.50, np.nan, 0.52]), make_inputs(soc, fresh=False), make_inputs(soc, allowed=False),
              make_inputs(soc, high_c=np.nan), make_inputs(soc, current_a=np.nan), make_inputs(soc, sigma=np.nan)):
        _, blocked = balancing_step(state, x, 0.1, DEFAULT)
        assert bleeding(blocked) == []
        assert blocked.status[0] == BalancingStatus.BLOCKED_FAULT
    _, unknown = balancing_step(state, make_inputs([0.50, np.nan, 0.52]), 0.1, DEFAULT)
    assert np.isnan([unknown.spread_soc[0], unknown.excess_ah[0], unknown.remaining_s[0]]).all()
    # a cell that does not exist may be unknown
    absent = make_inputs([0.50, 0.53, np.nan], cell_mask=np.array([[True, True, False]]))
    _, out = start(absent)
    assert bleeding(out) == [1]
    assert out.spread_soc[0] == pytest.approx(0.03)


def test_the_choice_is_on_excess_charge_not_on_soc() -> None:
    one = BalancingSettings(max_bleeding_cells=1)
    # equal SoC leads of 3 %: the larger cell holds more excess charge
    _, out = start(make_inputs([0.50, 0.53, 0.53], capacity_ah=np.array([100.0, 100.0, 110.0])), one)
    assert bleeding(out) == [2]
    # a smaller SoC lead on a larger cell (2.8 % x 120 Ah = 3.36 Ah) beats 3 % x 100 Ah
    x = make_inputs([0.50, 0.53, 0.528], capacity_ah=np.array([100.0, 100.0, 120.0]))
    _, out = start(x, one)
    assert bleeding(out) == [2]
    assert out.excess_ah[0] == pytest.approx(0.03 * 100.0 + 0.028 * 120.0)
    assert out.spread_soc[0] == pytest.approx(0.03)
    # the longest single cell: (2.8 % - 1 %) x 120 Ah at 0.1 A; the total (4.16 Ah) is shared by one cell
    assert out.remaining_s[0] == pytest.approx((0.02 * 100.0 + 0.018 * 120.0) / 0.1 * 3600.0)


def test_at_most_max_bleeding_cells_with_the_largest_excess() -> None:
    leads = np.linspace(0.02, 0.06, 20)
    rng = np.random.default_rng(3)
    order = rng.permutation(20)
    soc = np.concatenate([[0.40], 0.40 + leads[order]])
    _, out = start(make_inputs(soc))
    assert out.bleeding_cells[0] == 8
    largest = {int(i) + 1 for i in np.flatnonzero(order >= 12)}  # the 8 largest leads, shifted by the lowest cell
    assert set(bleeding(out)) == largest
    # the estimate shares the total among the 8 cells at once
    left_ah = float(np.sum(leads - 0.01)) * 100.0
    assert out.remaining_s[0] == pytest.approx(left_ah / 8 / 0.1 * 3600.0)


def test_the_lowest_cell_never_bleeds_and_never_all_cells() -> None:
    many = BalancingSettings(max_bleeding_cells=100, target_spread_soc=1e-6, stop_hysteresis_soc=0.0,
                             confidence_sigmas=0.0)
    _, out = start(make_inputs([0.52, 0.50, 0.51, 0.53]), many)
    assert bleeding(out) == [0, 2, 3]
    _, out = start(make_inputs([0.50, 0.50, 0.53, 0.51]), many)  # a tie at the bottom: neither bleeds
    assert bleeding(out) == [2, 3]
    _, out = start(make_inputs([0.50, 0.50, 0.50]), many)
    assert bleeding(out) == []
    assert out.status[0] == BalancingStatus.BALANCED
    _, out = start(make_inputs([0.7]), many)
    assert bleeding(out) == []


def test_no_bleeding_on_noise_of_the_soc_estimate() -> None:
    soc = [0.50, 0.53]  # 3 % lead; 2 x sqrt(2) x 1.2 % = 3.4 %
    _, out = start(make_inputs(soc, sigma=0.012))
    assert bleeding(out) == []
    assert out.status[0] == BalancingStatus.UNCERTAIN
    _, out = start(make_inputs(soc, sigma=0.01))
    assert bleeding(out) == [1]


def test_the_mask_changes_at_most_once_per_decision_period() -> None:
    fast = BalancingSettings(rest_dwell_s=0.0, max_bleeding_cells=1)
    rng = np.random.default_rng(5)
    state = BalancingState.empty((1, 4))
    masks = []
    for tick in range(1200):  # 120 s of 0.1 s ticks
        # two cells of nearly equal lead trading places in the ranking at every tick, and a current that
        # swings across the rest threshold (0.05 C of discharge every 0.7 s for the first 30 s, then at 60 s)
        noise = rng.normal(0.0, 0.0005, 2)
        soc = [0.50, 0.505, 0.53 + noise[0], 0.53 + noise[1]]
        discharging = (tick % 7 == 0 and tick < 300) or tick == 600
        state, out = balancing_step(state, make_inputs(soc, current_a=-5.0 if discharging else CHARGING_A), 0.1, fast)
        assert not (discharging and out.mask.any())  # no dwell asked for, still never while discharging
        masks.append(out.mask[0].copy())
    on = np.array([mask.any() for mask in masks])
    turned_on = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    turned_off = np.flatnonzero(~on[1:] & on[:-1]) + 1
    assert len(turned_on) >= 3
    assert np.all(np.diff(turned_on) >= 100)  # 10 s apart at least
    assert np.all(turned_on[1:] - turned_off[: len(turned_on) - 1] >= 100)  # off for 10 s at least after a stop
    swaps = [t for t in range(1, len(masks)) if masks[t].any() and masks[t - 1].any()
             and not np.array_equal(masks[t], masks[t - 1])]
    assert swaps == []  # the bleeding cell keeps its place against a near-equal one
    assert masks[-1].any()


def test_top_balancing_only_above_the_soc_floor() -> None:
    top = BalancingSettings(min_soc=0.9)
    state, out = start(make_inputs([0.85, 0.88]), top)
    assert bleeding(out) == []
    assert out.status[0] == BalancingStatus.WAITING
    state, out = run(state, make_inputs([0.87, 0.91]), 11.0, settings=top)
    assert bleeding(out) == [1]
    state, out = run(state, make_inputs([0.86, 0.89]), 11.0, settings=top)  # within the 2 % hysteresis
    assert bleeding(out) == [1]
    _, out = run(state, make_inputs([0.85, 0.879]), 1.0, settings=top)
    assert bleeding(out) == []


def test_disabled_and_uncommandable_cells() -> None:
    _, out = start(make_inputs([0.50, 0.53]), BalancingSettings(enabled=False))
    assert bleeding(out) == []
    assert out.status[0] == BalancingStatus.OFF
    assert out.spread_soc[0] == pytest.approx(0.03)
    soc = np.full(40, 0.50)
    soc[35] = 0.53  # cell 36: beyond the 32 bits of the balancing command
    _, out = start(make_inputs(soc))
    assert bleeding(out) == []
    assert out.remaining_s[0] == np.inf


def test_packs_are_decided_independently() -> None:
    soc = np.array([[0.50, 0.53, 0.50], [0.60, 0.60, 0.65]])
    x = make_inputs(soc)
    x = replace(x, current_a=np.array([CHARGING_A, -50.0]))
    _, out = start(x)
    assert bleeding(out, 0) == [1]
    assert bleeding(out, 1) == []
    assert out.status.tolist() == [BalancingStatus.ACTIVE, BalancingStatus.WAITING]


@pytest.mark.parametrize(("field", "value"), [("target_spread_soc", 0.0), ("stop_hysteresis_soc", 0.02),
                                              ("max_bleeding_cells", 0), ("bleed_current_a", 0.0),
                                              ("min_temperature_c", 50.0), ("temperature_hysteresis_c", 25.0),
                                              ("min_soc", 1.5), ("rest_dwell_s", float("nan")),
                                              ("commandable_cells", 0)])
def test_invalid_settings_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        BalancingSettings(**{field: value})  # type: ignore[arg-type]


def test_closed_loop_on_the_pack_model_converges_within_the_target_and_stays_still() -> None:
    cells, dt_s = 16, 2.0
    model = PackModel(load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah"), cells, 4, initial_soc=0.4,
                      ambient_c=25.0, rng=np.random.default_rng(7))
    model.capacity_factor = np.full(cells, 0.01)  # 2 Ah cells (with the model's +-2 % spread): hours, not days
    model.soc = 0.40 + np.concatenate([[0.0, 0.004, 0.008], np.linspace(0.018, 0.05, cells - 3)])  # 5 % spread
    settings = BalancingSettings(bleed_current_a=BALANCING_BLEED_A)
    state = BalancingState.empty((1, cells))
    masks, statuses = [], []
    for tick in range(int(5400 / dt_s)):
        x = BalancingInputs(model.soc[None, :].copy(), np.full((1, cells), 0.002), model.capacity_ah[None, :].copy(),
                            np.ones((1, cells), dtype=bool), np.array([model.current_a]),
                            np.array([model.temperature_c.min()]), np.array([model.temperature_c.max()]),
                            np.array([True]), np.array([True]))
        state, out = balancing_step(state, x, dt_s, settings)
        model.balancing_mask = out.mask[0].copy()
        model.step(dt_s, 0.2 if tick * dt_s < 3000.0 else 0.0)  # 0.1 C charge, then rest
        masks.append(out.mask[0].copy())
        statuses.append(int(out.status[0]))
    assert np.ptp(model.soc) <= settings.target_spread_soc
    assert np.flatnonzero(model.soc == model.soc.min()).tolist() == [0]  # the lowest cell was never bled
    history = np.array(masks)
    edges = np.diff(np.vstack([np.zeros(cells, dtype=int), history.astype(int), np.zeros(cells, dtype=int)]), axis=0)
    for cell in range(cells):
        stretches_s = (np.flatnonzero(edges[:, cell] == -1) - np.flatnonzero(edges[:, cell] == 1)) * dt_s
        # no chatter: a cell bleeds in a few long stretches (the 8 slots pass from cell to cell as their excess
        # charges overtake each other); cells within the target from the start are left alone
        assert len(stretches_s) <= 3
        assert (cell < 3) == (len(stretches_s) == 0)
        assert np.all(stretches_s >= 300.0)
    assert history.sum(axis=1).max() == settings.max_bleeding_cells
    last_change = max(np.flatnonzero(np.any(history[1:] != history[:-1], axis=1)))
    assert last_change * dt_s < 4000.0  # still for the last 20 minutes ...
    assert statuses[-1] == BalancingStatus.BALANCED  # ... and balanced
