"""The whole gateway in-process, an inverter on a second virtual bus: live limits, then the safe state when the pack
falls silent, the safe state again when the gateway stops, and never CVL = 0."""

from __future__ import annotations

import asyncio
import struct
import time
import urllib.request
from pathlib import Path

import can
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import build_gateway, run_gateway
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.protocol import load_protocol
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.ports import free_tcp_port
from tests.runtime.test_stale_reaction import measurement
from tests.sites import site_in

CONFIG = """
[engine]
stale_timeout_s = 1.0
[admission]
enabled = false
[modbus]
enabled = false
[opcua]
enabled = false
[prometheus]
enabled = true
host = "127.0.0.1"
port = {prometheus_port}
[inverter_can]
enabled = true
bus = "inverter"
period_s = 0.2
safe_charge_voltage_v = 110.0
[[buses]]
name = "packs"
interface = "virtual"
channel = "{packs}"
[[buses]]
name = "inverter"
interface = "virtual"
channel = "{inverter}"
[[packs]]
id = "pack-a"
bus = "packs"
node_address = 3
"""


def limits(message: can.Message) -> tuple[float, float, float, float]:
    cvl, ccl, dcl, dvl = struct.unpack("<HhhH", message.data)
    return cvl / 10, ccl / 10, dcl / 10, dvl / 10


def inverter_metrics(port: int) -> dict[str, float]:
    """The gateway's bmsgw_inverter_* samples, scraped over HTTP."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith("bmsgw_inverter_") and "severity" not in sample.labels}


class Inverter:
    """The inverter's end of the bus: keeps every frame it receives, sends its keep-alive 0x305."""

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.frames: list[can.Message] = []

    def drain(self) -> list[can.Message]:
        new = []
        while (message := self.bus.recv(0)) is not None:
            new.append(message)
        self.frames += new
        return new

    def keepalive(self) -> None:
        self.bus.send(can.Message(arbitration_id=0x305, data=bytes(8), is_extended_id=False))


async def test_inverter_sees_live_limits_then_the_safe_state(tmp_path: Path) -> None:
    stamp = time.monotonic_ns()
    port = free_tcp_port()
    settings = site_in(tmp_path, CONFIG.format(packs=f"packs-{stamp}", inverter=f"inverter-{stamp}",
                                               prometheus_port=port))
    gateway = build_gateway(settings)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    encoder = FrameEncoder(load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1"))
    pack_bus = can.Bus(interface="virtual", channel=f"packs-{stamp}")
    inverter = Inverter(f"inverter-{stamp}")
    try:
        live: tuple[float, float, float, float] | None = None
        for _ in range(40):  # up to 4 s of healthy pack traffic at 10 Hz
            for frame in encoder.encode_fields(3, measurement()):
                pack_bus.send(can.Message(arbitration_id=frame.arbitration_id, data=frame.data, is_extended_id=True))
            inverter.keepalive()
            await asyncio.sleep(0.1)
            for message in inverter.drain():
                if message.arbitration_id == 0x351 and limits(message)[1] > 0:
                    live = limits(message)
            if live is not None:
                break
        assert live is not None, "the inverter never saw a charge current limit"
        snapshot = gateway.hub.latest
        assert snapshot is not None
        assert abs(live[0] - snapshot.site.charge_voltage_limit_v) < 0.11
        assert abs(live[3] - snapshot.site.discharge_voltage_limit_v) < 0.11
        assert not any(m.is_extended_id for m in inverter.frames)
        ids = {m.arbitration_id for m in inverter.frames}
        assert {0x351, 0x355, 0x356, 0x359, 0x35A, 0x35C, 0x35E, 0x373} <= ids
        flags = [m for m in inverter.frames if m.arbitration_id == 0x35C][-1].data[0]
        assert flags & 0xC0 == 0xC0  # charge and discharge enabled
        told = await asyncio.to_thread(inverter_metrics, port)
        assert told["bmsgw_inverter_safe_state"] == 0.0
        assert abs(told["bmsgw_inverter_charge_current_limit_amperes"] - live[1]) <= 0.5  # a later set may differ
        assert told["bmsgw_inverter_charge_enabled"] == 1.0
        assert told["bmsgw_inverter_keepalive_age_seconds"] < 0.5
        assert told["bmsgw_inverter_frame_sets_sent_total"] >= 1

        silent_since = time.monotonic()  # the pack stops talking; the inverter must get zero limits in time
        safe_after: float | None = None
        while time.monotonic() - silent_since < 3.0:
            await asyncio.sleep(0.05)
            for message in inverter.drain():
                if message.arbitration_id == 0x351 and limits(message)[1:3] == (0.0, 0.0):
                    safe_after = time.monotonic() - silent_since
            if safe_after is not None:
                break
        assert safe_after is not None, "limits never went to zero after the pack fell silent"
        assert safe_after <= 1.0 + 0.2 + 0.3  # stale timeout + one inverter period + scheduling
        assert limits([m for m in inverter.frames if m.arbitration_id == 0x351][-1])[0] == 110.0  # the safe CVL
        told = await asyncio.to_thread(inverter_metrics, port)
        assert told["bmsgw_inverter_safe_state"] == 1.0
        assert told["bmsgw_inverter_charge_current_limit_amperes"] == 0.0
        assert told["bmsgw_inverter_discharge_enabled"] == 0.0
        assert told["bmsgw_inverter_charge_voltage_limit_volts"] == 110.0
        count_before_stop = len(inverter.frames)
    finally:
        pack_bus.shutdown()
        stop.set()
        await asyncio.wait_for(runner, 10)
    inverter.drain()
    inverter.bus.shutdown()
    tail = inverter.frames[count_before_stop:]
    last_limits = [limits(m) for m in tail if m.arbitration_id == 0x351][-3:]
    assert len(last_limits) == 3, "the gateway did not send its safe frames when it stopped"
    assert all(ccl == dcl == 0.0 for _, ccl, dcl, _ in last_limits)
    assert [m for m in tail if m.arbitration_id == 0x35C][-1].data[0] & 0xC0 == 0
    assert all(limits(m)[0] > 0 for m in inverter.frames if m.arbitration_id == 0x351), "CVL = 0 was sent"
