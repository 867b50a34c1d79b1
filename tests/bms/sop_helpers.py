"""State-of-power test builders: real cell models, realistic cell states, the model simulated by brute force."""

from __future__ import annotations

import numpy as np

from gateway.bms.cell_conditions import CellConditions
from gateway.bms.cell_model import load_cell_model
from gateway.bms.inputs import FloatArray
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.settings import DEFAULT_MAPPINGS_DIR


def pack_parameters(packs: int = 2, cells: int = 8, cell_id: str = "nmc-200ah",
                    cells_per_pack: list[int] | None = None) -> PackParameters:
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, cell_id)
    counts = cells_per_pack or [cells] * packs
    return PackParameters.build([PackLayout(f"p{i}", count, 2, model) for i, count in enumerate(counts)])


def resting_conditions(p: PackParameters, soc: float = 0.5, temperature_c: float = 25.0) -> CellConditions:
    """Every cell at `soc` and `temperature_c`, at rest (no branch current), with the model's own capacity and R0."""
    shape = p.cell_mask.shape
    pairs = p.estimator.arrays.tables.pairs
    return CellConditions(np.where(p.cell_mask, soc, np.nan), np.full(shape, temperature_c), np.zeros((pairs, *shape)),
                          np.zeros(shape), p.estimator.arrays.nominal_capacity_ah.copy(), np.zeros(shape))


def random_conditions(p: PackParameters, seed: int, soc_range: tuple[float, float] = (0.03, 0.99)) -> CellConditions:
    """Cells spread around a random pack SoC and temperature, with branch currents left by a random current history."""
    rng = np.random.default_rng(seed)
    arrays = p.estimator.arrays
    packs, cells = p.cell_mask.shape
    nominal = arrays.nominal_capacity_ah
    soc = np.clip(rng.uniform(*soc_range, packs)[:, None] + rng.normal(0.0, 0.01, (packs, cells)), 0.0, 1.0)
    temperature = rng.uniform(0.0, 45.0, packs)[:, None] + rng.normal(0.0, 1.0, (packs, cells))
    tau = arrays.tables.lookup(arrays.model_index, soc, temperature).rc_tau_s
    branch = np.zeros_like(tau)
    for _ in range(3):  # held currents from -2C to +1.5C, each for 5..300 s
        current = rng.uniform(-2.0, 1.5, packs)[:, None] * nominal
        decay = np.exp(-rng.uniform(5.0, 300.0, packs)[:, None] / tau)
        branch = decay * branch + (1.0 - decay) * current
    return CellConditions(
        soc=np.where(p.cell_mask, soc, np.nan),
        temperature_c=temperature,
        rc_current_a=branch,
        hysteresis=rng.uniform(-1.0, 1.0, (packs, cells)),
        capacity_ah=nominal * rng.uniform(0.8, 1.0, (packs, cells)),
        delta_r0_ohm=arrays.reference_r0_ohm * rng.uniform(0.0, 0.5, (packs, cells)),
    )


def simulated_voltages(p: PackParameters, conditions: CellConditions, current_a: FloatArray, horizon_s: float,
                       step_s: float = 0.1) -> FloatArray:
    """Time-stepped terminal voltage of every cell under a constant pack current (per pack), steps x packs x cells.

    The first row is t = 0+ (R0 responds, the branches have not moved yet). The branches follow the exact
    zero-order-hold recursion and the SoC moves each step; R0, the RC pairs and the hysteresis stay as they
    were at t = 0, as in the prediction's model.
    """
    arrays = p.estimator.arrays
    soc = np.where(p.cell_mask, conditions.soc, 0.5)
    start = arrays.tables.lookup(arrays.model_index, soc, conditions.temperature_c)
    current = current_a[:, None]
    fixed_v = start.hysteresis_v * conditions.hysteresis + (start.r0_ohm + conditions.delta_r0_ohm) * current
    branch = conditions.rc_current_a.copy()
    decay = np.exp(-step_s / start.rc_tau_s)
    rows = [start.ocv_v + fixed_v + (start.rc_r_ohm * branch).sum(axis=0)]
    for step in range(1, round(horizon_s / step_s) + 1):
        branch = decay * branch + (1.0 - decay) * current
        moved = soc + current * step * step_s / (3600.0 * conditions.capacity_ah)
        ocv = arrays.tables.lookup(arrays.model_index, moved, conditions.temperature_c).ocv_v
        rows.append(ocv + fixed_v + (start.rc_r_ohm * branch).sum(axis=0))
    return np.where(p.cell_mask, np.array(rows), np.nan)
