"""Self-metrics and size controls of the Prometheus output: the event loop's lag, per-cell series on or off."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient

from gateway.adapters.event_log import EventLog
from gateway.adapters.prometheus_collector import (
    LOOP_LAG_BUCKETS_S,
    DurationHistogram,
    PrometheusCollector,
    SelfMetricSources,
    self_families,
)
from gateway.domain.alarms import Severity
from gateway.domain.events import BmsEvent, EventKind
from gateway.errors import AdapterError
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.loop_lag import LoopLagProbe
from tests.adapters.conftest import MODBUS_SITE_UNIT, RunningModbus
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
    collector = PrometheusCollector(SnapshotHub(), SelfMetricSources(loop_lag=lag))
    names = {s.name for family in collector.collect() for s in family.samples}
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


async def test_modbus_traffic_counts_connections_requests_exceptions_and_protocol_errors(
        modbus_server: RunningModbus) -> None:
    traffic = modbus_server.output.traffic
    client = AsyncModbusTcpClient("127.0.0.1", port=modbus_server.port, timeout=2, retries=0)
    assert await client.connect()
    await _until(lambda: traffic.connected == 1)
    assert not (await client.read_input_registers(0, count=4, device_id=MODBUS_SITE_UNIT)).isError()
    assert (await client.read_coils(0, count=1, device_id=MODBUS_SITE_UNIT)).isError()  # no coils: exception 01
    reader, writer = await asyncio.open_connection("127.0.0.1", modbus_server.port)
    writer.write(bytes.fromhex("0001 0007 0006 01 03 0000 0001"))  # protocol id 7: not Modbus TCP
    assert await reader.read() == b""  # closed by the gateway
    writer.close()
    client.close()
    await _until(lambda: traffic.connected == 0)
    assert (traffic.connections, traffic.requests, traffic.exceptions, traffic.protocol_errors) == (2, 2, 1, 1)
    samples = {(s.name, tuple(s.labels.values())): s.value
               for family in self_families(SelfMetricSources(modbus=traffic)) for s in family.samples}
    assert samples[("bmsgw_modbus_requests_total", ("data",))] == 1
    assert samples[("bmsgw_modbus_requests_total", ("exception",))] == 1
    assert samples[("bmsgw_modbus_connections_accepted_total", ())] == 2
    assert samples[("bmsgw_modbus_clients_connected", ())] == 0
    assert samples[("bmsgw_modbus_protocol_errors_total", ())] == 1


def test_the_event_log_counts_what_it_wrote_and_what_failed(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "store.sqlite")
    log.append([BmsEvent(1.0, "pack-01", EventKind.RAISED, "cell_overvoltage", Severity.ALARM)] * 3)
    broken = BmsEvent(2.0, None, EventKind.CLEARED, "cell_overvoltage")  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(AdapterError):
        log.append([broken])
    families = self_families(SelfMetricSources(event_log=log.counts))
    samples = {s.name: s.value for family in families for s in family.samples}
    assert samples["bmsgw_event_log_events_written_total"] == 3
    assert samples["bmsgw_event_log_write_failures_total"] == 1


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():
            await asyncio.sleep(0.01)
