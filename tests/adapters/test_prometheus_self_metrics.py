"""Self-metrics and size controls of the Prometheus output: the event loop's lag, per-cell series on or off."""

from __future__ import annotations

import asyncio
import contextlib
import time

from gateway.adapters.prometheus_collector import LOOP_LAG_BUCKETS_S, DurationHistogram, PrometheusCollector
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.loop_lag import LoopLagProbe
from tests.factories import make_snapshot


async def test_the_probe_records_how_long_the_loop_was_blocked() -> None:
    lag = DurationHistogram(LOOP_LAG_BUCKETS_S)
    probe = LoopLagProbe(lag.observe, period_s=0.02)
    task = asyncio.create_task(probe.run())
    await probe.ready.wait()
    await asyncio.sleep(0.1)
    time.sleep(0.06)  # the loop is stuck: the probe's next wake-up comes ~40-60 ms late
    await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    samples = lag.family("lag_seconds", "t").samples
    buckets = {s.labels["le"]: s.value for s in samples if s.name == "lag_seconds_bucket"}
    assert lag.count >= 5
    assert buckets["+Inf"] - buckets["0.025"] >= 1  # the blocked wake-up
    assert buckets["0.01"] >= lag.count - 2  # the others were on time
    assert 0.03 <= lag.sum <= 0.2


async def test_the_collector_exports_the_loop_lag_histogram() -> None:
    lag = DurationHistogram(LOOP_LAG_BUCKETS_S)
    lag.observe(0.003)
    names = {s.name for family in PrometheusCollector(SnapshotHub(), loop_lag=lag).collect() for s in family.samples}
    assert {"bmsgw_event_loop_lag_seconds_bucket", "bmsgw_event_loop_lag_seconds_count"} <= names


async def test_per_cell_series_can_be_turned_off_for_a_large_site() -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(packs=3))

    def names(cell_series: bool) -> set[str]:
        collector = PrometheusCollector(hub, cell_series=cell_series)
        return {sample.name for family in collector.collect() for sample in family.samples}

    with_cells, without = names(True), names(False)
    assert {"bmsgw_cell_voltage_volts", "bmsgw_cell_temperature_celsius"} <= with_cells
    assert {name for name in with_cells - without} == {name for name in with_cells if name.startswith("bmsgw_cell_")}
    assert "bmsgw_pack_soc_ratio" in without
