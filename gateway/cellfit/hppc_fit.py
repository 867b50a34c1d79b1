"""Equivalent-circuit parameters from an HPPC test, one set per pulse block (SoC level).

Each block window runs from just before the discharge pulse through the charge pulse, the C/2
discharge and the following rest. Over it the terminal voltage is modelled as

    v = OCV(soc) + offset + R0 i + sum_k R_k z_k(tau_k)

with z_k the exact zero-order-hold RC responses. The rows of the long (C/2) discharge are left out
of the fit, and the rest after it gets its own offset: where the OCV curve is steep, the error of
the OCV curve over those 10 % of SoC would otherwise be fitted as polarisation. The pulses give R0
and the fast pair, the relaxation after the long discharge the slow pair.

For fixed time constants the model is linear in (R0, R_k, offsets), so the time constants come
from a grid search and the resistances from linear least squares; only physically valid
(non-negative) solutions are accepted.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray
from gateway.cellfit.rc_filter import filtered_currents
from gateway.cellfit.segments import FloatArray, charge_throughput_ah, split_steps
from gateway.errors import LogError
from gateway.logs.measurement_log import MeasurementLog

PRE_PULSE_S = 30.0
MIN_BLOCKS = 3
MAX_BLOCK_RMSE_V = 0.025  # a block fitting worse than this is not an RC circuit's behaviour (or a broken step)
TAU_GRID_S = np.geomspace(0.3, 3000.0, 28)
MIN_TAU_RATIO = 2.0  # the slow pair is at least this much slower than the fast one
PULSE_MAX_S = 60.0  # a discharge at least this long is the block's partial discharge, not a pulse


@dataclass(frozen=True)
class BlockFit:
    number: int  # 1-based block number in the test
    soc: float
    r0_ohm: float
    rc: tuple[tuple[float, float], ...]  # (R, tau) per pair
    offset_v: float
    rmse_v: float


@dataclass(frozen=True)
class HppcFit:
    temperature_c: float
    blocks: tuple[BlockFit, ...]
    skipped_blocks: tuple[int, ...]


def _pulse_starts(log: MeasurementLog) -> list[int]:
    """First row of each block: a discharge step shorter than a minute that follows a long rest."""
    steps = split_steps(log.current_a)
    starts = []
    for before, step in itertools.pairwise(steps):
        rest_s = log.time_s[before.stop - 1] - log.time_s[before.start]
        pulse_s = log.time_s[step.stop - 1] - log.time_s[max(step.start - 1, 0)]
        if before.sign == 0 and step.sign < 0 and rest_s > 600.0 and pulse_s < PULSE_MAX_S:
            starts.append(step.start)
    if not starts:
        raise LogError(log.path, "current_a", "no HPPC pulse blocks found (a short discharge pulse after a rest)",
                       "give an HPPC test: rest, discharge pulse, rest, charge pulse, rest, partial discharge")
    return starts


def _partial_discharge(time_s: FloatArray, current_a: FloatArray) -> tuple[BoolArray, FloatArray]:
    """(rows outside the block's partial discharge, 1.0 from its start on); all rows and zeros without one."""
    outside = np.ones(len(time_s), dtype=bool)
    from_start = np.zeros(len(time_s))
    for step in split_steps(current_a):
        if step.sign < 0 and time_s[step.stop - 1] - time_s[step.start] >= PULSE_MAX_S:
            outside[step.rows] = False
            from_start[step.start :] = 1.0
            break
    return outside, from_start


def _fit_window(time_s: FloatArray, current_a: FloatArray, voltage_v: FloatArray,
                ocv_v: FloatArray) -> tuple[float, tuple[tuple[float, float], ...], float, float]:
    taus = TAU_GRID_S
    used, after = _partial_discharge(time_s, current_a)
    responses = filtered_currents(time_s, current_a, taus)[used]
    current, after = current_a[used], after[used]
    target = (voltage_v - ocv_v)[used]
    best: tuple[float, tuple[tuple[float, float], ...], float, float] | None = None
    best_error = np.inf
    for i, j in itertools.combinations(range(len(taus)), 2):
        if taus[j] < MIN_TAU_RATIO * taus[i]:
            continue
        design = np.column_stack([current, responses[:, i], responses[:, j], 1.0 - after, after])
        solution, *_ = np.linalg.lstsq(design, target, rcond=None)
        if np.any(solution[:3] < 0.0):
            continue
        error = float(np.sqrt(np.mean((design @ solution - target) ** 2)))
        if error < best_error:
            best_error = error
            rc = ((float(solution[1]), float(taus[i])), (float(solution[2]), float(taus[j])))
            best = (float(solution[0]), rc, float(solution[3]), error)
    if best is None:
        raise ValueError("no non-negative equivalent circuit fits this block")
    return best


def fit_hppc(log: MeasurementLog, start_soc: float, capacity_ah: float,
             ocv: Callable[[FloatArray], FloatArray]) -> HppcFit:
    """`ocv(soc)` is the OCV curve of the same temperature (from the OCV test)."""
    starts = _pulse_starts(log)
    soc = start_soc + charge_throughput_ah(log.time_s, log.current_a) / capacity_ah
    voltage = log.cell_voltage_v[:, 0]
    blocks = []
    skipped: list[int] = []
    for number, start in enumerate(starts):
        first = int(np.searchsorted(log.time_s, log.time_s[start] - PRE_PULSE_S))
        last = starts[number + 1] - 1 if number + 1 < len(starts) else len(log.time_s)
        window = slice(first, last)
        try:
            r0, rc, offset, rmse = _fit_window(log.time_s[window], log.current_a[window], voltage[window],
                                               ocv(soc[window]))
        except ValueError:
            skipped.append(number + 1)
            continue
        blocks.append(BlockFit(number + 1, float(soc[start - 1]), r0, rc, offset, rmse))
    skipped += [b.number for b in blocks if b.rmse_v > MAX_BLOCK_RMSE_V]
    blocks = [b for b in blocks if b.rmse_v <= MAX_BLOCK_RMSE_V]
    if len(blocks) < MIN_BLOCKS:
        raise LogError(log.path, "current_a", f"only {len(blocks)} HPPC blocks could be fitted (skipped {skipped})",
                       f"give an HPPC test with at least {MIN_BLOCKS} clean pulse blocks")
    temperature = float(np.mean(log.temperature_c[starts, 0]))
    return HppcFit(temperature, tuple(blocks), tuple(sorted(skipped)))
