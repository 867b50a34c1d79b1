"""The site's current limits for packs in parallel, where the site current splits unevenly between them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.bms.inputs import BoolArray, FloatArray

DEFAULT_SIGNIFICANT_CURRENT_A = 10.0
_NO_SHARE = 1e-9  # a pack taking less of the site current than this takes none (and cannot overflow L / f)


@dataclass(frozen=True)
class SiteLimits:
    charge: float  # in the unit of the pack limits given (A or W)
    discharge: float
    charge_share: FloatArray  # per pack, the expected fraction of a site charge current (0: not eligible)
    discharge_share: FloatArray


def aggregate_parallel_limits(limit_charge: FloatArray, limit_discharge: FloatArray, eligible: BoolArray,
                              measured_current_a: FloatArray, pack_resistance_ohm: FloatArray,
                              significant_current_a: float = DEFAULT_SIGNIFICANT_CURRENT_A) -> SiteLimits:
    """Charge and discharge limits of the site (magnitudes), from per-pack arrays of current (A) or power (W).

    Only eligible packs (online, admitted, contactor closed, not blocked) carry current; the others
    count for nothing. An eligible pack i takes the fraction f_i of the site current (sum f_i = 1),
    so the site current I may grow until the first pack reaches its limit L_i:

        I_site = min over eligible i with f_i > 0 of  L_i / f_i,   clipped to [0, sum of eligible L_i]

    that is n x min_i (L_i / s_i) with s_i = n f_i the share relative to an even split. With an even
    split this is the sum of the limits only when they are all equal; otherwise the weakest pack
    sets the pace.

    f_i, per direction: while the site current flows in that direction and averages at least
    `significant_current_a` per eligible pack, the measured split I_i / I_site (a pack flowing the
    other way takes no share); otherwise the conductance split (1 / R_i) / sum (1 / R_j), or an even
    split when a resistance is unknown. An unknown (NaN) limit counts as 0.
    """
    charge, charge_share = _direction(limit_charge, eligible, measured_current_a, pack_resistance_ohm,
                                      significant_current_a, 1.0)
    discharge, discharge_share = _direction(limit_discharge, eligible, measured_current_a, pack_resistance_ohm,
                                            significant_current_a, -1.0)
    return SiteLimits(charge, discharge, charge_share, discharge_share)


def _direction(limit_a: FloatArray, eligible: BoolArray, measured_current_a: FloatArray,
               pack_resistance_ohm: FloatArray, significant_current_a: float, sign: float) -> tuple[float, FloatArray]:
    share = _shares(eligible, measured_current_a * sign, pack_resistance_ohm, significant_current_a)
    if (share > 0.0).any() and (share <= _NO_SHARE).any():  # a negligible share counts as none
        share = np.where(share > _NO_SHARE, share, 0.0)
        share /= share.sum()
    limit = np.where(eligible, np.fmax(limit_a, 0.0), 0.0)  # fmax: unknown (NaN) counts as 0
    per_site_ampere = np.divide(limit, share, out=np.full(len(limit), np.inf), where=share > _NO_SHARE)
    if not eligible.any():
        return 0.0, share
    return float(min(per_site_ampere.min(), limit.sum())), share


def _shares(eligible: BoolArray, current_a: FloatArray, resistance_ohm: FloatArray,
            significant_current_a: float) -> FloatArray:
    """Each pack's fraction of a site current in the direction where `current_a` is positive."""
    packs = int(eligible.sum())
    zero = np.zeros(len(eligible))
    if packs == 0:
        return zero
    taking = np.where(eligible, np.fmax(current_a, 0.0), 0.0)  # a pack flowing the other way takes none
    site = float(np.where(eligible, current_a, 0.0).sum())
    if np.isfinite(current_a[eligible]).all() and site >= significant_current_a * packs and taking.sum() > 0.0:
        result: FloatArray = taking / taking.sum()
        return result
    resistance = resistance_ohm[eligible]
    if np.isfinite(resistance).all() and (resistance > 0.0).all():
        conductance = np.where(eligible, 1.0 / np.where(eligible, resistance_ohm, 1.0), 0.0)
        by_conductance: FloatArray = conductance / conductance.sum()
        return by_conductance
    even: FloatArray = np.where(eligible, 1.0 / packs, 0.0)
    return even
