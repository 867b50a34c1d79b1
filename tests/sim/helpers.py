"""Helpers of the simulator tests: the receiving side of a bus, and settings builders."""

from __future__ import annotations

from typing import Any

import can

from gateway.codec.can_decoder import DecodedFrame, FrameDecoder
from gateway.codec.protocol import PackProtocol
from gateway.domain.frames import CanFrame
from gateway.domain.measurement import BoundField
from gateway.errors import FrameRejected
from gateway.settings import SimulatedFault, SimulatedPack, SimulationSettings

BusPair = tuple[can.BusABC, can.BusABC]  # (simulator side, gateway side)


def make_settings(*packs: SimulatedPack, **overrides: Any) -> SimulationSettings:
    defaults: dict[str, Any] = {"load_profile": "constant", "load_scale_c": 0.5}
    defaults.update(overrides)
    return SimulationSettings(packs=packs or (make_pack(),), **defaults)


def make_pack(node_address: int = 5, *faults: SimulatedFault, **overrides: Any) -> SimulatedPack:
    bus = overrides.pop("bus", "sim")
    return SimulatedPack(node_address=node_address, bus=bus, faults=faults, **overrides)


def values_of(frame: DecodedFrame) -> dict[tuple[BoundField, int], float]:
    return {(value.field, value.index): value.value for value in frame.values}


def drain(bus: can.BusABC) -> list[can.Message]:
    messages = []
    while (message := bus.recv(timeout=0.0)) is not None:
        messages.append(message)
    return messages


class Gateway:
    """The receiving side of a test: decodes what it drains and counts rejects by reason."""

    def __init__(self, bus: can.BusABC, protocol: PackProtocol) -> None:
        self.bus = bus
        self.decoder = FrameDecoder([protocol])
        self.decoded: list[DecodedFrame] = []
        self.rejected: dict[str, int] = {}
        self.received = 0

    def drain(self) -> list[DecodedFrame]:
        fresh = []
        for message in drain(self.bus):
            self.received += 1
            frame = CanFrame("test", message.arbitration_id, bytes(message.data), message.timestamp,
                             message.is_extended_id)
            try:
                fresh.append(self.decoder.decode(frame))
            except FrameRejected as rejected:
                self.rejected[rejected.reason] = self.rejected.get(rejected.reason, 0) + 1
        self.decoded.extend(fresh)
        return fresh
