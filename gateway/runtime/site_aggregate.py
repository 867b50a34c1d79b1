"""The site as one battery: parallel packs; limits from the packs that carry current and how they share it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from types import MappingProxyType

import numpy as np

from gateway.bms.site_limits import aggregate_parallel_limits
from gateway.domain.alarms import Severity
from gateway.domain.snapshot import PackSnapshot, SiteSnapshot
from gateway.domain.states import ContactorState


def aggregate_site(packs: Sequence[PackSnapshot]) -> SiteSnapshot:
    """Packs online, admitted and with their contactor closed are on the DC bus: the site current splits between
    them, so the first of them to reach its limit sets the site limit (gateway.bms.site_limits); the others count
    for nothing.
    """
    online = [p for p in packs if p.online]
    eligible = np.array([p.online and p.admitted and p.contactor_state is ContactorState.CLOSED for p in packs],
                        dtype=bool)
    current = np.array([p.pack_current_a for p in packs])
    resistance = np.array([p.pack_resistance_ohm for p in packs])
    current_limits = aggregate_parallel_limits(np.array([p.charge_current_limit_a for p in packs]),
                                               np.array([p.discharge_current_limit_a for p in packs]),
                                               eligible, current, resistance)
    power_limits = aggregate_parallel_limits(np.array([p.charge_power_limit_w for p in packs]),
                                             np.array([p.discharge_power_limit_w for p in packs]),
                                             eligible, current, resistance)
    bus = [p for p, on_bus in zip(packs, eligible, strict=True) if on_bus]
    estimated = [p for p in online if not math.isnan(p.soc)]
    capacity = sum(p.capacity_ah for p in estimated)
    soc = sum(p.soc * p.capacity_ah for p in estimated) / capacity if capacity > 0 else math.nan
    soh = sum(p.soh * p.capacity_ah for p in estimated) / capacity if capacity > 0 else math.nan
    voltages = [p.pack_voltage_v for p in online if not math.isnan(p.pack_voltage_v)]
    masks: dict[Severity, int] = {severity: 0 for severity in Severity if severity is not Severity.NONE}
    for pack in packs:
        for severity in masks:
            masks[severity] |= pack.alarm_mask(severity)
    return SiteSnapshot(
        pack_count=len(packs),
        packs_online=len(online),
        soc=soc,
        soh=soh,
        voltage_v=sum(voltages) / len(voltages) if voltages else math.nan,
        current_a=sum(p.pack_current_a for p in online) if online else math.nan,
        capacity_ah=capacity,
        charge_current_limit_a=current_limits.charge,
        discharge_current_limit_a=current_limits.discharge,
        charge_voltage_limit_v=min((p.charge_voltage_limit_v for p in bus), default=math.nan),
        discharge_voltage_limit_v=max((p.discharge_voltage_limit_v for p in bus), default=math.nan),
        highest_severity=max((p.highest_severity for p in packs), default=Severity.NONE),
        alarm_masks=MappingProxyType(masks),
        latched_mask=_or(p.latched_mask for p in packs),
        unacknowledged_mask=_or(p.unacknowledged_mask for p in packs),
        charge_power_limit_w=power_limits.charge,
        discharge_power_limit_w=power_limits.discharge,
        packs_eligible=len(bus),
        packs_admitted=sum(p.admitted for p in packs),
    )


def _or(masks: Iterable[int]) -> int:
    result = 0
    for mask in masks:
        result |= mask
    return result
