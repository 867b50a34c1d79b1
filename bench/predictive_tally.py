"""What the predictive bench counts: the warning kinds, the raw-value baseline, and how high each statistic got."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gateway.bms.predictive import PredictiveWarnings

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

KINDS = ("resistance_rise", "local_heating", "soc_drift", "unstable_current")  # PredictiveWarnings fields
BASELINE_TEMPERATURE_C = 55.0
BASELINE_VOLTAGE_DEVIATION_V = 0.050  # from the pack's median cell voltage


@dataclass
class Peaks:
    """The largest value each statistic reached, over the run and over cells (sensors, the pack)."""

    resistance_excess: float = -np.inf
    resistance_cell: int = 0  # 1-based
    heating_excess_c: float = -np.inf
    leak_c_rate: float = -np.inf
    leak_z: float = -np.inf
    reversal_share: float = 0.0  # reversal rate / its threshold

    def update(self, warnings: PredictiveWarnings, rows: IntArray | None = None) -> None:
        """Fold in this tick's statistics of the packs in `rows` (all when None)."""
        def peak(values: FloatArray) -> tuple[float, int]:
            chosen = values if rows is None else values[rows]
            if not np.isfinite(chosen).any():
                return -np.inf, 0
            flat = int(np.nanargmax(chosen))
            return float(chosen.flat[flat]), flat % chosen.shape[-1]

        excess, cell = peak(warnings.resistance_excess)
        if excess > self.resistance_excess:
            self.resistance_excess, self.resistance_cell = excess, cell + 1
        self.heating_excess_c = max(self.heating_excess_c, peak(warnings.heating_excess_c)[0])
        self.leak_c_rate = max(self.leak_c_rate, peak(warnings.leak_c_rate)[0])
        self.leak_z = max(self.leak_z, peak(warnings.leak_z)[0])
        share = warnings.current_reversals_per_min / warnings.current_threshold_per_min
        self.reversal_share = max(self.reversal_share, peak(share)[0])
