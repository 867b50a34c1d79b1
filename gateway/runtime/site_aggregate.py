"""The site as one battery: parallel packs, limits summed over the packs that may carry current."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from types import MappingProxyType

from gateway.domain.alarms import Severity
from gateway.domain.snapshot import PackSnapshot, SiteSnapshot
from gateway.domain.states import ContactorState


def aggregate_site(packs: Sequence[PackSnapshot]) -> SiteSnapshot:
    online = [p for p in packs if p.online]
    healthy = [p for p in online
               if p.highest_severity < Severity.ALARM and p.contactor_state is ContactorState.CLOSED]
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
        charge_current_limit_a=sum(p.charge_current_limit_a for p in healthy),
        discharge_current_limit_a=sum(p.discharge_current_limit_a for p in healthy),
        charge_voltage_limit_v=min((p.charge_voltage_limit_v for p in healthy), default=math.nan),
        discharge_voltage_limit_v=max((p.discharge_voltage_limit_v for p in healthy), default=math.nan),
        highest_severity=max((p.highest_severity for p in packs), default=Severity.NONE),
        alarm_masks=MappingProxyType(masks),
        latched_mask=_or(p.latched_mask for p in packs),
        unacknowledged_mask=_or(p.unacknowledged_mask for p in packs),
    )


def _or(masks: Iterable[int]) -> int:
    result = 0
    for mask in masks:
        result |= mask
    return result
