"""DurationHistogram: a cumulative histogram rendered the Prometheus way (no server needed)."""

from __future__ import annotations

import math

import pytest

from gateway.adapters.prometheus_collector import TICK_BUCKETS_S, DurationHistogram


def _buckets(timings: DurationHistogram) -> dict[str, float]:
    family = timings.family("t_seconds", "test")
    return {s.labels["le"]: s.value for s in family.samples if s.name == "t_seconds_bucket"}


def test_buckets_are_cumulative_and_upper_bounds_inclusive() -> None:
    timings = DurationHistogram()
    for seconds in (0.0004, 0.001, 0.0011, 0.2):
        timings.observe(seconds)

    buckets = _buckets(timings)

    assert list(buckets) == [*(repr(b) for b in TICK_BUCKETS_S), "+Inf"]
    assert buckets["0.0005"] == 1
    assert buckets["0.001"] == 2  # le is "less than or equal"
    assert buckets["0.0025"] == 3
    assert buckets["0.1"] == 3
    assert buckets["+Inf"] == 4
    assert timings.count == 4
    assert timings.sum == pytest.approx(0.2025)


def test_sum_and_count_samples_are_rendered() -> None:
    timings = DurationHistogram()
    timings.observe(0.003)

    samples = {s.name: s.value for s in timings.family("t_seconds", "test").samples}

    assert samples["t_seconds_count"] == 1
    assert samples["t_seconds_sum"] == pytest.approx(0.003)


def test_nan_observation_is_ignored() -> None:
    timings = DurationHistogram()
    timings.observe(math.nan)

    assert timings.count == 0
    assert timings.sum == 0.0


@pytest.mark.parametrize("buckets", [(), (0.01, 0.001), (0.001, 0.001), (0.001, math.inf)])
def test_invalid_buckets_are_refused(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="buckets"):
        DurationHistogram(buckets)
