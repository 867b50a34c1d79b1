"""End to end: `bms-gateway run --record FILE` on two buses of simulated packs, the file read back with python-can."""

from __future__ import annotations

import itertools
import signal
import time
from collections import Counter
from pathlib import Path

import can
import pytest

from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.protocol import load_protocol
from gateway.domain.frames import CanFrame
from gateway.errors import FrameRejected
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.e2e.gateway_process import GatewayProcess, wait_for

pytestmark = pytest.mark.e2e

# Two buses, a pack at node 1 on each: only the channel tells their frames apart.
SITE = """
[[buses]]
name = "alpha"
interface = "virtual"
channel = "record-alpha-{tag}"

[[buses]]
name = "beta"
interface = "virtual"
channel = "record-beta-{tag}"

[[packs]]
id = "a1"
bus = "alpha"
node_address = 1

[[packs]]
id = "b1"
bus = "beta"
node_address = 1

[simulation]
enabled = true
load_profile = "idle"

[[simulation.packs]]
node_address = 1
bus = "alpha"
serial_number = 1000

[[simulation.packs]]
node_address = 1
bus = "beta"
serial_number = 2000
"""
FAST_START = {"BMSGW_OPCUA__ENABLED": "false"}  # not read here; the gateway starts in about a second without it


def _record(tmp: Path, suffix: str) -> tuple[GatewayProcess, Path]:
    config = tmp / "site.toml"
    config.write_text(SITE.format(tag=time.monotonic_ns()))
    path = tmp / f"frames{suffix}"
    gateway = GatewayProcess.start(tmp, config, FAST_START, arguments=["--record", str(path)])
    try:
        wait_for(lambda: all(gateway.scrape().get(("bmsgw_pack_up", (("pack", p),))) == 1.0 for p in ("a1", "b1")),
                 10, "both packs up")
    except BaseException:
        gateway.stop()
        raise
    return gateway, path


def _nodes_by_channel(frames: list[can.Message], direction: str) -> Counter[tuple[str | int | None, int, str]]:
    """(channel, node address, message) of every frame the reference protocol decodes in `direction` (a decoder per
    channel: it checks each pack's frame counters)."""
    protocol = load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1")
    decoders: dict[str | int | None, FrameDecoder] = {}
    seen: Counter[tuple[str | int | None, int, str]] = Counter()
    for frame in frames:
        decoder = decoders.setdefault(frame.channel, FrameDecoder([protocol], direction=direction))  # type: ignore[arg-type]
        try:
            decoded = decoder.decode(CanFrame("any", frame.arbitration_id, bytes(frame.data), frame.timestamp,
                                              frame.is_extended_id))
        except FrameRejected:
            continue
        seen[(frame.channel, decoded.node_address, decoded.message)] += 1
    return seen


@pytest.mark.parametrize(("suffix", "alpha", "beta"), [(".log", "alpha", "beta"), (".asc", 0, 1), (".blf", 0, 1)])
def test_the_recording_holds_every_bus_received_and_sent_in_time_order(tmp_path: Path, suffix: str,
                                                                       alpha: str | int, beta: str | int) -> None:
    gateway, path = _record(tmp_path, suffix)
    try:
        time.sleep(1.0)
    finally:
        assert gateway.stop() == 0, gateway.log()

    frames = list(can.LogReader(path))
    received = [f for f in frames if f.is_rx]
    sent = [f for f in frames if not f.is_rx]
    packs = _nodes_by_channel(received, "from_pack")
    for channel in (alpha, beta):
        assert packs[(channel, 1, "PackStatus")] >= 10, packs  # 10 per second from each simulated pack
        assert packs[(channel, 1, "PackIdentity")] >= 1, packs  # its answer to the gateway's request
    requests = _nodes_by_channel(sent, "to_pack")
    assert requests[(alpha, 1, "IdentityRequest")] >= 1, requests
    assert requests[(beta, 1, "IdentityRequest")] >= 1, requests
    assert sum(requests.values()) == len(sent)  # nothing but commands is sent
    assert all(b.timestamp >= a.timestamp for a, b in itertools.pairwise(frames))
    assert frames[-1].timestamp - frames[0].timestamp > 1.0
    assert f"recorded {len(frames)} CAN frames to {path}" in gateway.log()


def test_a_gateway_killed_with_sigkill_leaves_a_readable_recording_up_to_about_a_second_before(
        tmp_path: Path) -> None:
    gateway, path = _record(tmp_path, ".blf")  # the format that buffers the most: containers of frames
    serving_at = time.time()  # the simulated packs sent their first frames before this
    try:
        time.sleep(2.0)
    finally:
        killed_at = time.time()
        gateway.process.send_signal(signal.SIGKILL)
        gateway.process.wait()

    frames = list(can.LogReader(path))  # BLF timestamps count from the first frame without the clean-stop header
    recorded_s = frames[-1].timestamp - frames[0].timestamp
    assert recorded_s >= killed_at - serving_at - 1.0, recorded_s
    assert {f.channel for f in frames} == {0, 1}
