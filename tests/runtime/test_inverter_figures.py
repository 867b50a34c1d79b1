"""What the inverter is told: live site figures, or the safe state when data is stale or missing."""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

from gateway.codec.battery_can import BatteryCondition, load_battery_can
from gateway.domain.alarms import AlarmCode, Severity
from gateway.runtime.inverter_figures import SafeVoltages, inverter_view
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.factories import make_snapshot

LAYOUT = load_battery_can(DEFAULT_MAPPINGS_DIR, "battery-can-v1", "BMS-GW")
SAFE = SafeVoltages(charge_voltage_v=118.4, discharge_voltage_v=96.0)


def test_live_figures_are_the_site_aggregate() -> None:
    snapshot = make_snapshot(4)
    view = inverter_view(snapshot, 0.1, 3.0, LAYOUT, SAFE)
    site, f = snapshot.site, view.figures
    assert view.safe_reason is None
    assert f.charge_voltage_limit_v == site.charge_voltage_limit_v
    assert f.charge_current_limit_a == site.charge_current_limit_a > 0
    assert f.discharge_current_limit_a == site.discharge_current_limit_a > 0
    assert f.discharge_voltage_limit_v == site.discharge_voltage_limit_v
    assert (f.soc, f.soh, f.voltage_v, f.current_a) == (site.soc, site.soh, site.voltage_v, site.current_a)
    assert f.charge_enable
    assert f.discharge_enable
    assert f.cell_voltage_min_v == min(p.cell_voltage_min_v for p in snapshot.packs)
    assert f.temperature_c == f.temperature_max_c == max(p.temperature_max_c for p in snapshot.packs)
    assert f.module_count == 4
    assert not f.general_alarm


def test_a_stale_snapshot_sends_the_safe_state_with_nothing_from_it() -> None:
    view = inverter_view(make_snapshot(4), 3.5, 3.0, LAYOUT, SAFE)
    f = view.figures
    assert view.safe_reason is not None
    assert "3.5 s old" in view.safe_reason
    assert (f.charge_current_limit_a, f.discharge_current_limit_a) == (0.0, 0.0)
    assert not f.charge_enable
    assert not f.discharge_enable
    assert f.general_alarm
    assert BatteryCondition.BMS_INTERNAL in f.alarms
    assert f.charge_voltage_limit_v == SAFE.charge_voltage_v
    assert f.discharge_voltage_limit_v == SAFE.discharge_voltage_v
    assert math.isnan(f.soc)


def test_no_snapshot_yet_is_the_safe_state() -> None:
    view = inverter_view(None, math.inf, 3.0, LAYOUT, SAFE)
    assert view.safe_reason == "no snapshot yet"
    assert view.figures.charge_current_limit_a == 0.0
    assert view.figures.charge_voltage_limit_v == SAFE.charge_voltage_v


def test_no_pack_on_the_dc_bus_zeroes_the_limits_and_never_sends_cvl_zero() -> None:
    snapshot = make_snapshot(2, offline=(0, 1))
    site = dataclasses.replace(snapshot.site, packs_eligible=0, charge_voltage_limit_v=math.nan,
                               discharge_voltage_limit_v=math.nan, charge_current_limit_a=0.0)
    view = inverter_view(dataclasses.replace(snapshot, site=site), 0.1, 3.0, LAYOUT, SAFE)
    f = view.figures
    assert view.safe_reason is not None
    assert "no pack is on the DC bus" in view.safe_reason
    assert (f.charge_current_limit_a, f.discharge_current_limit_a) == (0.0, 0.0)
    assert f.charge_voltage_limit_v == SAFE.charge_voltage_v > 0
    assert f.general_alarm  # no pack online at all


def test_unknown_soc_keeps_limits_at_zero() -> None:
    snapshot = make_snapshot(2)
    view = inverter_view(dataclasses.replace(snapshot, site=dataclasses.replace(snapshot.site, soc=math.nan)),
                         0.1, 3.0, LAYOUT, SAFE)
    assert view.safe_reason == "the site's state of charge is unknown"
    assert view.figures.charge_current_limit_a == view.figures.discharge_current_limit_a == 0.0


def test_site_alarms_reach_the_conditions() -> None:
    snapshot = make_snapshot(2)
    masks = MappingProxyType({Severity.WARNING: AlarmCode.CHARGE_UNDERTEMPERATURE.bit,
                              Severity.ALARM: 0, Severity.TRIP: AlarmCode.CELL_UNDERVOLTAGE.bit})
    view = inverter_view(dataclasses.replace(snapshot, site=dataclasses.replace(snapshot.site, alarm_masks=masks)),
                         0.1, 3.0, LAYOUT, SAFE)
    assert view.figures.alarms == {BatteryCondition.LOW_VOLTAGE}
    assert view.figures.warnings == {BatteryCondition.LOW_TEMPERATURE_CHARGE}
