"""Fixtures: the real mappings, and python-can `virtual` bus pairs on a channel unique to each test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import can
import pytest

from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.sim.helpers import BusPair


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
