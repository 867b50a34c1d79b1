"""SoC, capacity and resistance error figures, as data/cells/FORMAT.md defines them (errors in % points)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
WARM_UP_S = 600.0


@dataclass(frozen=True)
class Truth:
    time_s: FloatArray
    pack_soc: FloatArray
    capacity_ah: FloatArray  # per cell
    resistance_10s_ohm: FloatArray  # per cell

    @classmethod
    def load(cls, log: Path) -> Truth:
        stem = str(log).removesuffix(".csv.gz")
        path = Path(stem + ".truth.csv.gz")
        with gzip.open(path, "rt") as handle:
            names = handle.readline().strip().split(",")
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        if "soc_true_pack" in names:
            pack = table[:, names.index("soc_true_pack")]
        else:
            pack = table[:, names.index("soc_true_1")]
        meta = json.loads(Path(stem + ".json").read_text())
        return cls(table[:, 0], pack, np.asarray(meta["true_capacity_ah"], dtype=np.float64),
                   np.asarray(meta["resistance_10s_50soc_25c_ohm"], dtype=np.float64))

    def soc_at(self, time_s: FloatArray) -> FloatArray:
        result: FloatArray = np.interp(time_s, self.time_s, self.pack_soc)
        return result


def settle_time_s(time_s: FloatArray, error_pp: FloatArray, band_pp: float) -> float | None:
    """Earliest time from which |error| stays within the band to the end (None: it ends outside)."""
    outside = np.flatnonzero(np.abs(error_pp) > band_pp)
    if outside.size == 0:
        return float(time_s[0])
    if outside[-1] >= len(time_s) - 1:
        return None
    return float(time_s[outside[-1] + 1])


@dataclass(frozen=True)
class SocErrors:
    rmse_all: float
    rmse_after_10min: float
    max_after_10min: float
    within_5_s: float | None
    within_2_s: float | None


def soc_errors(time_s: FloatArray, soc: FloatArray, truth: Truth) -> SocErrors:
    error = 100.0 * (soc - truth.soc_at(time_s))
    late = time_s >= WARM_UP_S
    return SocErrors(
        rmse_all=float(np.sqrt(np.mean(error**2))),
        rmse_after_10min=float(np.sqrt(np.mean(error[late] ** 2))),
        max_after_10min=float(np.max(np.abs(error[late]))),
        within_5_s=settle_time_s(time_s, error, 5.0),
        within_2_s=settle_time_s(time_s, error, 2.0),
    )


def worst_relative_error_pct(estimate: FloatArray, truth: FloatArray) -> float:
    """The largest |estimate - truth| / truth over cells, signed, in %."""
    errors = 100.0 * (estimate - truth) / truth
    return float(errors[np.argmax(np.abs(errors))])


def first_informative_time_s(truth: Truth, low: float = 0.2, high: float = 0.9) -> float:
    """When an LFP estimator can first be expected to converge: the true SoC reaches below `low` or
    above `high` from the plateau in between (a start above `high`, e.g. 0.95, is not reaching it:
    the LFP OCV there is still within a few mV of the plateau's)."""
    on_plateau = np.flatnonzero((truth.pack_soc >= low) & (truth.pack_soc <= high))
    if on_plateau.size == 0:
        return float("inf")
    later = np.arange(len(truth.pack_soc)) > on_plateau[0]
    outside = np.flatnonzero(later & ((truth.pack_soc < low) | (truth.pack_soc > high)))
    return float(truth.time_s[outside[0]]) if outside.size else float("inf")
