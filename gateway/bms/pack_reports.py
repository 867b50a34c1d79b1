"""What a pack's own BMS reports about its limits and alarms (the common battery CAN protocol's packs,
docs/battery-can.md). The gateway honours the limits as caps: they lower its own limits, never raise them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PackReports:
    """Per pack; NaN where the pack does not report it."""

    charge_voltage_limit_v: FloatArray
    charge_current_limit_a: FloatArray
    discharge_current_limit_a: FloatArray
    discharge_voltage_limit_v: FloatArray
    charge_enabled: FloatArray  # 1 or 0
    discharge_enabled: FloatArray
    protection_flags: FloatArray  # the pack's protection (alarm) bits as one number
    warning_flags: FloatArray

    @classmethod
    def unreported(cls, packs: int) -> PackReports:
        unknown = np.full(packs, np.nan)
        return cls(unknown, unknown, unknown, unknown, unknown, unknown, unknown, unknown)

    def current_caps_a(self) -> FloatArray:
        """packs x 2 (charge, discharge): the most the pack allows, 0 in a direction it disables; NaN: no cap."""
        limits = np.clip(np.column_stack((self.charge_current_limit_a, self.discharge_current_limit_a)), 0.0, None)
        enabled = np.column_stack((self.charge_enabled, self.discharge_enabled))
        caps: FloatArray = np.where(enabled == 0.0, 0.0, limits)
        return caps

    def charge_voltage_v(self, own_v: FloatArray) -> FloatArray:
        """The gateway's charge voltage limit lowered to the pack's; a CVL of 0 is no limit (some packs send it
        before they know better)."""
        reported = np.where(self.charge_voltage_limit_v > 0.0, self.charge_voltage_limit_v, np.nan)
        result: FloatArray = np.fmin(own_v, reported)
        return result

    def discharge_voltage_v(self, own_v: FloatArray) -> FloatArray:
        """The gateway's discharge voltage limit raised to the pack's."""
        result: FloatArray = np.fmax(own_v, self.discharge_voltage_limit_v)
        return result


def capped(values: FloatArray, caps: FloatArray) -> FloatArray:
    """`values` at most `caps` where a cap is known; an unknown (NaN) value stays unknown."""
    result: FloatArray = np.where(np.isnan(caps), values, np.minimum(values, caps))
    return result
