"""The state a power prediction starts from, per cell: the estimator's view plus the cell temperatures."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.bms.estimator import EstimatorState
from gateway.bms.inputs import FloatArray


@dataclass(frozen=True)
class CellConditions:
    """Arrays are packs x cells; the RC branch currents pairs x packs x cells."""

    soc: FloatArray  # NaN: unknown
    temperature_c: FloatArray  # NaN: unknown
    rc_current_a: FloatArray
    hysteresis: FloatArray  # -1 (after discharge) .. +1 (after charge)
    capacity_ah: FloatArray  # learned
    delta_r0_ohm: FloatArray  # learned R0 growth

    @classmethod
    def from_estimator(cls, estimator: EstimatorState, soc: FloatArray, temperature_c: FloatArray) -> CellConditions:
        """`soc` as published (NaN where not initialised); the rest from the estimator's state."""
        return cls(soc, temperature_c, estimator.ekf.rc_current_a, estimator.ekf.hysteresis, estimator.capacity_ah,
                   estimator.delta_r0_ohm)

    def packs(self, start: int, stop: int) -> CellConditions:
        """The packs start..stop-1 (views)."""
        return CellConditions(self.soc[start:stop], self.temperature_c[start:stop],
                              self.rc_current_a[:, start:stop], self.hysteresis[start:stop],
                              self.capacity_ah[start:stop], self.delta_r0_ohm[start:stop])
