"""Per-cell extended Kalman filter for SoC and current-sensor bias, vectorised over packs x cells.

    x = [soc, bias_a]
    soc'  = soc + (i + bias) dt / (3600 Q)                                   (i > 0 charging)
    v     = OCV(soc, T) + M(soc, T) h + (R0(soc, T) + dR0) (i + bias) + sum_k R_k(soc, T) z_k

Q (capacity) and dR0 (resistance growth) come from their own slower estimators
(capacity_wtls.py, resistance_rls.py): folding them into this filter let unmodelled voltage error
leak into both (docs/estimation.md shows the comparison). The RC branch currents z_k and the
hysteresis state h are deterministic functions of the measured current, integrated exactly
(zero-order hold). The measurement noise grows with the modelled polarisation, so the filter
trusts the voltage most at rest (the OCV correction) and least under heavy, changing load.

A Kalman filter's own covariance assumes white errors; the model error here is correlated, and a
filter tuned for accuracy is overconfident. So the published sigma comes from a shadow variance:
the same prediction/correction recursion with the error levels one must actually expect (capacity
and current-offset errors accumulating with charge and time, OCV-table error at the voltage). It
shrinks where the OCV is steep and grows on a flat plateau or while coasting.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from gateway.bms.cell_tables import CellParameters, CellTables, IntArray
from gateway.bms.inputs import BoolArray, FloatArray


@dataclass(frozen=True)
class EkfSettings:
    voltage_noise_v: float = 0.004  # sensor noise, quantisation and offset, plus OCV-table error
    model_error_fraction: float = 1.0  # of the modelled polarisation, as extra voltage noise (1 sigma)
    soc_noise_per_s: float = 2e-5  # SoC random walk (self-discharge, leakage), per sqrt(s)
    bias_noise_c_rate_per_s: float = 1e-6  # current-sensor offset drift, in C per sqrt(s)
    initial_bias_sigma_c_rate: float = 0.001  # unknown offset at start, in C
    restored_soc_sigma: float = 0.05  # when started at a given SoC without its covariance
    min_initial_soc_sigma: float = 0.02
    # A long rest reveals the current sensor's offset: the true current is then taken as zero.
    rest_current_c_rate: float = 0.02
    rest_min_s: float = 300.0
    rest_reading_sigma_c_rate: float = 0.005  # per second of readings: sensor noise plus what a resting pack draws
    max_gap_s: float = 10.0  # longer intervals coast: no integration, SoC uncertainty grows
    coasting_current_c_rate: float = 0.5  # assumed size of a current the sensor did not report
    # The reported sigma: the same recursion with realistic, correlated error levels (see module doc).
    reported_capacity_error_fraction: float = 0.03  # of the SoC moved; persists, so it adds up linearly
    reported_bias_error_c_rate: float = 0.002  # likewise, over time
    reported_ocv_error_v: float = 0.005
    reported_error_correlation_s: float = 300.0  # voltage errors this far apart count as independent
    reported_soc_floor: float = 0.01  # systematic model error that no averaging removes


@dataclass(frozen=True)
class EkfState:
    """Arrays are packs x cells."""

    soc: FloatArray
    bias_a: FloatArray
    p_soc: FloatArray  # covariance entries
    p_cross: FloatArray
    p_bias: FloatArray
    p_reported: FloatArray  # shadow SoC variance of the white errors, published with drift_sigma
    drift_sigma: FloatArray  # shadow SoC sigma of the persistent errors (capacity, offset) since the last anchor
    rc_current_a: FloatArray  # pairs x packs x cells
    hysteresis: FloatArray  # -1 (after discharge) .. +1 (after charge)
    coasted_soc: FloatArray  # charge (in SoC) that may have been missed since coasting began
    branch_doubt_a: FloatArray  # how far the RC branch currents may be off after coasting (decays)
    quiet_s: FloatArray  # how long the measured current has stayed below the rest threshold
    initialised: BoolArray

    @classmethod
    def empty(cls, shape: tuple[int, int], pairs: int) -> EkfState:
        zeros = np.zeros(shape)
        return cls(np.full(shape, 0.5), zeros, zeros, zeros, zeros, zeros, zeros, np.zeros((pairs, *shape)), zeros,
                   zeros, zeros, zeros, np.zeros(shape, dtype=bool))


@dataclass(frozen=True)
class CellArrays:
    """Per-cell constants (packs x cells)."""

    tables: CellTables
    model_index: IntArray
    nominal_capacity_ah: FloatArray
    reference_r0_ohm: FloatArray
    hysteresis_rate: FloatArray  # per unit of SoC moved


@dataclass(frozen=True)
class Prediction:
    """The filter's modelled voltage for the last correction (used by the R0 estimator)."""

    voltage_without_growth_v: FloatArray  # model voltage with dR0 = 0
    corrected: BoolArray
    residual_v: FloatArray  # measured - modelled voltage before the correction; NaN where none was made


def initialise(state: EkfState, which: BoolArray, soc: FloatArray, soc_sigma: FloatArray,
               cells: CellArrays, settings: EkfSettings) -> EkfState:
    """(Re)start the cells in `which` at `soc` with the given sigma and a zero-bias prior."""
    bias_variance = (settings.initial_bias_sigma_c_rate * cells.nominal_capacity_ah) ** 2
    return EkfState(
        soc=np.where(which, soc, state.soc),
        bias_a=np.where(which, 0.0, state.bias_a),
        p_soc=np.where(which, soc_sigma**2, state.p_soc),
        p_cross=np.where(which, 0.0, state.p_cross),
        p_bias=np.where(which, bias_variance, state.p_bias),
        p_reported=np.where(which, np.maximum(soc_sigma**2 - settings.reported_soc_floor**2, 0.0),
                            state.p_reported),
        drift_sigma=np.where(which, 0.0, state.drift_sigma),
        rc_current_a=np.where(which, 0.0, state.rc_current_a),
        hysteresis=np.where(which, 0.0, state.hysteresis),
        coasted_soc=np.where(which, 0.0, state.coasted_soc),
        branch_doubt_a=np.where(which, 0.0, state.branch_doubt_a),
        quiet_s=np.where(which, 0.0, state.quiet_s),
        initialised=state.initialised | which,
    )


def soc_from_voltage(cell_voltage_v: FloatArray, current_a: FloatArray, temperature_c: FloatArray,
                     cells: CellArrays, settings: EkfSettings) -> tuple[FloatArray, FloatArray]:
    """SoC and its sigma from one loaded voltage: OCV inversion after removing the R0 drop."""
    grid = np.linspace(0.0, 1.0, 401)
    soc = np.empty(cell_voltage_v.shape)
    at_rest = np.nan_to_num(cell_voltage_v - np.nan_to_num(current_a) * cells.reference_r0_ohm)
    for model in np.unique(cells.model_index):
        chosen = cells.model_index == model
        temperatures = temperature_c[chosen]
        temperature = float(np.nanmean(temperatures)) if np.isfinite(temperatures).any() else 25.0
        curve = cells.tables.lookup(np.full(grid.shape, model, dtype=np.intp), grid,
                                    np.full(grid.shape, temperature)).ocv_v
        soc[chosen] = np.interp(at_rest[chosen], curve, grid)
    params = cells.tables.lookup(cells.model_index, soc, temperature_c)
    voltage_sigma = settings.voltage_noise_v + 0.5 * np.abs(np.nan_to_num(current_a) * params.r0_ohm)
    sigma = np.clip(voltage_sigma / np.maximum(params.ocv_slope_v, 1e-3), settings.min_initial_soc_sigma, 0.3)
    return soc, sigma


def _rc_and_hysteresis(state: EkfState, current: FloatArray, dt_s: float, params: CellParameters,
                       scale: FloatArray, cells: CellArrays) -> tuple[FloatArray, FloatArray]:
    decay = np.exp(-dt_s / params.rc_tau_s)
    rc = decay * state.rc_current_a + (1.0 - decay) * current
    approach = np.exp(-np.abs(current) * scale * cells.hysteresis_rate)
    hysteresis = approach * state.hysteresis + (1.0 - approach) * np.sign(current)
    return rc, hysteresis


def ekf_step(state: EkfState, current_a: FloatArray, cell_voltage_v: FloatArray, temperature_c: FloatArray,
             measured: BoolArray, running: BoolArray, dt_s: float, capacity_ah: FloatArray,
             delta_r0_ohm: FloatArray, cells: CellArrays, settings: EkfSettings) -> tuple[EkfState, Prediction]:
    """Advance every initialised cell in `running` by dt, then correct those whose voltage was measured.

    `current_a` is the pack current broadcast to its cells; NaN (or dt > max_gap_s) makes the cell
    coast: no integration, and its SoC sigma grows by the charge it may have missed since it began.
    """
    active = running & state.initialised
    scale = dt_s / (3600.0 * capacity_ah)
    coasting = ~np.isfinite(current_a) | (dt_s > settings.max_gap_s)
    any_coasting = bool(coasting.any())
    if any_coasting:
        current = np.where(coasting, 0.0, current_a)
        b = np.where(coasting, 0.0, scale)  # d soc' / d bias
        missed_a = np.abs(np.where(np.isfinite(current_a), current_a,
                                   settings.coasting_current_c_rate * cells.nominal_capacity_ah))
        # The missed current persists through a dropout: its SoC error adds up linearly, not in quadrature.
        coasted = np.where(coasting, state.coasted_soc + missed_a * scale, 0.0)
        unknown: FloatArray | None = missed_a
        missed_variance: FloatArray | float = coasted**2 - np.where(coasting, state.coasted_soc, 0.0) ** 2
    else:
        current, b, missed_variance = current_a, scale, 0.0
        unknown = None
        coasted = state.coasted_soc if not state.coasted_soc.any() else np.zeros_like(state.coasted_soc)
    moved = (current + state.bias_a) * b
    soc = np.clip(state.soc + moved, 0.0, 1.0)
    p_soc = state.p_soc + 2.0 * b * state.p_cross + b * b * state.p_bias + settings.soc_noise_per_s**2 * dt_s \
        + missed_variance
    p_cross = state.p_cross + b * state.p_bias
    p_bias = state.p_bias + (settings.bias_noise_c_rate_per_s * cells.nominal_capacity_ah) ** 2 * dt_s
    p_reported = state.p_reported + missed_variance
    drift = state.drift_sigma + settings.reported_capacity_error_fraction * np.abs(moved) \
        + settings.reported_bias_error_c_rate * dt_s / 3600.0

    params = cells.tables.lookup(cells.model_index, soc, temperature_c)  # one lookup serves both steps
    rc, hysteresis = _rc_and_hysteresis(state, current, dt_s, params, scale, cells)
    true_current = current + state.bias_a
    rc_voltage = (params.rc_r_ohm * rc).sum(axis=0)
    without_growth = params.ocv_v + params.hysteresis_v * hysteresis + params.r0_ohm * true_current + rc_voltage
    resistance = params.r0_ohm + delta_r0_ohm
    predicted = without_growth + delta_r0_ohm * true_current
    polarisation = np.abs(params.r0_ohm * current) + np.abs(params.rc_r_ohm * rc).sum(axis=0)
    noise = settings.voltage_noise_v**2 + (settings.model_error_fraction * polarisation) ** 2
    doubt = state.branch_doubt_a
    if any_coasting or doubt.any():
        doubt, noise = _branch_doubt(doubt, coasting, unknown, state.rc_current_a, dt_s, params, noise)

    h_soc, h_bias = params.ocv_slope_v, resistance
    ph_soc = p_soc * h_soc + p_cross * h_bias
    ph_bias = p_cross * h_soc + p_bias * h_bias
    correcting = active & measured & np.isfinite(cell_voltage_v)
    if any_coasting:
        correcting &= ~coasting
    weight = np.where(correcting, 1.0 / (ph_soc * h_soc + ph_bias * h_bias + noise), 0.0)
    innovation = np.where(correcting, cell_voltage_v - predicted, 0.0)
    # The shadow recursion counts one independent voltage error per correlation time, not per sample.
    independent_every = max(settings.reported_error_correlation_s / max(dt_s, 1e-3), 1.0)
    reported_noise = (noise + settings.reported_ocv_error_v**2) * independent_every
    reported_total = p_reported + drift * drift
    reported_weight = np.where(correcting, 1.0 / (reported_total * h_soc * h_soc + reported_noise), 0.0)
    kept = 1.0 - reported_total * h_soc * h_soc * reported_weight  # the share of the variance left
    new = EkfState(
        soc=np.clip(soc + ph_soc * weight * innovation, 0.0, 1.0),
        bias_a=state.bias_a + ph_bias * weight * innovation,
        p_soc=p_soc - ph_soc * ph_soc * weight,
        p_cross=p_cross - ph_soc * ph_bias * weight,
        p_bias=p_bias - ph_bias * ph_bias * weight,
        p_reported=p_reported * kept,
        drift_sigma=drift * np.sqrt(kept),
        rc_current_a=rc,
        hysteresis=hysteresis,
        coasted_soc=coasted,
        branch_doubt_a=doubt,
        quiet_s=np.where((np.abs(current) < settings.rest_current_c_rate * cells.nominal_capacity_ah) & ~coasting,
                         state.quiet_s + dt_s, 0.0),
        initialised=state.initialised,
    )
    resting = active & (new.quiet_s >= settings.rest_min_s)
    if resting.any():
        new = _observe_offset_at_rest(new, resting, current, dt_s, cells, settings)
    if not active.all():
        new = _keep_inactive(state, new, active)
    return new, Prediction(without_growth, correcting, np.where(correcting, innovation, np.nan))


def _branch_doubt(doubt: FloatArray, coasting: BoolArray, unknown_a: FloatArray | None, rc_current_a: FloatArray,
                  dt_s: float, params: CellParameters, noise: FloatArray) -> tuple[FloatArray, FloatArray]:
    """While coasting the RC branches follow a current nobody saw; afterwards their error decays with tau.

    The branches may be off by their own current plus the unseen one, which may well be larger than
    the assumed C-rate; the margin of 2 keeps the filter from chasing that error into the SoC.
    """
    decayed = doubt * np.exp(-dt_s / params.rc_tau_s.max(axis=0))
    if unknown_a is None:  # nothing coasts now
        doubt = decayed
    else:
        worst = 2.0 * (unknown_a + np.abs(rc_current_a).max(axis=0))
        doubt = np.where(coasting, np.maximum(doubt, worst), decayed)
    doubt = np.where(doubt < 1e-3, 0.0, doubt)
    return doubt, noise + (params.rc_r_ohm.sum(axis=0) * doubt) ** 2


def _observe_offset_at_rest(state: EkfState, resting: BoolArray, current_a: FloatArray, dt_s: float,
                            cells: CellArrays, settings: EkfSettings) -> EkfState:
    """Kalman update with the pseudo-measurement `true current = 0`, i.e. bias = -measured current."""
    reading_variance = (settings.rest_reading_sigma_c_rate * cells.nominal_capacity_ah) ** 2 / max(dt_s, 1e-3)
    weight = np.where(resting, 1.0 / (state.p_bias + reading_variance), 0.0)
    innovation = np.where(resting, -current_a - state.bias_a, 0.0)
    return replace(
        state,
        soc=np.clip(state.soc + state.p_cross * weight * innovation, 0.0, 1.0),
        bias_a=state.bias_a + state.p_bias * weight * innovation,
        p_soc=state.p_soc - state.p_cross**2 * weight,
        p_cross=state.p_cross - state.p_cross * state.p_bias * weight,
        p_bias=state.p_bias - state.p_bias**2 * weight,
    )


def _keep_inactive(old: EkfState, new: EkfState, active: BoolArray) -> EkfState:
    kept = {f.name: np.where(active, getattr(new, f.name), getattr(old, f.name)) for f in fields(EkfState)
            if f.name != "initialised"}
    return EkfState(**kept, initialised=old.initialised)


def reported_soc_sigma(state: EkfState, settings: EkfSettings) -> FloatArray:
    """The published SoC sigma: the shadow variances plus the systematic floor."""
    result: FloatArray = np.sqrt(np.maximum(state.p_reported, 0.0) + state.drift_sigma**2
                                 + settings.reported_soc_floor**2)
    return result
