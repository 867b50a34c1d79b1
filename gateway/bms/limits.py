"""Charge/discharge current and power limits per pack: the state-of-power pipeline (docs/limits.md).

    target    = min(rating x temperature x cell-voltage taper x SoC taper,  model-predicted 30 s current)
                x action factor of the protection core,  0 unless allowed,
                at most the pack's own limit (0 in a direction it disables), where it reports one
    published = min(target, last published + ramp_up_c_rate_per_s x capacity x dt)

Rising limits are rate-limited, falling ones drop at once; a pack not allowed (stale, not admitted,
contactor open) gets 0 in the same step and ramps up from 0 again. Unknown (NaN) inputs give 0,
never the rating. A large site's packs take turns for the model prediction (`predicted_cells_per_step`);
everything else runs for every pack every step. Every array is per pack, or packs x 2 with charge in
column 0, discharge in column 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.cell_conditions import CellConditions
from gateway.bms.cell_tables import CellParameters
from gateway.bms.derating import soc_taper, temperature_factor, unit_factor, voltage_taper
from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.limits_settings import DEFAULT_LIMITS, LimitsSettings
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.pack_reports import PackReports, capped
from gateway.bms.power_prediction import PackCells, PowerPrediction, cell_range, predict_packs


@dataclass(frozen=True)
class LimitsState:
    published_a: FloatArray  # packs x 2: the limits published last step (where a rising limit ramps from)
    prediction: PowerPrediction  # the latest model prediction of each pack
    next_pack: int = 0  # the first pack the next step predicts, when packs take turns

    @classmethod
    def empty(cls, packs: int) -> LimitsState:
        return cls(np.zeros((packs, 2)), PowerPrediction.empty(packs))


@dataclass(frozen=True)
class LimitsInputs:
    """Per pack unless noted."""

    max_cell_voltage_v: FloatArray
    min_cell_voltage_v: FloatArray
    min_temperature_c: FloatArray
    max_temperature_c: FloatArray
    max_cell_soc: FloatArray  # the fullest and the emptiest cell (PackFigures); NaN: unknown
    min_cell_soc: FloatArray
    cells: CellConditions  # per cell: SoC (NaN unknown), temperature, and the estimator's state
    allowed: BoolArray  # fresh data, admitted, contactor closed
    action_factor: FloatArray  # packs x 2, 0..1 from the protection core: 0 blocks a direction, 0.5 halves it
    cell: CellParameters | None = None  # the cell tables read at the cells' SoC and temperature (e.g. the
    # estimator's read of this step), saving the prediction its own read
    reports: PackReports | None = None  # the packs' own limits: caps on the targets and the voltage window


@dataclass(frozen=True)
class CurrentLimits:
    """Per pack: what the plant may draw (magnitudes, A and W) and the voltage window."""

    charge_a: FloatArray
    discharge_a: FloatArray
    charge_voltage_v: FloatArray
    discharge_voltage_v: FloatArray
    power_charge_w: FloatArray  # current limit x the lowest predicted pack voltage at it over 30 s
    power_discharge_w: FloatArray
    charge_10s_a: FloatArray  # model prediction within the pulse rating, temperature-derated and gated
    discharge_10s_a: FloatArray
    charge_30s_a: FloatArray  # likewise within the continuous rating
    discharge_30s_a: FloatArray
    pack_resistance_ohm: FloatArray  # predicted voltage change per ampere over 30 s (for the site's current sharing)


def limits_step(state: LimitsState, inputs: LimitsInputs, parameters: PackParameters, dt_s: float,
                settings: LimitsSettings = DEFAULT_LIMITS) -> tuple[LimitsState, CurrentLimits]:
    packs = PackCells.of(parameters)
    prediction, next_pack, cells_known = _refresh_prediction(state, inputs, packs, settings)
    arrays = parameters.estimator.arrays
    tables = [settings.derating_tables(model) for model in arrays.tables.models]
    temperature = temperature_factor(tables, arrays.model_index[:, 0], inputs.min_temperature_c,
                                     inputs.max_temperature_c)
    taper = voltage_taper(inputs.max_cell_voltage_v, inputs.min_cell_voltage_v, parameters.cell_voltage_limit_v,
                          settings.voltage_taper_v) \
        * soc_taper(inputs.max_cell_soc, inputs.min_cell_soc, settings.charge_soc_taper, settings.discharge_soc_taper)
    known = np.isfinite(inputs.max_cell_voltage_v) & np.isfinite(inputs.min_cell_voltage_v) \
        & np.isfinite(inputs.max_cell_soc) & np.isfinite(inputs.min_cell_soc)  # else a taper would zero one side only
    if cells_known is not None:
        known &= cells_known
    gate = np.where((inputs.allowed & known)[:, None], unit_factor(inputs.action_factor), 0.0)
    derated_rating = parameters.rated_current_a * temperature
    target = np.minimum(derated_rating * taper, prediction.current_a[1]) * gate
    reports = inputs.reports
    caps = None if reports is None else reports.current_caps_a()
    if caps is not None:  # before the ramp: when the pack's own limit rises again, the published one ramps up
        target = capped(target, caps)
    elapsed_s = dt_s if dt_s > 0.0 else 0.0  # NaN or negative: no rise
    ramp_a = settings.ramp_up_c_rate_per_s * elapsed_s * parameters.capacity_ah[:, None]
    published = np.minimum(target, state.published_a + ramp_a)
    predicted = np.minimum(prediction.current_a, packs.rating_a * temperature) * gate
    if caps is not None:
        predicted = capped(predicted, caps[None])
    power = np.fmax(published * prediction.pack_voltage.lowest_v(published), 0.0)  # fmax: unknown voltage -> 0
    limits = CurrentLimits(
        charge_a=published[:, 0],
        discharge_a=published[:, 1],
        charge_voltage_v=parameters.charge_voltage_v if reports is None
        else reports.charge_voltage_v(parameters.charge_voltage_v),
        discharge_voltage_v=parameters.discharge_voltage_v if reports is None
        else reports.discharge_voltage_v(parameters.discharge_voltage_v),
        power_charge_w=power[:, 0],
        power_discharge_w=power[:, 1],
        charge_10s_a=predicted[0, :, 0],
        discharge_10s_a=predicted[0, :, 1],
        charge_30s_a=predicted[1, :, 0],
        discharge_30s_a=predicted[1, :, 1],
        pack_resistance_ohm=prediction.pack_voltage.resistance_ohm[1],
    )
    return LimitsState(published, prediction, next_pack), limits


def _refresh_prediction(state: LimitsState, inputs: LimitsInputs, packs: PackCells,
                        settings: LimitsSettings) -> tuple[PowerPrediction, int, BoolArray | None]:
    """The prediction with this step's packs refreshed, the next step's first pack, and, when packs take turns,
    which packs have every cell's SoC and temperature known now (the prediction of the others is older).
    """
    count, cells = packs.cell_mask.shape
    per_step = max(1, settings.predicted_cells_per_step // cells)
    if per_step >= count:
        return predict_packs(inputs.cells, packs, settings.newton_steps, inputs.cell), 0, None
    start = state.next_pack if state.next_pack < count else 0
    stop = min(start + per_step, count)
    cell = None if inputs.cell is None else cell_range(inputs.cell, start, stop)
    part = predict_packs(inputs.cells.packs(start, stop), packs.packs(start, stop), settings.newton_steps, cell)
    conditions = inputs.cells
    known = np.isfinite(conditions.soc) & np.isfinite(conditions.temperature_c)
    if not packs.cell_mask.all():
        known |= ~packs.cell_mask
    every_cell_known: BoolArray = np.logical_and.reduce(known, axis=1)
    return state.prediction.with_packs(start, part), stop % count, every_cell_known
