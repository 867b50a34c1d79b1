"""The CAN bus service on python-can's slcan interface over a socat pty pair: a serial CAN adapter that is unplugged
(socat stopped), stays away while the service keeps trying, and is plugged in again."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import can

from gateway.runtime.bus_counters import BusErrorState
from tests.adapters.can_services import PACK_STATUS_ID, bus_settings, serving, until
from tests.adapters.socat_pair import BITRATE, SLCAN_OPTIONS, SocatPair


def _pack_end(pair: SocatPair) -> can.BusABC:
    return can.Bus(interface="slcan", channel=str(pair.pack_end), bitrate=BITRATE, **SLCAN_OPTIONS)


def _shut_down(bus: can.BusABC) -> None:
    with contextlib.suppress(can.CanError):  # its pty is gone: slcan's close command fails
        bus.shutdown()


async def test_an_unplugged_serial_adapter_is_retried_until_it_is_back(tmp_path: Path) -> None:
    pair = SocatPair(tmp_path)
    pair.start()
    settings = bus_settings("slcan", channel=str(pair.gateway_end), bitrate=BITRATE, options=SLCAN_OPTIONS,
                            reconnect_initial_delay_s=0.05, reconnect_max_delay_s=0.2)
    pack = _pack_end(pair)
    try:
        async with serving(settings) as running:
            pack.send(can.Message(arbitration_id=PACK_STATUS_ID, data=b"\x01\x02"))
            await until(lambda: len(running.frames) == 1, "a frame over the serial line")

            pair.unplug()
            await until(lambda: not running.counters.up, "the bus down")
            down = running.changes[0]
            assert not down.up
            assert down.reason.startswith("receive failed: Could not read from serial device")
            await asyncio.sleep(0.6)  # several tries fail: the pty is not there
            assert (running.counters.up, running.counters.reconnects) == (False, 0)
            assert not running.service.send(0x301, b"\x01")

            pair.start()
            _shut_down(pack)
            pack = _pack_end(pair)
            await until(lambda: running.counters.up, "the bus up again")
            assert (running.counters.failures, running.counters.reconnects) == (1, 1)
            assert running.counters.error_state is BusErrorState.ACTIVE
            pack.send(can.Message(arbitration_id=PACK_STATUS_ID, data=b"\x03"))
            await until(lambda: len(running.frames) == 2, "a frame over the new line")
            assert running.frames[1].data == b"\x03"
            assert running.service.send(0x301, b"\x04", is_extended_id=False)
            echoed = await asyncio.to_thread(pack.recv, 1.0)
            assert echoed is not None
            assert (echoed.arbitration_id, bytes(echoed.data)) == (0x301, b"\x04")
    finally:
        _shut_down(pack)
        pair.unplug()
