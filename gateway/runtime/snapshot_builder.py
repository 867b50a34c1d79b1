"""Turn the arrays of one tick into the immutable snapshot every output publishes."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from gateway.bms.admission import AdmissionState
from gateway.bms.inputs import BmsInputs, BoolArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.protection import ProtectionState
from gateway.bms.protection_rules import ProtectionRule
from gateway.bms.quantities import Quantities
from gateway.bms.step import BmsOutputs, BmsState
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.identity import PackIdentity
from gateway.domain.snapshot import ActiveAlarm, BusStatistics, GatewaySnapshot, PackSnapshot
from gateway.domain.states import AdmissionStatus, BalancingStatus, ContactorState, PackState
from gateway.runtime.balancing_commands import mask_bits
from gateway.runtime.site_aggregate import aggregate_site

_STATE_OF_SEVERITY = {Severity.NONE: PackState.NORMAL, Severity.WARNING: PackState.WARNING,
                      Severity.ALARM: PackState.ALARM, Severity.TRIP: PackState.ALARM}


def present_rules(protection: ProtectionState, rules: tuple[ProtectionRule, ...], quantities: Quantities,
                  pack: int) -> tuple[ActiveAlarm, ...]:
    """Every present rule of the pack (active, or latched waiting for a reset), in table order."""
    return tuple(
        ActiveAlarm(rules[index].code, rules[index].severity, quantities.position(rules[index].quantity, pack),
                    float(quantities[rules[index].quantity][pack]), float(rules[index].threshold[pack]),
                    bool(protection.latched[index, pack]), bool(protection.acknowledged[index, pack]), index,
                    bool(protection.active[index, pack]))
        for index in np.nonzero(protection.present[:, pack])[0].tolist())


def alarm_list(present: tuple[ActiveAlarm, ...]) -> tuple[ActiveAlarm, ...]:
    """The present rules highest severity first; of one code, only the highest present severity."""
    best: dict[AlarmCode, ActiveAlarm] = {}
    for alarm in present:
        held = best.get(alarm.code)
        if held is None or held.severity < alarm.severity:
            best[alarm.code] = alarm
    return tuple(sorted(best.values(), key=lambda a: (-int(a.severity), int(a.code))))


def _row(values: np.ndarray, count: int) -> tuple[float, ...]:
    return tuple(values[:count].tolist())


def _extremes_only(values: tuple[float, ...]) -> tuple[float, ...]:
    """A pack that reports only its extremes: the lowest first, the highest last, and NaN between, where the BMS
    works on made-up cells (runtime/cells_from_extremes.py) that no output should show as readings."""
    if len(values) < 3:
        return values
    return (values[0], *(math.nan,) * (len(values) - 2), values[-1])


@dataclass(frozen=True)
class RemoteFlags:
    """What clients set through the command path (gateway.runtime.remote_control, command_port)."""

    disconnected: BoolArray
    balancing_disabled: BoolArray
    ems_heartbeat: int  # HeartbeatState value


def build_snapshot(sequence: int, site_name: str, parameters: PackParameters, inputs: BmsInputs,
                   state: BmsState, outputs: BmsOutputs, rules: tuple[ProtectionRule, ...],
                   identities: Sequence[PackIdentity | None], admission: AdmissionState | None,
                   buses: tuple[BusStatistics, ...], tick_duration_s: float,
                   remote: RemoteFlags | None = None) -> GatewaySnapshot:
    """`admission` None: admission is off (every pack admitted); `remote` None: no client set anything."""
    packs = []
    usage = state.usage
    cell = outputs.cells
    limits, balancing = outputs.limits, outputs.balancing
    balancing_bits = mask_bits(balancing.mask)
    if admission is None:
        admission_status = np.full(parameters.pack_count, int(AdmissionStatus.ADMITTED))
        admission_reasons = np.zeros(parameters.pack_count, dtype=np.int64)
    else:
        admission_status, admission_reasons = admission.status, admission.reasons
    for i, layout in enumerate(parameters.layouts):
        online = bool(outputs.fresh[i])
        present = present_rules(state.protection, rules, outputs.quantities, i) if outputs.severity[i] > 0 else ()
        alarms = {alarm.code: alarm.severity for alarm in alarm_list(present)}  # of one code, the highest
        never_seen = not np.isfinite(inputs.data_age_s[i]) and not np.isfinite(inputs.temperature_age_s[i])
        if never_seen:
            pack_state = PackState.NOT_SEEN
        elif not online:
            pack_state = PackState.COMM_LOST
        else:
            pack_state = _STATE_OF_SEVERITY[max(alarms.values(), default=Severity.NONE)]
        cells, sensors = layout.series_cells, layout.temperature_sensors
        volts = _row(inputs.cell_voltage_v[i], cells) if online else (math.nan,) * cells
        temperatures = _row(inputs.temperature_c[i], sensors) if online else (math.nan,) * sensors
        if layout.reporting.cells_from_extremes:
            volts, temperatures = _extremes_only(volts), _extremes_only(temperatures)
        try:
            contactor = ContactorState(int(inputs.contactor_state[i]))
        except ValueError:
            contactor = ContactorState.UNKNOWN
        capacity = float(outputs.capacity_ah[i])
        packs.append(PackSnapshot(
            pack_id=layout.pack_id,
            index=i,
            state=pack_state,
            online=online,
            data_age_s=float(max(inputs.data_age_s[i], inputs.temperature_age_s[i])),
            identity=identities[i],
            cell_model=layout.cell_model.cell_id,
            pack_voltage_v=float(inputs.pack_voltage_v[i]) if online else math.nan,
            pack_current_a=float(inputs.pack_current_a[i]) if online else math.nan,
            cell_voltage_v=volts,
            temperature_c=temperatures,
            cell_soc=_row(cell.soc[i], cells),
            soc=float(outputs.soc[i]),
            soh=float(outputs.soh[i]),
            capacity_ah=capacity,
            charge_current_limit_a=float(limits.charge_a[i]),
            discharge_current_limit_a=float(limits.discharge_a[i]),
            charge_voltage_limit_v=float(limits.charge_voltage_v[i]),
            discharge_voltage_limit_v=float(limits.discharge_voltage_v[i]),
            contactor_state=contactor if online else ContactorState.UNKNOWN,
            pack_fault_flags=int(inputs.pack_fault_flags[i]),
            ah_charged=float(usage.ah_charged[i]),
            ah_discharged=float(usage.ah_discharged[i]),
            wh_charged=float(usage.wh_charged[i]),
            wh_discharged=float(usage.wh_discharged[i]),
            equivalent_full_cycles=float((usage.ah_charged[i] + usage.ah_discharged[i])
                                         / (2.0 * parameters.capacity_ah[i])),
            alarms=MappingProxyType(alarms),
            soc_sigma=float(outputs.pack.soc_sigma[i]),
            soh_resistance=float(outputs.pack.soh_resistance[i]),
            current_bias_a=float(np.nanmean(cell.bias_a[i, :cells])) if np.isfinite(cell.bias_a[i, :cells]).any()
            else math.nan,
            cell_soc_sigma=_row(cell.soc_sigma[i], cells),
            cell_capacity_ah=_row(cell.capacity_ah[i], cells),
            cell_resistance_ohm=_row(parameters.estimator.reference_pulse_resistance_ohm[i] + cell.delta_r0_ohm[i],
                                     cells),
            time_at_temperature_s=tuple(usage.time_at_temperature_s[i].tolist()),
            time_at_soc_s=tuple(usage.time_at_soc_s[i].tolist()),
            latched_mask=int(outputs.latched_mask[i]),
            unacknowledged_mask=int(outputs.unacknowledged_mask[i]),
            cooling_request=bool(outputs.actions.cooling[i]),
            heating_request=bool(outputs.actions.heating[i]),
            contactor_open_request=bool(outputs.actions.open_contactor[i]) or bool(remote and remote.disconnected[i]),
            active_alarms=alarm_list(present),
            present_rules=present,
            charge_power_limit_w=float(limits.power_charge_w[i]),
            discharge_power_limit_w=float(limits.power_discharge_w[i]),
            charge_current_limit_10s_a=float(limits.charge_10s_a[i]),
            discharge_current_limit_10s_a=float(limits.discharge_10s_a[i]),
            charge_current_limit_30s_a=float(limits.charge_30s_a[i]),
            discharge_current_limit_30s_a=float(limits.discharge_30s_a[i]),
            pack_resistance_ohm=float(limits.pack_resistance_ohm[i]),
            balancing_status=BalancingStatus(int(balancing.status[i])),
            balancing_cells=int(balancing.bleeding_cells[i]),
            balancing_mask=int(balancing_bits[i]),
            cell_soc_spread=float(balancing.spread_soc[i]),
            balancing_excess_ah=float(balancing.excess_ah[i]),
            balancing_remaining_s=float(balancing.remaining_s[i]),
            admission_status=AdmissionStatus(int(admission_status[i])),
            admission_reasons=int(admission_reasons[i]),
            disconnect_requested=bool(remote.disconnected[i]) if remote else False,
            balancing_enabled=not remote.balancing_disabled[i] if remote else True,
        ))
    site = aggregate_site(packs)
    if remote is not None:
        site = replace(site, ems_heartbeat=remote.ems_heartbeat)
    return GatewaySnapshot(sequence, time.time(), site_name, tuple(packs), site, buses, tick_duration_s)
