"""The Prometheus output end to end: a real server on 127.0.0.1, real HTTP clients, the real parser."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import shutil
import socket
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import get_type_hints

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.event_log import WriteCounts
from gateway.adapters.prometheus_collector import (
    LOOP_LAG_BUCKETS_S,
    DurationHistogram,
    PrometheusCollector,
    SelfMetricSources,
)
from gateway.adapters.prometheus_packs import band_labels
from gateway.adapters.prometheus_server import PrometheusOutput
from gateway.bms.usage import SOC_BAND_EDGES, TEMPERATURE_BAND_EDGES_C
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.snapshot import PackSnapshot
from gateway.errors import AdapterError
from gateway.runtime.hub import SnapshotHub
from gateway.settings import PrometheusSettings
from tests.adapters.estimates import with_own_estimates
from tests.factories import make_snapshot

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Running:
    output: PrometheusOutput
    port: int
    task: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


Start = Callable[..., Awaitable[Running]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    started: list[Running] = []

    async def start(
        hub: SnapshotHub, timings: DurationHistogram | None = None, *, request_timeout_s: float = 10.0,
        sources: SelfMetricSources | None = None,
    ) -> Running:
        port = _free_port()
        settings = PrometheusSettings(host="127.0.0.1", port=port)
        output = PrometheusOutput(settings, hub, sources or SelfMetricSources(timings),
                                  request_timeout_s=request_timeout_s)
        running = Running(output, port, asyncio.create_task(output.run()))
        started.append(running)
        ready = asyncio.create_task(output.ready.wait())
        await asyncio.wait({running.task, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if running.task.done():
            ready.cancel()
            running.task.result()  # raises what run() raised
        assert ready.done(), "PrometheusOutput did not become ready"
        return running

    yield start
    for running in started:
        running.task.cancel()
    for running in started:
        with contextlib.suppress(asyncio.CancelledError):
            await running.task


def _get_blocking(url: str) -> tuple[int, str, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


async def _get(url: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(_get_blocking, url)


async def _scrape(running: Running) -> Samples:
    samples, _ = await _scrape_with_types(running)
    return samples


async def _scrape_with_types(running: Running) -> tuple[Samples, dict[str, str]]:
    """The samples, and the TYPE of every family (by family name, without `_total`)."""
    status, content_type, body = await _get(running.url + "/metrics")
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST
    families = list(text_string_to_metric_families(body))
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }, {family.name: family.type for family in families}


def _samples_of(samples: Samples, name: str) -> Samples:
    return {key: value for key, value in samples.items() if key[0] == name}


def _collect(hub: SnapshotHub) -> Samples:
    """The samples straight from the collector (for table checks that need no HTTP round trip)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in PrometheusCollector(hub).collect()
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def _raw(port: int, request: bytes, *, eof: bool = False) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        if eof:
            writer.write_eof()
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split(" ")[1]), headers, body


async def test_scraped_values_equal_the_snapshot(serve: Start) -> None:
    hub = SnapshotHub()
    alarms = {0: {AlarmCode.CELL_OVERTEMPERATURE: Severity.TRIP, AlarmCode.SENSOR_FAULT: Severity.WARNING}}
    snapshot = make_snapshot(packs=3, sequence=42, offline=(2,), alarms=alarms)
    await hub.publish(snapshot)
    running = await serve(hub)

    samples = await _scrape(running)

    first, second = snapshot.pack("pack-01"), snapshot.pack("pack-02")
    assert _value(samples, "bmsgw_pack_voltage_volts", pack="pack-01") == first.pack_voltage_v
    assert _value(samples, "bmsgw_pack_current_amperes", pack="pack-01") == first.pack_current_a
    assert _value(samples, "bmsgw_cell_voltage_volts", pack="pack-02", cell="7") == second.cell_voltage_v[6]
    temperature = _value(samples, "bmsgw_cell_temperature_celsius", pack="pack-02", sensor="8")
    assert temperature == second.temperature_c[7]
    assert _value(samples, "bmsgw_pack_charged_coulombs_total", pack="pack-01") == first.ah_charged * 3600
    assert _value(samples, "bmsgw_pack_up", pack="pack-01") == 1
    assert _value(samples, "bmsgw_snapshot_sequence") == 42
    assert _value(samples, "bmsgw_site_packs_online") == 2
    assert _value(samples, "bmsgw_site_packs_configured") == 3
    assert _value(samples, "bmsgw_can_frames_rejected_total", bus="demo", reason="bad_crc") == 7
    assert _value(samples, "bmsgw_can_frames_rejected_total", bus="demo", reason="unknown_id") == 3
    assert _value(samples, "bmsgw_can_frames_received_total", bus="demo") == 1000
    info = {"pack": "pack-02", "serial": "0000001001", "firmware": "1.2.3", "chemistry": "nmc",
            "cell_model": "nmc-200ah"}
    assert _value(samples, "bmsgw_pack_info", **info) == 1


TEMPERATURE_BANDS = ("-Inf..-20", "-20..-10", "-10..0", "0..10", "10..20", "20..30", "30..40", "40..50",
                     "50..60", "60..+Inf")
SOC_BANDS = ("-Inf..0.1", "0.1..0.2", "0.2..0.3", "0.3..0.4", "0.4..0.5", "0.5..0.6", "0.6..0.7", "0.7..0.8",
             "0.8..0.9", "0.9..+Inf")


async def test_estimator_values_scraped_equal_the_snapshot(serve: Start) -> None:
    hub = SnapshotHub()
    snapshot = with_own_estimates(make_snapshot(packs=3, offline=(2,)))
    await hub.publish(snapshot)
    running = await serve(hub)

    samples, types = await _scrape_with_types(running)

    for pack in snapshot.packs:
        name = pack.pack_id
        assert _value(samples, "bmsgw_pack_soc_sigma_ratio", pack=name) == pack.soc_sigma
        assert _value(samples, "bmsgw_pack_soh_resistance_ratio", pack=name) == pack.soh_resistance
        assert _value(samples, "bmsgw_pack_current_bias_amperes", pack=name) == pack.current_bias_a
        for number in range(1, 33):
            cell = str(number)
            sigma = _value(samples, "bmsgw_cell_soc_sigma_ratio", pack=name, cell=cell)
            assert sigma == pack.cell_soc_sigma[number - 1]
            capacity = _value(samples, "bmsgw_cell_capacity_coulombs", pack=name, cell=cell)
            assert capacity == pack.cell_capacity_ah[number - 1] * 3600
            resistance = _value(samples, "bmsgw_cell_resistance_ohms", pack=name, cell=cell)
            assert resistance == pack.cell_resistance_ohm[number - 1]
        for band, seconds in zip(TEMPERATURE_BANDS, pack.time_at_temperature_s, strict=True):
            assert _value(samples, "bmsgw_pack_time_at_temperature_seconds_total", pack=name, band=band) == seconds
        for band, seconds in zip(SOC_BANDS, pack.time_at_soc_s, strict=True):
            assert _value(samples, "bmsgw_pack_time_at_soc_seconds_total", pack=name, band=band) == seconds
    assert _value(samples, "bmsgw_pack_current_bias_amperes", pack="pack-02") == -0.42 + 0.25
    assert _value(samples, "bmsgw_cell_capacity_coulombs", pack="pack-01", cell="32") == pytest.approx(204.1 * 3600)
    for name in ("bmsgw_cell_soc_sigma_ratio", "bmsgw_cell_capacity_coulombs", "bmsgw_cell_resistance_ohms"):
        assert len(_samples_of(samples, name)) == 3 * 32, name
        assert types[name] == "gauge", name
    for name in ("bmsgw_pack_time_at_temperature_seconds", "bmsgw_pack_time_at_soc_seconds"):
        assert len(_samples_of(samples, f"{name}_total")) == 3 * 10, name
        assert types[name] == "counter", name
    for name in ("bmsgw_pack_soc_sigma_ratio", "bmsgw_pack_soh_resistance_ratio", "bmsgw_pack_current_bias_amperes"):
        assert types[name] == "gauge", name


def test_band_labels_follow_the_estimators_edges() -> None:
    assert band_labels(TEMPERATURE_BAND_EDGES_C) == TEMPERATURE_BANDS
    assert band_labels(SOC_BAND_EDGES) == SOC_BANDS
    assert band_labels((-5.5, 2.0)) == ("-Inf..-5.5", "-5.5..2", "2..+Inf")


async def test_unknown_estimates_are_nan_and_absent_ones_have_no_series(serve: Start) -> None:
    hub = SnapshotHub()
    first = make_snapshot(packs=2).packs[0]
    unknown = dataclasses.replace(first, soc_sigma=math.nan, current_bias_a=math.nan,
                                  cell_resistance_ohm=(math.nan,) * 32, cell_capacity_ah=(), time_at_soc_s=())
    snapshot = make_snapshot(packs=2)
    await hub.publish(dataclasses.replace(snapshot, packs=(unknown, snapshot.packs[1])))
    running = await serve(hub)

    samples = await _scrape(running)

    assert math.isnan(_value(samples, "bmsgw_pack_soc_sigma_ratio", pack="pack-01"))
    assert math.isnan(_value(samples, "bmsgw_pack_current_bias_amperes", pack="pack-01"))
    assert math.isnan(_value(samples, "bmsgw_cell_resistance_ohms", pack="pack-01", cell="32"))
    assert _value(samples, "bmsgw_pack_soh_resistance_ratio", pack="pack-01") == 0.93
    packs_with = {dict(labels)["pack"] for _, labels in _samples_of(samples, "bmsgw_cell_capacity_coulombs")}
    assert packs_with == {"pack-02"}
    packs_with = {dict(labels)["pack"] for _, labels in _samples_of(samples, "bmsgw_pack_time_at_soc_seconds_total")}
    assert packs_with == {"pack-02"}
    assert len(_samples_of(samples, "bmsgw_pack_time_at_temperature_seconds_total")) == 2 * 10


NOT_EXPORTED: dict[str, str] = {
    "index": "position in the configuration; the `pack` label identifies the pack",
    "pack_fault_flags": "pack-specific bit field, published on Modbus and OPC UA only",
}


async def test_every_numeric_pack_field_is_exported() -> None:
    """Changing any numeric PackSnapshot field changes an exported series (or it is excluded with a
    reason): a new snapshot field fails here until a metric carries it."""
    hints = get_type_hints(PackSnapshot)
    hub = SnapshotHub()
    snapshot = make_snapshot(packs=1)
    await hub.publish(snapshot)
    reference = _collect(hub)
    pack = snapshot.packs[0]
    numeric = [f.name for f in dataclasses.fields(PackSnapshot)
               if hints[f.name] in (float, int, tuple[float, ...])]
    assert {"soc_sigma", "cell_resistance_ohm", "time_at_soc_s"} <= set(numeric)
    assert set(NOT_EXPORTED) <= set(numeric)
    silent = []
    for name in numeric:
        old = getattr(pack, name)
        new = tuple(12345.678 for _ in old) if isinstance(old, tuple) else type(old)(12345)
        await hub.publish(dataclasses.replace(snapshot, packs=(dataclasses.replace(pack, **{name: new}),)))
        collected = _collect(hub)
        if not any(not _same(collected.get(key), reference.get(key)) for key in collected.keys() | reference):
            silent.append(name)
    assert sorted(silent) == sorted(NOT_EXPORTED), "export the new field in gateway/adapters/prometheus_*.py " \
        "(and docs/metrics.md), or add it to NOT_EXPORTED with a reason"


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


async def test_alarms_are_one_stable_series_per_pack_alarm_and_severity(serve: Start) -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(packs=2, alarms={0: {AlarmCode.CELL_OVERTEMPERATURE: Severity.TRIP}}))
    running = await serve(hub)

    samples = await _scrape(running)

    def active(pack: str, severity: str, alarm: str = "cell_overtemperature") -> float:
        return _value(samples, "bmsgw_pack_alarm_active", pack=pack, alarm=alarm, severity=severity)

    assert active("pack-01", "trip") == 1
    assert active("pack-01", "warning") == 0
    assert active("pack-01", "alarm") == 0
    assert active("pack-02", "trip") == 0
    assert active("pack-01", "trip", alarm="cell_overvoltage") == 0
    assert _value(samples, "bmsgw_pack_alarm_severity", pack="pack-01", alarm="cell_overtemperature") == 3
    assert _value(samples, "bmsgw_pack_alarm_severity", pack="pack-02", alarm="cell_overtemperature") == 0
    series = [key for key in samples if key[0] == "bmsgw_pack_alarm_active"]
    assert len(series) == 2 * len(AlarmCode) * 3


async def test_latched_unacknowledged_and_requests_are_published(serve: Start) -> None:
    hub = SnapshotHub()
    snapshot = make_snapshot(packs=2, alarms={0: {AlarmCode.SHORT_CIRCUIT: Severity.TRIP}})
    tripped = replace(snapshot.packs[0], latched_mask=AlarmCode.SHORT_CIRCUIT.bit,
                      unacknowledged_mask=AlarmCode.SHORT_CIRCUIT.bit, contactor_open_request=True,
                      cooling_request=True)
    await hub.publish(replace(snapshot, packs=(tripped, snapshot.packs[1])))
    running = await serve(hub)

    samples = await _scrape(running)

    assert _value(samples, "bmsgw_pack_alarm_latched", pack="pack-01", alarm="short_circuit") == 1
    assert _value(samples, "bmsgw_pack_alarm_latched", pack="pack-02", alarm="short_circuit") == 0
    assert _value(samples, "bmsgw_pack_alarm_latched", pack="pack-01", alarm="cell_overvoltage") == 0
    assert _value(samples, "bmsgw_pack_alarm_unacknowledged", pack="pack-01", alarm="short_circuit") == 1
    assert _value(samples, "bmsgw_pack_request", pack="pack-01", request="contactor_open") == 1
    assert _value(samples, "bmsgw_pack_request", pack="pack-01", request="cooling") == 1
    assert _value(samples, "bmsgw_pack_request", pack="pack-01", request="heating") == 0
    assert _value(samples, "bmsgw_pack_request", pack="pack-02", request="contactor_open") == 0


async def test_offline_pack_is_down_with_nan_values(serve: Start) -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(packs=2, offline=(1,)))
    running = await serve(hub)

    samples = await _scrape(running)

    assert _value(samples, "bmsgw_pack_up", pack="pack-02") == 0
    assert _value(samples, "bmsgw_pack_state", pack="pack-02") == 4  # PackState.COMM_LOST
    assert math.isnan(_value(samples, "bmsgw_pack_voltage_volts", pack="pack-02"))
    assert math.isnan(_value(samples, "bmsgw_pack_power_watts", pack="pack-02"))
    assert math.isnan(_value(samples, "bmsgw_cell_voltage_volts", pack="pack-02", cell="1"))


async def test_before_the_first_snapshot_only_build_info_and_unhealthy(serve: Start) -> None:
    hub = SnapshotHub()
    timings = DurationHistogram()
    timings.observe(0.002)
    running = await serve(hub, timings)

    samples = await _scrape(running)
    status, _, _ = await _raw(running.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

    assert {name for name, _ in samples} == {
        "bmsgw_build_info", "bmsgw_tick_duration_seconds_bucket", "bmsgw_tick_duration_seconds_count",
        "bmsgw_tick_duration_seconds_sum",
    }
    assert _value(samples, "bmsgw_tick_duration_seconds_bucket", le="0.0025") == 1
    assert status == 503
    await hub.publish(make_snapshot())
    status, content_type, body = await _get(running.url + "/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body)["status"] == "ok"


async def test_metrics_are_read_at_scrape_time(serve: Start) -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(sequence=1))
    running = await serve(hub)
    assert _value(await _scrape(running), "bmsgw_snapshot_sequence") == 1

    await hub.publish(make_snapshot(sequence=2))

    assert _value(await _scrape(running), "bmsgw_snapshot_sequence") == 2


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"HEAD /healthz HTTP/1.1\r\n\r\n", 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /metrics\r\n\r\n", 400),
        (b"GET /metrics HTTP/9.9\r\n\r\n", 400),
        (b"get /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 10_000 + b"\r\n\r\n", 431),
    ],
)
async def test_bad_requests_get_an_error_and_others_are_still_served(
    serve: Start, request_bytes: bytes, status: int
) -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot())
    running = await serve(hub)

    got, headers, _ = await _raw(running.port, request_bytes)

    assert got == status
    assert headers["connection"] == "close"
    if status == 405:
        assert headers["allow"] == "GET"
    assert _value(await _scrape(running), "bmsgw_site_packs_online") == 4


async def test_head_cut_short_by_the_client_is_a_bad_request(serve: Start) -> None:
    running = await serve(SnapshotHub())

    status, _, _ = await _raw(running.port, b"GET /metrics HTTP/1.1\r\nHost: x", eof=True)

    assert status == 400


async def test_stalled_client_does_not_block_a_scrape_and_is_closed(serve: Start) -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot())
    running = await serve(hub, request_timeout_s=2.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the head is never finished
    await writer.drain()
    loop = asyncio.get_running_loop()
    stalled_at = loop.time()

    samples = await asyncio.wait_for(_scrape(running), 1.0)  # well before the stalled one times out
    closed = await asyncio.wait_for(reader.read(), 5)

    assert _value(samples, "bmsgw_site_packs_online") == 4
    assert closed == b""
    assert loop.time() - stalled_at >= 1.9
    writer.close()
    await writer.wait_closed()


async def test_cancel_closes_open_connections_and_frees_the_port(serve: Start) -> None:
    running = await serve(SnapshotHub())
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"GET /met")
    await writer.drain()
    await asyncio.sleep(0.05)

    running.task.cancel()
    await asyncio.wait({running.task}, timeout=3)

    assert running.task.cancelled()
    assert not running.output.ready.is_set()
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()
    with contextlib.suppress(ConnectionResetError):
        await writer.wait_closed()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", running.port))


async def test_port_in_use_is_an_adapter_error_naming_address_and_setting(serve: Start) -> None:
    hub = SnapshotHub()
    first = await serve(hub)
    second = PrometheusOutput(PrometheusSettings(host="127.0.0.1", port=first.port), hub)

    with pytest.raises(AdapterError, match=rf"127\.0\.0\.1:{first.port}.*BMSGW_PROMETHEUS__PORT") as caught:
        await second.run()

    assert "[prometheus] port" in str(caught.value)
    assert not second.ready.is_set()


@pytest.mark.external
async def test_promtool_finds_no_lint_problems(serve: Start) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required in CI (Debian package `prometheus`)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    hub = SnapshotHub()
    alarms = {0: {AlarmCode.CELL_OVERVOLTAGE: Severity.ALARM}}
    await hub.publish(make_snapshot(packs=2, offline=(1,), alarms=alarms))
    timings, loop_lag = DurationHistogram(), DurationHistogram(LOOP_LAG_BUCKETS_S)
    timings.observe(0.0015)
    loop_lag.observe(0.002)
    sources = SelfMetricSources(timings, loop_lag, ClientTraffic(1, 3, 40, 2, 1), WriteCounts(12, 0),
                                opcua=lambda: ClientTraffic(2, 5, 100, 3, sessions=1))
    running = await serve(hub, sources=sources)
    _, _, body = await _get(running.url + "/metrics")
    assert "bmsgw_modbus_requests_total" in body
    assert 'bmsgw_opcua_requests_total{outcome="fault"} 3.0' in body
    assert "bmsgw_event_loop_lag_seconds_bucket" in body

    process = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(body.encode()), 30)

    assert process.returncode == 0, output.decode()
    assert output.decode().strip() == ""
