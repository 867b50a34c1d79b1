"""Builders of realistic domain objects for tests of outputs (no engine needed)."""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.identity import PackIdentity
from gateway.domain.snapshot import BusStatistics, GatewaySnapshot, PackSnapshot, PollStatistics, SiteSnapshot
from gateway.domain.states import AdmissionStatus, BalancingStatus, Chemistry, ContactorState, PackState


def make_pack(index: int = 0, cells: int = 32, sensors: int = 8, *, online: bool = True,
              alarms: dict[AlarmCode, Severity] | None = None) -> PackSnapshot:
    cell_voltage = tuple(3.60 + 0.001 * index + 0.0005 * c for c in range(cells))
    temperature = tuple(25.0 + 0.5 * index + 0.1 * s for s in range(sensors))
    cell_soc = tuple(0.55 + 0.001 * c for c in range(cells))
    nan = math.nan
    return PackSnapshot(
        pack_id=f"pack-{index + 1:02d}", index=index,
        state=PackState.NORMAL if online else PackState.COMM_LOST, online=online,
        data_age_s=0.05 if online else 5.0,
        identity=PackIdentity(f"{1000 + index:010d}", "1.2.3", Chemistry.NMC, cells, sensors, 200.0),
        cell_model="nmc-200ah",
        pack_voltage_v=sum(cell_voltage) if online else nan, pack_current_a=-42.5 if online else nan,
        cell_voltage_v=cell_voltage if online else (nan,) * cells,
        temperature_c=temperature if online else (nan,) * sensors,
        cell_soc=cell_soc, soc=0.56, soh=1.0, capacity_ah=200.0,
        charge_current_limit_a=200.0 if online else 0.0, discharge_current_limit_a=400.0 if online else 0.0,
        charge_voltage_limit_v=4.2 * cells, discharge_voltage_limit_v=2.5 * cells,
        contactor_state=ContactorState.CLOSED, pack_fault_flags=0,
        ah_charged=12.5, ah_discharged=30.25, wh_charged=1440.0, wh_discharged=3500.0,
        equivalent_full_cycles=0.107,
        alarms=MappingProxyType(dict(alarms or {})),
        soc_sigma=0.012, soh_resistance=0.93, current_bias_a=-0.42,
        cell_soc_sigma=tuple(0.01 + 0.0001 * c for c in range(cells)),
        cell_capacity_ah=tuple(201.0 + 0.1 * c for c in range(cells)),
        cell_resistance_ohm=tuple(0.000715 + 0.000001 * c for c in range(cells)),
        time_at_temperature_s=(0.0, 0.0, 0.0, 10.0, 3600.0, 7200.0, 60.0, 0.0, 0.0, 0.0),
        time_at_soc_s=(0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0),
        charge_power_limit_w=200.0 * 3.5 * cells if online else 0.0,
        discharge_power_limit_w=400.0 * 3.4 * cells if online else 0.0,
        charge_current_limit_10s_a=300.0 if online else 0.0, discharge_current_limit_10s_a=600.0 if online else 0.0,
        charge_current_limit_30s_a=200.0 if online else 0.0, discharge_current_limit_30s_a=400.0 if online else 0.0,
        pack_resistance_ohm=0.032,
        balancing_status=BalancingStatus.ACTIVE, balancing_cells=2, balancing_mask=0x8000_0005,
        cell_soc_spread=0.031, balancing_excess_ah=12.34, balancing_remaining_s=86400.0,
        admission_status=AdmissionStatus.OPERATOR_ADMITTED, admission_reasons=2 | 32,
    )


def make_snapshot(packs: int = 4, sequence: int = 1, *, offline: tuple[int, ...] = (),
                  alarms: dict[int, dict[AlarmCode, Severity]] | None = None) -> GatewaySnapshot:
    pack_snapshots = tuple(
        make_pack(i, online=i not in offline, alarms=(alarms or {}).get(i)) for i in range(packs)
    )
    online = [p for p in pack_snapshots if p.online]
    site = SiteSnapshot(
        pack_count=packs, packs_online=len(online), soc=0.56, soh=1.0,
        voltage_v=sum(p.pack_voltage_v for p in online) / max(len(online), 1),
        current_a=sum(p.pack_current_a for p in online), capacity_ah=200.0 * len(online),
        charge_current_limit_a=sum(p.charge_current_limit_a for p in online),
        discharge_current_limit_a=sum(p.discharge_current_limit_a for p in online),
        charge_voltage_limit_v=4.2 * 32, discharge_voltage_limit_v=2.5 * 32,
        highest_severity=max((p.highest_severity for p in pack_snapshots), default=Severity.NONE),
        alarm_masks=MappingProxyType({s: 0 for s in Severity if s is not Severity.NONE}),
        charge_power_limit_w=sum(p.charge_power_limit_w for p in online),
        discharge_power_limit_w=sum(p.discharge_power_limit_w for p in online), packs_eligible=len(online),
        packs_admitted=len(pack_snapshots),
    )
    polls = (PollStatistics("pack-00", "status", 40, 37, 3, 2, 1, 0.006, 0.25, 0.95, 0.25),)
    buses = (BusStatistics("demo", 1000, 990, MappingProxyType({"bad_crc": 7, "unknown_id": 3}), 0, 12),
             BusStatistics("cabinet", 500, 500, MappingProxyType({}), 0, 40, polls=polls, poll_load_ratio=0.02))
    return GatewaySnapshot(sequence, 1_760_000_000.0 + sequence, "site", pack_snapshots, site, buses, 0.0012)


def attributes_of(snapshot_type: type) -> set[str]:
    """Dataclass fields and public properties: what a snapshot offers to publish."""
    fields = {field.name for field in dataclasses.fields(snapshot_type)}
    properties = {name for name, value in vars(snapshot_type).items()
                  if isinstance(value, property) and not name.startswith("_")}
    return fields | properties
