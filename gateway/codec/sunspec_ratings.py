"""The nameplate figures of the SunSpec device: per pack from its cell model and layout, summed for the bank.

They give the static rating points (AHRtg, WHRtg, WChaRteMax, WDisChaRteMax) and choose each scale factor once,
so that the largest value the point can carry on this site fits its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.bms.cell_model import CellModel


@dataclass(frozen=True, slots=True)
class PackRating:
    pack_id: str
    series_cells: int
    capacity_ah: float
    nominal_voltage_v: float  # pack
    max_voltage_v: float  # pack: cells at their maximum charge voltage
    continuous_charge_a: float
    continuous_discharge_a: float
    pulse_a: float  # the larger 10 s pulse rating of the two directions

    @classmethod
    def of(cls, pack_id: str, series_cells: int, model: CellModel) -> PackRating:
        limits, capacity = model.limits, model.nominal_capacity_ah
        return cls(pack_id, series_cells, capacity, series_cells * model.spec.nominal_voltage_v,
                   series_cells * limits.max_charge_voltage_v, limits.max_continuous_charge_c_rate * capacity,
                   limits.max_continuous_discharge_c_rate * capacity,
                   max(limits.max_pulse_charge_c_rate_10s, limits.max_pulse_discharge_c_rate_10s) * capacity)

    @property
    def energy_wh(self) -> float:
        return self.capacity_ah * self.nominal_voltage_v


@dataclass(frozen=True, slots=True)
class BankRating:
    """Parallel packs: capacities and currents add, the voltage is the highest pack's."""

    packs: tuple[PackRating, ...]

    @classmethod
    def of(cls, packs: Sequence[PackRating]) -> BankRating:
        return cls(tuple(packs))

    @property
    def capacity_ah(self) -> float:
        return sum(p.capacity_ah for p in self.packs)

    @property
    def energy_wh(self) -> float:
        return sum(p.energy_wh for p in self.packs)

    @property
    def charge_power_w(self) -> float:
        return sum(p.continuous_charge_a * p.nominal_voltage_v for p in self.packs)

    @property
    def discharge_power_w(self) -> float:
        return sum(p.continuous_discharge_a * p.nominal_voltage_v for p in self.packs)

    @property
    def pulse_a(self) -> float:
        return sum(p.pulse_a for p in self.packs)

    @property
    def max_voltage_v(self) -> float:
        return max((p.max_voltage_v for p in self.packs), default=0.0)

    @property
    def pack_pulse_a(self) -> float:
        return max((p.pulse_a for p in self.packs), default=0.0)
