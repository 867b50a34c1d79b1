"""Usage and thermal history per pack: Ah/Wh in and out, and time spent per temperature and SoC band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.arrays import nan_to
from gateway.bms.inputs import BoolArray, FloatArray

TEMPERATURE_BAND_EDGES_C = (-20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0)  # bands: below, between, above
SOC_BAND_EDGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


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


def _band_time(histogram: FloatArray, values: FloatArray, edges: tuple[float, ...], counted: BoolArray,
               dt_s: float) -> FloatArray:
    bands = np.searchsorted(np.asarray(edges), nan_to(values, 0.0), side="right")
    add = np.zeros_like(histogram)
    rows = np.flatnonzero(counted & np.isfinite(values))
    add[rows, bands[rows]] = dt_s
    result: FloatArray = histogram + add
    return result


def usage_step(state: UsageState, current_a: FloatArray, pack_voltage_v: FloatArray, hottest_c: FloatArray,
               soc: FloatArray, counted: BoolArray, dt_s: float) -> UsageState:
    delta_ah = np.where(counted, nan_to(current_a, 0.0), 0.0) * dt_s / 3600.0
    delta_wh = delta_ah * nan_to(pack_voltage_v, 0.0)
    return UsageState(
        ah_charged=state.ah_charged + np.maximum(delta_ah, 0.0),
        ah_discharged=state.ah_discharged + np.maximum(-delta_ah, 0.0),
        wh_charged=state.wh_charged + np.maximum(delta_wh, 0.0),
        wh_discharged=state.wh_discharged + np.maximum(-delta_wh, 0.0),
        time_at_temperature_s=_band_time(state.time_at_temperature_s, hottest_c, TEMPERATURE_BAND_EDGES_C,
                                         counted, dt_s),
        time_at_soc_s=_band_time(state.time_at_soc_s, soc, SOC_BAND_EDGES, counted, dt_s),
    )
