"""bench/estimation_metrics.py: the figures the benchmark table claims."""

from __future__ import annotations

import numpy as np

from bench.estimation_metrics import Truth, first_informative_time_s, settle_time_s, soc_errors


def truth_of(pack_soc: list[float]) -> Truth:
    time_s = 60.0 * np.arange(len(pack_soc), dtype=np.float64)
    return Truth(time_s, np.asarray(pack_soc), np.array([100.0]), np.array([1e-3]))


def test_settle_time_is_the_first_sample_after_the_last_one_outside_the_band() -> None:
    time_s = np.arange(6.0)
    assert settle_time_s(time_s, np.array([9.0, 3.0, 1.0, 2.5, 1.0, 0.5]), 2.0) == 4.0
    assert settle_time_s(time_s, np.zeros(6), 2.0) == 0.0
    assert settle_time_s(time_s, np.array([0.0, 0.0, 0.0, 0.0, 0.0, 3.0]), 2.0) is None  # ends outside


def test_lfp_clock_starts_when_the_soc_reaches_an_end_from_the_plateau() -> None:
    # started at 0.95 (above 90 %, but not reached from the plateau), down through the plateau to 0.15
    truth = truth_of([0.95, 0.92, 0.85, 0.5, 0.25, 0.19, 0.15])
    assert first_informative_time_s(truth) == 5 * 60.0
    assert first_informative_time_s(truth_of([0.5, 0.6, 0.95])) == 2 * 60.0  # charged into the upper end
    assert first_informative_time_s(truth_of([0.95, 0.97, 0.99])) == np.inf  # never on the plateau
    assert first_informative_time_s(truth_of([0.5, 0.6, 0.7])) == np.inf  # never leaves it


def test_soc_errors_skip_the_first_ten_minutes_for_rmse_and_max() -> None:
    truth = truth_of([0.5] * 20)
    soc = np.full(20, 0.5)
    soc[:10] = 0.6  # 10 pp wrong during the first 10 minutes only (t = 0..9 min)
    errors = soc_errors(truth.time_s, soc, truth)
    assert errors.rmse_after_10min == 0.0
    assert errors.max_after_10min == 0.0
    assert np.isclose(errors.rmse_all, np.sqrt(0.5 * 100.0))
    assert errors.within_2_s == 600.0
