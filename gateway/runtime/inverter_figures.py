"""What the inverter is told, from the latest snapshot: the live site figures or the safe state.

The safe state: charge and discharge current limits 0, both enable flags off, the general alarm set, and the
voltage limits at their configured safe values (never CVL = 0: some inverters read it as "no limit").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.codec.battery_can import BatteryCanLayout, BatteryCondition, BatteryFigures
from gateway.domain.snapshot import GatewaySnapshot, PackSnapshot


@dataclass(frozen=True)
class SafeVoltages:
    charge_voltage_v: float  # CVL sent when the site's is unknown
    discharge_voltage_v: float  # DVL sent when the site's is unknown


@dataclass(frozen=True)
class InverterView:
    figures: BatteryFigures
    safe_reason: str | None  # why the limits are held at zero; None: live


def inverter_view(snapshot: GatewaySnapshot | None, age_s: float, stale_after_s: float, layout: BatteryCanLayout,
                  safe: SafeVoltages) -> InverterView:
    """`age_s`: how long ago the snapshot was published; older than `stale_after_s`, nothing in it is used."""
    if snapshot is None:
        return InverterView(_unknown(safe), "no snapshot yet")
    if age_s > stale_after_s:
        return InverterView(_unknown(safe), f"the latest snapshot is {age_s:.1f} s old")
    site = snapshot.site
    online = [p for p in snapshot.packs if p.online]
    alarms, warnings = layout.conditions(dict(site.alarm_masks))
    charge_a = _finite_or_zero(site.charge_current_limit_a)
    discharge_a = _finite_or_zero(site.discharge_current_limit_a)
    reason = None
    if site.packs_eligible == 0:
        reason = "no pack is on the DC bus (online, admitted, contactor closed)"
    elif math.isnan(site.soc):
        reason = "the site's state of charge is unknown"
    if reason is not None:
        charge_a = discharge_a = 0.0
    figures = BatteryFigures(
        charge_voltage_limit_v=_voltage_or(site.charge_voltage_limit_v, safe.charge_voltage_v),
        charge_current_limit_a=charge_a,
        discharge_current_limit_a=discharge_a,
        discharge_voltage_limit_v=_voltage_or(site.discharge_voltage_limit_v, safe.discharge_voltage_v),
        soc=site.soc,
        soh=site.soh,
        voltage_v=site.voltage_v,
        current_a=site.current_a,
        temperature_c=_extreme(online, "temperature_max_c", highest=True),
        cell_voltage_min_v=_extreme(online, "cell_voltage_min_v", highest=False),
        cell_voltage_max_v=_extreme(online, "cell_voltage_max_v", highest=True),
        temperature_min_c=_extreme(online, "temperature_min_c", highest=False),
        temperature_max_c=_extreme(online, "temperature_max_c", highest=True),
        charge_enable=charge_a > 0.0,
        discharge_enable=discharge_a > 0.0,
        module_count=site.packs_online,
        alarms=alarms,
        warnings=warnings,
        general_alarm=reason is not None and site.packs_online == 0,
    )
    return InverterView(figures, reason)


def _unknown(safe: SafeVoltages) -> BatteryFigures:
    nan = math.nan
    return BatteryFigures(
        charge_voltage_limit_v=safe.charge_voltage_v, charge_current_limit_a=0.0, discharge_current_limit_a=0.0,
        discharge_voltage_limit_v=safe.discharge_voltage_v, soc=nan, soh=nan, voltage_v=nan, current_a=nan,
        temperature_c=nan, cell_voltage_min_v=nan, cell_voltage_max_v=nan, temperature_min_c=nan,
        temperature_max_c=nan, charge_enable=False, discharge_enable=False, module_count=0,
        alarms=frozenset({BatteryCondition.BMS_INTERNAL}), general_alarm=True,
    )


def _finite_or_zero(value: float) -> float:
    return value if math.isfinite(value) and value > 0.0 else 0.0


def _voltage_or(value: float, fallback: float) -> float:
    return value if math.isfinite(value) and value > 0.0 else fallback


def _extreme(packs: list[PackSnapshot], name: str, highest: bool) -> float:
    values = [v for p in packs if not math.isnan(v := float(getattr(p, name)))]
    if not values:
        return math.nan
    return max(values) if highest else min(values)
