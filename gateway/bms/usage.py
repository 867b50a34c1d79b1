"""Usage and thermal history per pack: Ah/Wh in and out, and time spent per temperature and SoC band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.arrays import nan_to
from gateway.bms.inputs import BoolArray, FloatArray

TEMPERATURE_BAND_EDGES_C = (-20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0)  # bands: below, between, above
SOC_BAND_EDGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_TEMPERATURE_EDGES = np.array(TEMPERATURE_BAND_EDGES_C)
_SOC_EDGES = np.array(SOC_BAND_EDGES)


@dataclass(frozen=True)
class UsageState:
    """Arrays are per pack; histograms are packs x bands, in seconds."""

    ah_charged: FloatArray
    ah_discharged: FloatArray
    wh_charged: FloatArray
    wh_discharged: FloatArray
    time_at_temperature_s: FloatArray
    time_at_soc_s: FloatArray

    @classmethod
    def empty(cls, packs: int) -> UsageState:
        zeros = np.zeros(packs)
        return cls(zeros, zeros, zeros, zeros, np.zeros((packs, len(TEMPERATURE_BAND_EDGES_C) + 1)),
                   np.zeros((packs, len(SOC_BAND_EDGES) + 1)))


def _band_time(histogram: FloatArray, values: FloatArray, edges: FloatArray, counted: BoolArray,
               dt_s: float) -> FloatArray:
    """`histogram` (packs x bands) with `dt_s` added to the band of the value of each counted pack, if known."""
    rows = (counted & np.isfinite(values)).nonzero()[0]
    flat_index = rows * histogram.shape[1] + np.searchsorted(edges, values[rows], side="right")
    result = histogram.copy()
    result.ravel()[flat_index] += dt_s  # a flat index is several times faster than a (rows, bands) one
    return result


def usage_step(state: UsageState, current_a: FloatArray, pack_voltage_v: FloatArray, hottest_c: FloatArray,
               soc: FloatArray, counted: BoolArray, dt_s: float) -> UsageState:
    delta_ah = np.where(counted, nan_to(current_a, 0.0), 0.0) * dt_s / 3600.0
    delta_wh = delta_ah * nan_to(pack_voltage_v, 0.0)
    return UsageState(
        ah_charged=state.ah_charged + np.maximum(delta_ah, 0.0),
        ah_discharged=state.ah_discharged - np.minimum(delta_ah, 0.0),
        wh_charged=state.wh_charged + np.maximum(delta_wh, 0.0),
        wh_discharged=state.wh_discharged - np.minimum(delta_wh, 0.0),
        time_at_temperature_s=_band_time(state.time_at_temperature_s, hottest_c, _TEMPERATURE_EDGES, counted, dt_s),
        time_at_soc_s=_band_time(state.time_at_soc_s, soc, _SOC_EDGES, counted, dt_s),
    )
