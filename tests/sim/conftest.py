"""Fixtures: the real mappings, and python-can `virtual` bus pairs on a channel unique to each test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import can
import pytest

from gateway.codec.can_decoder import DecodedFrame, FrameDecoder
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.domain.frames import CanFrame
from gateway.errors import FrameRejected
from gateway.settings import DEFAULT_MAPPINGS_DIR

BusPair = tuple[can.BusABC, can.BusABC]  # (simulator side, gateway side)


@pytest.fixture
def mappings_dir() -> Path:
    return DEFAULT_MAPPINGS_DIR


@pytest.fixture
def protocol(mappings_dir: Path) -> PackProtocol:
    return load_protocol(mappings_dir, "bmsgw-ref-v1")


@pytest.fixture
def bus_pair() -> Iterator[Callable[[], BusPair]]:
    opened: list[can.BusABC] = []

    def open_pair() -> BusPair:
        channel = f"sim-test-{uuid.uuid4().hex}"
        pair = tuple(can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
                     for _ in range(2))
        opened.extend(pair)
        return pair[0], pair[1]

    yield open_pair
    for bus in opened:
        bus.shutdown()


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
