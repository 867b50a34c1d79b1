"""Packs that speak only when asked (bmsgw-poll-v1), played by the built-in simulator on a virtual bus: the gateway's
poller keeps them online on the mapping's schedules, counts answers, timeouts, retries and failures per pack, stays
inside the bus-load budget, and a pack that stops answering goes offline with zero limits."""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
from collections import Counter
from pathlib import Path

import can
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import build_gateway, run_gateway
from gateway.domain.snapshot import GatewaySnapshot, PollStatistics
from gateway.runtime.poller import frame_bits
from gateway.settings import GatewaySettings
from tests.ports import free_tcp_port
from tests.sites import site_in

CONFIG = """
[modbus]
enabled = false
[opcua]
enabled = false
[prometheus]
enabled = {prometheus}
host = "127.0.0.1"
port = {port}
[engine]
stale_timeout_s = {stale_s}
[[buses]]
name = "cabinet"
interface = "virtual"
channel = "{channel}"
bitrate = {bitrate}
[[packs]]
id = "slot-1"
bus = "cabinet"
node_address = 1
protocol = "bmsgw-poll-v1"
[[packs]]
id = "slot-2"
bus = "cabinet"
node_address = 2
protocol = "bmsgw-poll-v1"
{slot_2_periods}
[simulation]
enabled = true
load_profile = "idle"
[[simulation.packs]]
node_address = 1
bus = "cabinet"
protocol = "bmsgw-poll-v1"
[[simulation.packs]]
node_address = 2
bus = "cabinet"
protocol = "bmsgw-poll-v1"
serial_number = 1001
faults = [{{kind = "silent", start_s = {silent_s}}}]
"""


def _site(tmp_path: Path, *, bitrate: int = 500_000, silent_s: float = 1000.0, slot_2_periods: str = "",
          stale_s: float = 1.0, prometheus_port: int | None = None) -> str:
    return CONFIG.format(channel=f"poll-{time.monotonic_ns()}", bitrate=bitrate, silent_s=silent_s,
                         slot_2_periods=slot_2_periods, stale_s=stale_s,
                         prometheus=str(prometheus_port is not None).lower(), port=prometheus_port or 9464)


def _poll(snapshot: GatewaySnapshot, pack_id: str, poll: str) -> PollStatistics:
    (bus,) = snapshot.buses
    return next(p for p in bus.polls if p.pack_id == pack_id and p.poll == poll)


def _scrape(port: int) -> dict[tuple[str, str, str], float]:
    """Every poll sample of /metrics by (metric, pack, poll)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, sample.labels["pack"], sample.labels["poll"]): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name.startswith("bmsgw_pack_poll_")}


async def _run_until(settings: GatewaySettings, seconds: float, listen_channel: str | None = None,
                     scraped: dict[tuple[str, str, str], float] | None = None
                     ) -> tuple[list[GatewaySnapshot], list[can.Message]]:
    gateway = build_gateway(settings)
    snapshots: list[GatewaySnapshot] = []
    heard: list[can.Message] = []
    listener = can.Bus(interface="virtual", channel=listen_channel) if listen_channel else None
    stop = asyncio.Event()
    task = asyncio.create_task(run_gateway(gateway, stop))
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if gateway.hub.latest is not None:
                snapshots.append(gateway.hub.latest)
            while listener is not None and (message := listener.recv(0)) is not None:
                heard.append(message)
        if scraped is not None:
            scraped.update(await asyncio.to_thread(_scrape, settings.prometheus.port))
    finally:
        stop.set()
        await task
        if listener is not None:
            listener.shutdown()
    return snapshots, heard


async def test_polled_packs_stay_online_and_a_silent_one_fails_its_polls(tmp_path: Path) -> None:
    settings = site_in(tmp_path, _site(tmp_path, silent_s=4.0, prometheus_port=free_tcp_port()))
    scraped: dict[tuple[str, str, str], float] = {}
    snapshots, _ = await _run_until(settings, 7.0, scraped=scraped)
    at_3_s = next(s for s in snapshots if s.wall_time >= snapshots[0].wall_time + 3.0)
    last = snapshots[-1]
    assert at_3_s.pack("slot-1").online
    assert at_3_s.pack("slot-2").online
    assert last.pack("slot-1").online
    assert not last.pack("slot-2").online
    assert last.pack("slot-2").charge_current_limit_a == 0.0
    assert last.pack("slot-2").discharge_current_limit_a == 0.0
    status = _poll(last, "slot-1", "status")
    # 4 Hz for about 7 s, all answered (a first try may go out before the simulator listens), well within 50 ms
    assert 20 <= status.responses <= 32
    assert status.failures == 0
    assert status.timeouts <= 2
    assert status.requests - status.responses - status.timeouts in (0, 1)  # every try answered or timed out, or out
    assert 0.0 < status.last_response_time_s < 0.05
    assert status.recent_success_ratio == 1.0
    assert _poll(last, "slot-1", "temperatures").responses >= 5
    silent = _poll(last, "slot-2", "status")
    # silent from about 4 s: every later poll is tried 3 times (2 retries) and fails
    assert silent.failures >= 6
    assert silent.timeouts - 3 * silent.failures in (0, 1, 2)  # the last poll may be between its tries
    assert silent.retries - 2 * silent.failures in (0, 1, 2)
    assert silent.recent_success_ratio < 0.5
    assert math.isclose(status.period_s, 0.25)
    # the same figures over Prometheus, scraped after the last snapshot was taken
    assert scraped["bmsgw_pack_poll_failures_total", "slot-2", "status"] >= silent.failures
    assert scraped["bmsgw_pack_poll_responses_total", "slot-1", "status"] >= status.responses
    assert scraped["bmsgw_pack_poll_success_ratio", "slot-1", "status"] == 1.0
    assert scraped["bmsgw_pack_poll_response_time_seconds_count", "slot-1", "status"] >= status.responses
    assert scraped["bmsgw_pack_poll_period_seconds", "slot-2", "temperatures"] == 1.0


async def test_a_pack_s_own_period_and_the_bus_load_budget(tmp_path: Path) -> None:
    # 20 kbit/s with a 30 % budget (6 kbit/s) cannot carry the polls (13.5 kbit/s): the periods are stretched 2.25
    # times to fit (slot-2's status to 1.1 s: the engine's stale timeout is raised to 3 s to keep it online), and
    # what goes on the bus stays within the budget.
    toml = _site(tmp_path, bitrate=20_000, slot_2_periods='poll_periods_s = {status = 0.5}', stale_s=3.0)
    settings = site_in(tmp_path, toml)
    channel = settings.buses[0].channel
    snapshots, heard = await _run_until(settings, 6.0, listen_channel=channel)
    last = snapshots[-1]
    (bus,) = last.buses
    assert bus.poll_load_ratio <= 0.3 + 1e-9
    slot_1, slot_2 = _poll(last, "slot-1", "status"), _poll(last, "slot-2", "status")
    assert slot_1.period_s > 0.25
    assert slot_2.period_s > 0.5
    assert math.isclose(slot_2.period_s / slot_1.period_s, 2.0)
    assert last.pack("slot-1").online
    assert last.pack("slot-2").online
    first = heard[0].timestamp
    window = [m for m in heard if m.timestamp >= first + 1.0]
    span = window[-1].timestamp - window[0].timestamp
    bits = sum(frame_bits(len(m.data), extended=m.is_extended_id) for m in window)
    assert bits / span <= 20_000 * 0.3 * 1.1  # the budget, with room for the window's edges
    requests = Counter(m.arbitration_id for m in window if (m.arbitration_id >> 16) & 0xFF == 0xD3)
    assert requests[0x18D30001] > requests[0x18D30002] >= 1  # slot-2 polled at half slot-1's rate
