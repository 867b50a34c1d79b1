"""Immutable snapshots: what the engine produces every tick and every output publishes.

Conventions: SI units in names, current positive when charging, `soc`/`soh` as 0..1 ratios, NaN
where a value is unknown (never seen, or stale), never a stale value dressed up as current.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.identity import PackIdentity
from gateway.domain.states import AdmissionStatus, BalancingStatus, ContactorState, PackState, reason_labels

_NO_ALARMS: Mapping[AlarmCode, Severity] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    """One present rule of a pack: the active-event list of the outputs."""

    code: AlarmCode
    severity: Severity
    cell: int | None  # 1-based cell or sensor, None: the pack
    value: float
    threshold: float
    latched: bool
    acknowledged: bool
    rule: int = -1  # the protection rule (index in the table)
    active: bool = True  # false: only latched (the condition cleared, the trip waits for a reset)

    @property
    def status_word(self) -> int:
        """severity in bits 0-7, latched in bit 8, acknowledged in bit 9 (the Modbus list's status register)."""
        return int(self.severity) | (int(self.latched) << 8) | (int(self.acknowledged) << 9)


@dataclass(frozen=True, slots=True)
class PackSnapshot:
    pack_id: str
    index: int
    state: PackState
    online: bool
    data_age_s: float
    identity: PackIdentity | None
    cell_model: str
    pack_voltage_v: float
    pack_current_a: float
    cell_voltage_v: tuple[float, ...]
    temperature_c: tuple[float, ...]
    cell_soc: tuple[float, ...]
    soc: float
    soh: float
    capacity_ah: float
    charge_current_limit_a: float
    discharge_current_limit_a: float
    charge_voltage_limit_v: float
    discharge_voltage_limit_v: float
    contactor_state: ContactorState
    pack_fault_flags: int
    ah_charged: float
    ah_discharged: float
    wh_charged: float
    wh_discharged: float
    equivalent_full_cycles: float
    alarms: Mapping[AlarmCode, Severity] = field(default_factory=lambda: _NO_ALARMS)
    soc_sigma: float = math.nan
    soh_resistance: float = math.nan
    current_bias_a: float = math.nan  # estimated current-sensor error (true = measured + bias)
    cell_soc_sigma: tuple[float, ...] = ()
    cell_capacity_ah: tuple[float, ...] = ()
    cell_resistance_ohm: tuple[float, ...] = ()  # 10 s DC resistance referred to 50 % SoC, 25 degC
    time_at_temperature_s: tuple[float, ...] = ()  # bands of gateway.bms.usage.TEMPERATURE_BAND_EDGES_C
    time_at_soc_s: tuple[float, ...] = ()  # bands of gateway.bms.usage.SOC_BAND_EDGES
    latched_mask: int = 0  # bit = AlarmCode: a trip latched until an authorised reset
    unacknowledged_mask: int = 0  # bit = AlarmCode: present and not acknowledged
    cooling_request: bool = False
    heating_request: bool = False
    contactor_open_request: bool = False
    active_alarms: tuple[ActiveAlarm, ...] = ()  # highest severity first, one per code
    present_rules: tuple[ActiveAlarm, ...] = ()  # every present rule (active or latched), in table order
    charge_power_limit_w: float = math.nan  # the current limit at the lowest predicted pack voltage over 30 s
    discharge_power_limit_w: float = math.nan
    charge_current_limit_10s_a: float = math.nan  # the model's 10 s / 30 s figures (docs/limits.md)
    discharge_current_limit_10s_a: float = math.nan
    charge_current_limit_30s_a: float = math.nan
    discharge_current_limit_30s_a: float = math.nan
    pack_resistance_ohm: float = math.nan  # predicted pack voltage change per ampere over 30 s
    balancing_status: BalancingStatus = BalancingStatus.OFF
    balancing_cells: int = 0  # cells bleeding now
    balancing_mask: int = 0  # bit n: cell n + 1 bleeds (cells 1..32)
    cell_soc_spread: float = math.nan  # highest - lowest cell SoC
    balancing_excess_ah: float = math.nan  # charge above the lowest cell, summed over the cells
    balancing_remaining_s: float = math.nan  # bleeding time still needed (inf: a cell beyond 32 needs it)
    admission_status: AdmissionStatus = AdmissionStatus.ADMITTED
    admission_reasons: int = 0  # AdmissionReason bits the gate finds now (docs/admission.md)
    disconnect_requested: bool = False  # a client asked to disconnect the pack (limits zero, contactor open)
    balancing_enabled: bool = True  # a client may switch balancing off

    @property
    def admitted(self) -> bool:
        return self.admission_status in (AdmissionStatus.ADMITTED, AdmissionStatus.OPERATOR_ADMITTED)

    @property
    def admission_reason_text(self) -> str:
        """`unknown_pack, soh_low`, or empty."""
        return reason_labels(self.admission_reasons)

    @property
    def request_flags(self) -> int:
        """bit 0 cooling, bit 1 heating, bit 2 contactor opening requested."""
        return int(self.cooling_request) | int(self.heating_request) << 1 | int(self.contactor_open_request) << 2

    @property
    def active_alarm_count(self) -> int:
        return len(self.active_alarms)

    @property
    def active_alarm_code(self) -> tuple[float, ...]:
        return tuple(float(a.code) for a in self.active_alarms)

    @property
    def active_alarm_status(self) -> tuple[float, ...]:
        return tuple(float(a.status_word) for a in self.active_alarms)

    @property
    def active_alarm_text(self) -> str:
        """`cell_overvoltage trip cell 3 latched unacknowledged; ...`, or empty."""
        parts = []
        for a in self.active_alarms:
            words = [a.code.label, a.severity.name.lower()]
            words += [f"cell {a.cell}"] if a.cell is not None else []
            words += ["latched"] if a.latched else []
            words += [] if a.acknowledged else ["unacknowledged"]
            parts.append(" ".join(words))
        return "; ".join(parts)

    @property
    def active_alarm_cell(self) -> tuple[float, ...]:
        return tuple(float(a.cell or 0) for a in self.active_alarms)

    @property
    def power_w(self) -> float:
        return self.pack_voltage_v * self.pack_current_a

    @property
    def cell_voltage_min_v(self) -> float:
        return _nan_min(self.cell_voltage_v)

    @property
    def cell_voltage_max_v(self) -> float:
        return _nan_max(self.cell_voltage_v)

    @property
    def temperature_min_c(self) -> float:
        return _nan_min(self.temperature_c)

    @property
    def temperature_max_c(self) -> float:
        return _nan_max(self.temperature_c)

    @property
    def soc_min(self) -> float:
        return _nan_min(self.cell_soc)

    @property
    def soc_max(self) -> float:
        return _nan_max(self.cell_soc)

    def alarm_mask(self, severity: Severity) -> int:
        """Bitfield (bit = AlarmCode value) of the alarms active at exactly this severity."""
        mask = 0
        for code, active in self.alarms.items():
            if active == severity:
                mask |= code.bit
        return mask

    @property
    def highest_severity(self) -> Severity:
        return max(self.alarms.values(), default=Severity.NONE)


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    pack_count: int
    packs_online: int
    soc: float
    soh: float
    voltage_v: float
    current_a: float
    capacity_ah: float
    charge_current_limit_a: float
    discharge_current_limit_a: float
    charge_voltage_limit_v: float
    discharge_voltage_limit_v: float
    highest_severity: Severity
    alarm_masks: Mapping[Severity, int]
    latched_mask: int = 0  # OR over the packs
    unacknowledged_mask: int = 0
    charge_power_limit_w: float = math.nan
    discharge_power_limit_w: float = math.nan
    packs_eligible: int = 0  # online, admitted, with the contactor closed: the packs that carry the site current
    packs_admitted: int = 0
    ems_heartbeat: int = 0  # 0 not supervised, 1 received, 2 lost (gateway.runtime.command_port.HeartbeatState)

    @property
    def power_w(self) -> float:
        return self.voltage_v * self.current_a


@dataclass(frozen=True, slots=True)
class PollStatistics:
    """One poll schedule of one pack (gateway/runtime/poller.py): the pack's communication quality."""

    pack_id: str
    poll: str
    requests: int  # requests sent, retries included
    responses: int  # polls answered in full within their timeout
    timeouts: int  # tries that timed out
    retries: int  # requests sent again after a timeout
    failures: int  # polls that stayed unanswered after every retry
    last_response_time_s: float  # from the request (the try that was answered) to its last response
    response_time_sum_s: float
    recent_success_ratio: float  # answered / finished over the last polls (NaN before the first)
    period_s: float  # the schedule in force (the mapping's, a pack's own, or stretched to the bus-load budget)


@dataclass(frozen=True, slots=True)
class BusStatistics:
    bus: str
    frames_received: int
    frames_decoded: int
    frames_rejected: Mapping[str, int]
    frames_dropped_queue_full: int
    frames_sent: int
    up: bool = True  # the bus is open; False while a lost bus waits to be reopened
    error_state: int = 0  # 0 error-active, 1 error-passive, 2 bus-off (gateway.runtime.bus_counters.BusErrorState)
    error_frames: int = 0
    failures: int = 0  # times the bus was lost
    bus_off: int = 0  # of those, times the controller went bus-off
    reconnects: int = 0  # times a lost bus was opened again
    state_changed_wall_time: float = math.nan  # Unix time of the last change of `up` or `error_state`
    polls: tuple[PollStatistics, ...] = ()
    poll_load_ratio: float = 0.0  # planned poll traffic (requests and answers) / bit rate
    polls_deferred: int = 0  # requests held back because the bus-load budget was spent


@dataclass(frozen=True, slots=True)
class GatewaySnapshot:
    sequence: int
    wall_time: float
    site_name: str
    packs: tuple[PackSnapshot, ...]
    site: SiteSnapshot
    buses: tuple[BusStatistics, ...]
    tick_duration_s: float

    def pack(self, pack_id: str) -> PackSnapshot:
        for pack in self.packs:
            if pack.pack_id == pack_id:
                return pack
        raise KeyError(pack_id)


def _nan_min(values: tuple[float, ...]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return min(finite) if finite else math.nan


def _nan_max(values: tuple[float, ...]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else math.nan
