"""Replay a measurement log through `bms_step`, exactly as the live engine runs it, one row per sample."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gateway.bms.admission import AdmissionGate
from gateway.bms.admission_settings import AdmissionSettings, PackRegistry
from gateway.bms.balancing_settings import DEFAULT_BALANCING, BalancingSettings
from gateway.bms.cell_model import CellModel
from gateway.bms.estimator import start_capacity, start_cells
from gateway.bms.inputs import BmsInputs, FloatArray
from gateway.bms.limits_settings import DEFAULT_LIMITS, LimitsSettings
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.protection import severity_masks
from gateway.bms.protection_rules import build_rules
from gateway.bms.protection_spec import ProtectionTableSpec
from gateway.bms.step import BmsOutputs, BmsState, SafetySettings, bms_step
from gateway.domain.identity import PackIdentity
from gateway.domain.states import AdmissionStatus, ContactorState
from gateway.logs.measurement_log import MeasurementLog
from gateway.runtime.pack_admission import PackAdmission

STALE_TIMEOUT_S = 1e9  # a logged row is fresh when it arrives; gaps are the estimator's business


@dataclass(frozen=True)
class ReplayAdmission:
    """Admission in a replay: the log carries no identity, so the replay is told the pack's serial. The rest of the
    identity is the slot's own (the log's cell and sensor counts, the cell model's chemistry and capacity)."""

    serial: str
    settings: AdmissionSettings
    registry: PackRegistry | None = None  # None: every pack that fits its slot is known


@dataclass(frozen=True)
class ReplaySite:
    """The site's safety settings a replay runs with (`--config`); the defaults of a fresh site otherwise."""

    table: ProtectionTableSpec | None = None  # None: mappings/protection/default.yaml
    limits: LimitsSettings = DEFAULT_LIMITS
    balancing: BalancingSettings = DEFAULT_BALANCING
    admission: ReplayAdmission | None = None  # None: admission off, every sample admitted


@dataclass(frozen=True)
class ReplayResult:
    columns: tuple[str, ...]
    rows: FloatArray  # samples x columns


PACK_COLUMNS = ("time_s", "soc", "soc_sigma", "soh", "soh_resistance", "soc_min", "soc_max", "pack_capacity_ah",
                "current_bias_a", "charge_current_limit_a", "discharge_current_limit_a", "alarm_warning_mask",
                "alarm_alarm_mask", "alarm_trip_mask", "latched_trip_mask", "request_flags", "charge_power_limit_w",
                "discharge_power_limit_w", "charge_current_limit_10s_a", "discharge_current_limit_10s_a",
                "charge_current_limit_30s_a", "discharge_current_limit_30s_a", "balancing_status", "balancing_cells",
                "cell_soc_spread", "admission_status", "admission_reasons")
CELL_COLUMNS = ("soc_cell", "soc_sigma_cell", "capacity_ah", "r0_ohm")


def _columns(cells: int) -> tuple[str, ...]:
    per_cell = [f"{name}_{k}" for name in CELL_COLUMNS for k in range(1, cells + 1)]
    return (*PACK_COLUMNS, *per_cell)


def _mean_of_known(values: FloatArray) -> float:
    """np.nanmean of `values` (the same sum in the same order) at a fraction of its cost; NaN when none is finite."""
    if not np.isfinite(values).any():
        return np.nan
    known = ~np.isnan(values)
    return float(np.where(known, values, 0.0).sum() / np.count_nonzero(known))


def _write_row(row: FloatArray, outputs: BmsOutputs, masks: FloatArray, admission: tuple[int, int],
               reference_resistance_ohm: FloatArray) -> None:
    """The outputs of the replayed pack into `row`, in `_columns` order, after the time."""
    pack, cells, actions, limits, balancing = (outputs.pack, outputs.cells, outputs.actions, outputs.limits,
                                               outputs.balancing)
    requests = float(actions.cooling[0]) + 2.0 * float(actions.heating[0]) + 4.0 * float(actions.open_contactor[0])
    row[1 : len(PACK_COLUMNS)] = (pack.soc[0], pack.soc_sigma[0], pack.soh_capacity[0], pack.soh_resistance[0],
                                  pack.min_cell_soc[0], pack.max_cell_soc[0], pack.capacity_ah[0],
                                  _mean_of_known(cells.bias_a[0]), limits.charge_a[0], limits.discharge_a[0],
                                  masks[0, 0], masks[0, 1], masks[0, 2], outputs.latched_mask[0], requests,
                                  limits.power_charge_w[0], limits.power_discharge_w[0], limits.charge_10s_a[0],
                                  limits.discharge_10s_a[0], limits.charge_30s_a[0], limits.discharge_30s_a[0],
                                  balancing.status[0], balancing.bleeding_cells[0], balancing.spread_soc[0], *admission)
    per_cell = row[len(PACK_COLUMNS) :].reshape(len(CELL_COLUMNS), -1)
    per_cell[0] = cells.soc[0]
    per_cell[1] = cells.soc_sigma[0]
    per_cell[2] = cells.capacity_ah[0]
    np.add(reference_resistance_ohm, cells.delta_r0_ohm[0], out=per_cell[3])


def _start(state: BmsState, parameters: PackParameters, initial_soc: float | None,
           capacity_ah: float | None) -> BmsState:
    """The state the replay starts from: empty, with the given initial SoC and capacity of every cell."""
    everything = np.ones(parameters.cell_mask.shape, dtype=bool)
    settings = parameters.estimator_settings
    if initial_soc is not None:
        estimator = start_cells(state.estimator, everything, np.full(everything.shape, initial_soc),
                                np.full(everything.shape, settings.ekf.restored_soc_sigma), parameters.estimator,
                                settings)
        state = replace(state, estimator=estimator)
    if capacity_ah is not None:
        estimator = start_capacity(state.estimator, everything, np.full(everything.shape, capacity_ah),
                                   parameters.estimator, settings)
        state = replace(state, estimator=estimator)
    return state


def _admission(site: ReplaySite, layout: PackLayout) -> tuple[PackAdmission, PackIdentity | None]:
    if site.admission is None:
        return PackAdmission(None, 1), None
    model = layout.cell_model
    identity = PackIdentity(site.admission.serial, "", model.chemistry, layout.series_cells,
                            layout.temperature_sensors, model.nominal_capacity_ah)
    return PackAdmission(AdmissionGate.of([layout], site.admission.registry, site.admission.settings), 1), identity


def replay(model: CellModel, log: MeasurementLog, initial_soc: float | None = None,
           capacity_ah: float | None = None, site: ReplaySite | None = None) -> ReplayResult:
    site = site or ReplaySite()
    cells, sensors = log.series_cells, log.temperature_c.shape[1]
    layout = PackLayout("replay", cells, sensors, model)
    parameters = PackParameters.build([layout])
    rules = build_rules(parameters, STALE_TIMEOUT_S, 1.0, site.table, temperature_stale_timeout_s=STALE_TIMEOUT_S)
    state = _start(BmsState.empty(parameters, rules), parameters, initial_soc, capacity_ah)
    safety = SafetySettings.of(rules, site.limits, site.balancing)
    admission, identity = _admission(site, layout)
    outputs: BmsOutputs | None = None
    fresh, closed = np.zeros(1), np.full(1, int(ContactorState.CLOSED))
    no_faults = np.zeros(1, dtype=np.int64)
    # per-row sums of a 2-D array add in the same order as the sum of each row alone
    pack_voltage = np.where(np.isnan(log.cell_voltage_v), 0.0, log.cell_voltage_v).sum(axis=1)
    steps_s = np.diff(log.time_s, prepend=log.time_s[:1]).tolist()
    reference_resistance = parameters.estimator.reference_pulse_resistance_ohm[0]
    columns = _columns(cells)
    rows = np.empty((log.rows, len(columns)))
    rows[:, 0] = log.time_s
    for k in range(log.rows):
        inputs = BmsInputs(
            cell_voltage_v=log.cell_voltage_v[k : k + 1],
            temperature_c=log.temperature_c[k : k + 1],
            pack_voltage_v=pack_voltage[k : k + 1],
            pack_current_a=log.current_a[k : k + 1],
            contactor_state=closed,
            pack_fault_flags=no_faults,
            data_age_s=fresh,
            temperature_age_s=fresh,
        )
        gate = admission.step((identity,), outputs, steps_s[k], {}, float(log.time_s[k]))
        state, outputs = bms_step(state, inputs, parameters, rules, steps_s[k], safety=safety, admitted=gate.admitted)
        status = (int(admission.state.status[0]), int(admission.state.reasons[0])) if admission.enabled else (
            int(AdmissionStatus.ADMITTED), 0)
        _write_row(rows[k], outputs, severity_masks(state.protection, rules), status, reference_resistance)
    return ReplayResult(columns, rows)


def write_states(result: ReplayResult, path: Path) -> None:
    np.savetxt(path, result.rows, delimiter=",", header=",".join(result.columns), comments="", fmt="%.7g")
