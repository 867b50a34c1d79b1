"""Exact zero-order-hold response of first-order lags (RC branches) to a sampled current."""

from __future__ import annotations

import numpy as np

from gateway.cellfit.segments import FloatArray


def filtered_currents(time_s: FloatArray, current_a: FloatArray, tau_s: FloatArray) -> FloatArray:
    """rows x len(tau_s): each column is the current through a unit RC branch (its voltage per ohm).

    Row k's current is held over (t[k-1], t[k]], the branch starts relaxed at the first row.
    """
    decay = np.exp(-np.diff(time_s, prepend=time_s[0])[:, None] / tau_s[None, :])
    gain = 1.0 - decay
    result = np.empty((len(time_s), len(tau_s)))
    state = np.zeros(len(tau_s))
    for k in range(len(time_s)):
        state = decay[k] * state + gain[k] * current_a[k]
        result[k] = state
    return result
