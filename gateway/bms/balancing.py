"""Cell balancing decisions for all packs at once: which cells to bleed, when, and how far from balanced.

The gateway only chooses the cells; the pack bleeds them with its own resistors (docs/balancing.md).

* **Statistic.** Per cell, the lead over the pack's lowest cell in SoC, `delta = soc - soc_min`, and the charge
  that lead stands for, `excess_ah = delta x capacity_ah` (the charge to bleed from the cell to bring it down to
  the lowest: a larger cell at the same lead holds more and needs longer). A cell is a candidate while its lead is
  beyond the target (start above `target_spread_soc`, go on down to `target_spread_soc - stop_hysteresis_soc`,
  so a balanced pack stays within the target) and beyond the estimates' noise (`delta > confidence_sigmas x
  sqrt(sigma^2 + sigma_lowest^2)`); the lowest cell never is. At most `max_bleeding_cells` per pack bleed at
  once: the candidates with the largest excess charge (a cell already bleeding counts `stop_hysteresis_soc`
  more, so that two close cells do not swap places at every decision).
* **Window.** The pack has not discharged (current below -`rest_current_c_rate` x capacity) for `rest_dwell_s`:
  it charges or rests (a dwell on charging too: regenerative braking in a drive cycle is no charge); all its
  temperatures within [`min_temperature_c`, `max_temperature_c`] (with hysteresis); its data fresh, the pack
  `allowed` (no latched trip, no blocking alarm: the caller decides), every cell's SoC, sigma and capacity known;
  and, for top balancing, its fullest cell at `min_soc` or above (with hysteresis).
* **Dwell.** The cell choice is made at most every `decision_period_s` and held in between; leaving the window
  stops every cell at once, and a restart waits for the next decision, so a mask turns on no sooner than
  `decision_period_s` after it was last changed.

Public API::

    state = BalancingState.empty((packs, cells))
    state, out = balancing_step(state, BalancingInputs(...), dt_s, settings)   # every tick
    out.status (BalancingStatus per pack), out.mask (packs x cells), out.bleeding_cells, out.spread_soc,
    out.excess_ah, out.remaining_s

The state is not persisted: after a restart the mask starts empty and the window waits `rest_dwell_s`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.balancing_settings import BalancingSettings
from gateway.bms.inputs import BoolArray, FloatArray, IntArray
from gateway.domain.states import BalancingStatus


@dataclass(frozen=True)
class BalancingInputs:
    """One tick's inputs; NaN where unknown."""

    soc: FloatArray  # packs x cells, 0..1
    soc_sigma: FloatArray  # packs x cells, standard deviation of the SoC estimate
    capacity_ah: FloatArray  # packs x cells, learned capacity
    cell_mask: BoolArray  # packs x cells, True where the cell exists
    current_a: FloatArray  # packs, positive = charging
    min_temperature_c: FloatArray  # packs
    max_temperature_c: FloatArray  # packs
    fresh: BoolArray  # packs: data fresh
    allowed: BoolArray  # packs: nothing blocks balancing (no latched trip, no blocking alarm)


@dataclass(frozen=True)
class BalancingState:
    mask: BoolArray  # packs x cells: the cells bleeding
    since_decision_s: FloatArray  # packs: time since the last decision or forced stop
    quiet_s: FloatArray  # packs: time since the pack last discharged (or its current was unknown)
    temperature_ok: BoolArray  # packs: temperatures in the window (hysteresis state)
    above_floor: BoolArray  # packs: fullest cell above min_soc (hysteresis state)

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> BalancingState:
        packs = shape[0]
        return cls(np.zeros(shape, dtype=bool), np.full(packs, np.inf), np.zeros(packs), np.ones(packs, dtype=bool),
                   np.zeros(packs, dtype=bool))


@dataclass(frozen=True)
class Balancing:
    """Per pack (and per cell for the mask); the figures are NaN where a cell's SoC or capacity is unknown."""

    status: IntArray  # packs, BalancingStatus values
    mask: BoolArray  # packs x cells: cells to bleed (never beyond commandable_cells, never the lowest cell)
    bleeding_cells: IntArray  # packs
    spread_soc: FloatArray  # packs: highest - lowest cell SoC
    excess_ah: FloatArray  # packs: sum over cells of (soc - soc_min) x capacity_ah
    remaining_s: FloatArray  # packs: bleeding time still needed to bring every cell within the target (inf: a
    # cell beyond commandable_cells needs it); time in the window, not wall-clock time


def balancing_step(state: BalancingState, inputs: BalancingInputs, dt_s: float,
                   settings: BalancingSettings) -> tuple[BalancingState, Balancing]:
    """Advance by `dt_s`: decide the bleed mask of every pack and report its status and figures."""
    s = settings
    cells = inputs.cell_mask
    packs, width = cells.shape
    rows = np.arange(packs)
    soc, sigma, capacity = inputs.soc, inputs.soc_sigma, inputs.capacity_ah
    cell_known = np.isfinite(soc) & np.isfinite(sigma) & np.isfinite(capacity) & (capacity > 0.0)
    known = cells.any(axis=1) & np.all(cell_known | ~cells, axis=1)  # packs with every figure
    valid = cells & known[:, None]
    soc_f = np.where(valid, soc, 0.0)
    sigma_f = np.where(valid, sigma, 0.0)
    capacity_f = np.where(valid, capacity, 0.0)

    lowest = np.argmin(np.where(valid, soc_f, np.inf), axis=1)
    soc_min = soc_f[rows, lowest]
    soc_max = np.max(np.where(valid, soc_f, -np.inf), axis=1, initial=-np.inf)
    delta = np.where(valid, soc_f - soc_min[:, None], 0.0)
    excess_ah = delta * capacity_f
    margin = s.confidence_sigmas * np.sqrt(sigma_f**2 + sigma_f[rows, lowest][:, None] ** 2)
    is_lowest = np.zeros_like(cells)
    is_lowest[rows, lowest] = True
    commandable = np.arange(width) < s.commandable_cells
    beyond_target = valid & ~is_lowest & ((state.mask & (delta > s.target_spread_soc - s.stop_hysteresis_soc))
                                          | (delta > s.target_spread_soc))
    wants = beyond_target & commandable & (delta > margin)
    doubtful = beyond_target & commandable & ~(delta > margin)

    # the window
    pack_capacity = _mean_capacity(capacity, cells)
    current = inputs.current_a
    discharging = ~(current >= -s.rest_current_c_rate * pack_capacity)  # an unknown current is no rest either
    quiet = np.where(discharging, 0.0, state.quiet_s + dt_s)
    rested = ~discharging & (quiet >= s.rest_dwell_s)
    t_low, t_high = inputs.min_temperature_c, inputs.max_temperature_c
    h = s.temperature_hysteresis_c
    temperature_ok = np.where(state.temperature_ok,
                              (t_low >= s.min_temperature_c) & (t_high <= s.max_temperature_c),
                              (t_low >= s.min_temperature_c + h) & (t_high <= s.max_temperature_c - h))
    above_floor = np.where(known, np.where(state.above_floor, soc_max >= s.min_soc - s.min_soc_hysteresis,
                                           soc_max >= s.min_soc), state.above_floor)
    fault = ~(inputs.fresh & inputs.allowed & known & np.isfinite(current) & np.isfinite(t_low)
              & np.isfinite(t_high))
    gate = ~fault & temperature_ok & rested & above_floor & s.enabled

    # the decision, at most every decision_period_s; leaving the window stops at once
    since = state.since_decision_s + dt_s
    decide = gate & (since >= s.decision_period_s)
    mask = state.mask & gate[:, None]
    if decide.any():
        rank_ah = excess_ah + np.where(state.mask, s.stop_hysteresis_soc * capacity_f, 0.0)
        chosen = _choose(wants, rank_ah, _cell_limit(cells, s.max_bleeding_cells))
        mask = np.where(decide[:, None], chosen, mask)
    stopped = ~gate & state.mask.any(axis=1)
    since = np.where(decide | stopped, 0.0, since)

    bleeding = mask.sum(axis=1)
    status = np.select(
        [np.full(packs, not s.enabled), fault, ~temperature_ok, ~(rested & above_floor), bleeding > 0,
         ~wants.any(axis=1) & doubtful.any(axis=1), ~wants.any(axis=1)],
        [BalancingStatus.OFF, BalancingStatus.BLOCKED_FAULT, BalancingStatus.BLOCKED_TEMPERATURE,
         BalancingStatus.WAITING, BalancingStatus.ACTIVE, BalancingStatus.UNCERTAIN, BalancingStatus.BALANCED],
        BalancingStatus.WAITING).astype(np.int64)
    outputs = Balancing(status, mask, bleeding.astype(np.int64), np.where(known, soc_max - soc_min, np.nan),
                        np.where(known, excess_ah.sum(axis=1), np.nan),
                        _remaining_s(delta, capacity_f, known, commandable, cells, s))
    return BalancingState(mask, since, quiet, temperature_ok, above_floor), outputs


def _mean_capacity(capacity_ah: FloatArray, cells: BoolArray) -> FloatArray:
    """Per pack: the mean of the known cell capacities (0 where none is known)."""
    known = cells & np.isfinite(capacity_ah)
    count = known.sum(axis=1)
    result: FloatArray = np.where(known, capacity_ah, 0.0).sum(axis=1) / np.maximum(count, 1)
    return result


def _cell_limit(cells: BoolArray, max_bleeding_cells: int) -> IntArray:
    """Per pack: how many cells may bleed at once (never all of them)."""
    result: IntArray = np.minimum(max_bleeding_cells, np.maximum(cells.sum(axis=1) - 1, 0))
    return result


def _choose(wants: BoolArray, key: FloatArray, limit: IntArray) -> BoolArray:
    """The `limit` cells of each pack with the largest `key` among those in `wants`."""
    rows = np.arange(wants.shape[0])[:, None]
    order = np.argsort(-np.where(wants, key, -np.inf), axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[rows, order] = np.arange(wants.shape[1])
    result: BoolArray = wants & (rank < limit[:, None])
    return result


def _remaining_s(delta: FloatArray, capacity_f: FloatArray, known: BoolArray, commandable: BoolArray,
                 cells: BoolArray, s: BalancingSettings) -> FloatArray:
    """Bleeding time to bring every cell within the target: the longest single cell, or the total charge
    shared among the cells that may bleed at once, whichever is longer."""
    left_ah = np.maximum(delta - s.target_spread_soc, 0.0) * capacity_f
    limit = np.maximum(_cell_limit(cells, s.max_bleeding_cells), 1)
    time_s = np.maximum(left_ah.max(axis=1, initial=0.0), left_ah.sum(axis=1) / limit) * 3600.0 / s.bleed_current_a
    stuck = np.any((left_ah > 0.0) & ~commandable, axis=1)
    result: FloatArray = np.where(known, np.where(stuck, np.inf, time_s), np.nan)
    return result
