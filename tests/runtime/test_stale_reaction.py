"""The whole gateway in-process on a virtual bus: a pack that goes silent loses its limits in time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import can

from gateway.app import build_gateway, run_gateway
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.protocol import load_protocol
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.measurement import ArrayField, BoundField, ScalarField
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.sites import site_in

CONFIG = """
[engine]
stale_timeout_s = 1.0

[admission]
enabled = false  # this stand-in pack answers no identity request

[modbus]
enabled = false
[opcua]
enabled = false
[prometheus]
enabled = false

[[buses]]
name = "bus"
interface = "virtual"
channel = "{channel}"

[[packs]]
id = "pack-a"
bus = "bus"
node_address = 3
temperature_sensors = 8
"""


def measurement() -> dict[tuple[BoundField, int], float]:
    values: dict[tuple[BoundField, int], float] = {(ArrayField.CELL_VOLTAGE_V, i): 3.75 for i in range(32)}
    values |= {(ArrayField.TEMPERATURE_C, i): 24.0 for i in range(8)}
    values |= {(ScalarField.PACK_VOLTAGE_V, -1): 120.0, (ScalarField.PACK_CURRENT_A, -1): -20.0,
               (ScalarField.CONTACTOR_STATE, -1): 2}
    return values


async def test_silence_zeroes_limits_and_raises_comm_loss_within_the_timeout(tmp_path: Path) -> None:
    channel = f"stale-{time.monotonic_ns()}"
    settings = site_in(tmp_path, CONFIG.format(channel=channel))
    gateway = build_gateway(settings)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    encoder = FrameEncoder(load_protocol(DEFAULT_MAPPINGS_DIR, "bmsgw-ref-v1"))
    pack_bus = can.Bus(interface="virtual", channel=channel)
    try:
        last_sent = 0.0
        for _ in range(20):  # 2 s of healthy traffic at 10 Hz
            for frame in encoder.encode_fields(3, measurement()):
                pack_bus.send(can.Message(arbitration_id=frame.arbitration_id, data=frame.data,
                                          is_extended_id=True))
            last_sent = time.monotonic()
            await asyncio.sleep(0.1)
        snapshot = gateway.hub.latest
        assert snapshot is not None
        assert snapshot.packs[0].online
        assert snapshot.packs[0].charge_current_limit_a > 0
        # the pack goes silent now
        sequence = snapshot.sequence
        while True:
            snapshot = await gateway.hub.wait_newer(sequence)
            sequence = snapshot.sequence
            pack = snapshot.packs[0]
            if not pack.online:
                reaction_s = time.monotonic() - last_sent
                break
            assert time.monotonic() - last_sent < 2.0, "never went stale"
        print(f"stale reaction: {reaction_s:.3f} s after the last frame")
        assert reaction_s <= 1.0, f"limits zeroed {reaction_s:.3f} s after the last frame"
        assert pack.charge_current_limit_a == 0.0
        assert pack.discharge_current_limit_a == 0.0
        assert pack.alarms == {AlarmCode.COMMUNICATION_LOSS: Severity.ALARM}
        assert snapshot.site.charge_current_limit_a == 0.0
        assert snapshot.site.packs_online == 0
    finally:
        pack_bus.shutdown()
        stop.set()
        await asyncio.wait_for(runner, 10)
