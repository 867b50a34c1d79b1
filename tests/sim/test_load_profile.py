"""Load profiles: pure functions of time and seed."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.sim.load_profile import LoadProfile, drive_cycle


def test_idle_and_constant() -> None:
    assert LoadProfile("idle", 0.5, 200.0).current_a(123.0) == 0.0
    assert LoadProfile("constant", 0.5, 200.0).current_a(0.0) == -100.0
    assert LoadProfile("constant", 0.5, 200.0).current_a(1e6) == -100.0


def test_drive_is_deterministic_repeating_and_slowly_discharging() -> None:
    profile = LoadProfile("drive", 0.5, 200.0, seed=4)
    period = drive_cycle(4).period_s
    times = np.arange(0.0, period, 0.5)
    currents = np.array([profile.current_a(t) for t in times])
    assert currents.tolist() == [LoadProfile("drive", 0.5, 200.0, seed=4).current_a(t) for t in times]
    assert [profile.current_a(t + 3 * period) for t in times[:50]] == pytest.approx(currents[:50].tolist())
    assert currents.min() < -100.0
    assert currents.max() > 0.0
    assert np.any(currents == 0.0)
    assert np.all(np.abs(currents) <= 2.0 * 100.0)
    assert -0.6 < drive_cycle(4).mean_c_rate < -0.1
    assert float(np.mean(currents)) == pytest.approx(drive_cycle(4).mean_c_rate * 100.0, rel=0.02)


def test_drive_depends_on_the_seed() -> None:
    assert drive_cycle(1) != drive_cycle(2)
    for seed in range(20):
        assert drive_cycle(seed).mean_c_rate < 0.0
