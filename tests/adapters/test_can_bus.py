"""The CAN bus service on python-can's virtual interface: frames in and out, error frames, a bus lost and reopened
with backoff, the state changes its listeners hear."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Iterator

import can
import pytest
import serial

from gateway.adapters.bus_supervisor import error_frame_state, reconnect_delay_s
from gateway.adapters.can_bus import interface_failed
from gateway.runtime.bus_counters import BusErrorState, BusStateChange
from tests.adapters import stateful_virtual_bus
from tests.adapters.can_services import PACK_STATUS_ID, bus_settings, error_frame, peer_on, serving, until


@pytest.fixture
def stateful_virtual(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, can.BusState]]:
    monkeypatch.setitem(can.interfaces.BACKENDS, "stateful-virtual",
                        ("tests.adapters.stateful_virtual_bus", "StatefulVirtualBus"))
    monkeypatch.setattr(can.util, "VALID_INTERFACES", can.util.VALID_INTERFACES | {"stateful-virtual"})
    yield stateful_virtual_bus.STATES
    stateful_virtual_bus.STATES.clear()


async def test_frames_reach_the_handler_and_the_frames_sent_reach_the_bus() -> None:
    settings = bus_settings()
    async with serving(settings) as running:
        with peer_on(settings) as peer:
            peer.send(can.Message(arbitration_id=PACK_STATUS_ID, data=b"\x01\x02\x03"))
            peer.send(can.Message(arbitration_id=0x123, is_remote_frame=True, is_extended_id=False))
            await until(lambda: running.frames != [] and running.counters.received == 1, "both frames received")
            assert [(f.bus, f.arbitration_id, f.data, f.is_extended_id) for f in running.frames] == [
                ("bus", PACK_STATUS_ID, b"\x01\x02\x03", True)]
            assert running.counters.rejected["remote_frame"] == 1

            assert running.service.send(0x301, b"\x05", is_extended_id=False)
            sent = await asyncio.to_thread(peer.recv, 1.0)
            assert sent is not None
            assert (sent.arbitration_id, bytes(sent.data), sent.is_extended_id) == (0x301, b"\x05", False)
            assert running.counters.sent == 1
            assert running.counters.up
            assert running.changes == []  # nothing happened to the bus


async def test_a_bus_off_error_frame_closes_the_bus_which_is_reopened_after_the_backoff(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.adapters.bus_supervisor")
    settings = bus_settings()
    async with serving(settings) as running:
        with peer_on(settings) as peer:
            peer.send(error_frame(0x040))  # CAN_ERR_BUSOFF
            await until(lambda: len(running.changes) == 2, "down, then up again")
            down, up = running.changes
            assert (down.up, down.error_state, down.reason) == (False, BusErrorState.OFF, "bus-off (error frame)")
            assert (up.up, up.error_state, up.reason) == (True, BusErrorState.ACTIVE, "reopened")
            assert up.wall_time - down.wall_time >= settings.reconnect_initial_delay_s
            counters = running.counters
            assert (counters.error_frames, counters.failures, counters.bus_off, counters.reconnects) == (1, 1, 1, 1)
            assert counters.up
            assert counters.error_state is BusErrorState.ACTIVE
            assert counters.state_changed_wall_time == up.wall_time

            peer.send(can.Message(arbitration_id=PACK_STATUS_ID, data=b"\x07"))  # the reopened bus receives
            await until(lambda: len(running.frames) == 1, "a frame on the reopened bus")
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert len(logged) == 2, logged  # the failure once, the recovery once
    assert logged[0][0] == logging.WARNING
    assert "down (bus-off (error frame))" in logged[0][1]
    assert "up again" in logged[1][1]


async def test_error_passive_and_back_to_error_active_keep_the_bus_open() -> None:
    settings = bus_settings()
    async with serving(settings) as running:
        with peer_on(settings) as peer:
            peer.send(error_frame(0x004, 0x20))  # controller: transmit error-passive
            await until(lambda: len(running.changes) == 1, "error-passive announced")
            assert running.counters.error_state is BusErrorState.PASSIVE
            peer.send(error_frame(0x004, 0x40))  # controller: back to error-active
            await until(lambda: len(running.changes) == 2, "error-active announced")
    assert [(c.up, c.error_state, c.reason) for c in running.changes] == [
        (True, BusErrorState.PASSIVE, "error-passive"), (True, BusErrorState.ACTIVE, "error-active")]
    assert (running.counters.error_frames, running.counters.failures) == (2, 0)


async def test_a_bus_closed_under_the_service_is_reopened_and_receives_again() -> None:
    settings = bus_settings()
    async with serving(settings) as running:
        running.bus.shutdown()  # the interface goes away under the receive thread
        await until(lambda: running.counters.reconnects == 1, "reopened")
        assert running.changes[0].reason == "receive failed: Cannot operate on a closed bus"
        assert (running.counters.failures, running.counters.bus_off) == (1, 0)
        with peer_on(settings) as peer:
            peer.send(can.Message(arbitration_id=PACK_STATUS_ID, data=b"\x08"))
            await until(lambda: len(running.frames) == 1, "a frame on the reopened bus")
            assert running.service.send(0x302, b"\x01")
            assert await asyncio.to_thread(peer.recv, 1.0) is not None


async def test_nothing_is_sent_while_the_bus_is_down() -> None:
    settings = bus_settings(reconnect_initial_delay_s=5.0, reconnect_max_delay_s=5.0)
    async with serving(settings) as running:
        running.bus.shutdown()
        await until(lambda: not running.counters.up, "down")
        assert not running.service.send(0x301, b"\x01")
        assert running.counters.sent == 0
        assert running.counters.reconnects == 0


async def test_an_interface_reporting_bus_off_is_reopened_and_its_passive_taken_for_no_error_state(
        stateful_virtual: dict[str, can.BusState]) -> None:
    settings = bus_settings("stateful-virtual", reconnect_initial_delay_s=0.5, reconnect_max_delay_s=0.5)
    async with serving(settings) as running:
        stateful_virtual[settings.channel] = can.BusState.PASSIVE  # PCAN, IXXAT, SYSTEC: listen-only mode
        await asyncio.sleep(1.2)  # polled at least once meanwhile
        assert running.counters.error_state is BusErrorState.ACTIVE
        stateful_virtual[settings.channel] = can.BusState.ERROR
        await until(lambda: not running.counters.up, "bus-off polled", 3.0)
        stateful_virtual[settings.channel] = can.BusState.ACTIVE  # the controller recovers while the bus is closed
        await until(lambda: running.counters.reconnects == 1, "reopened", 3.0)
    assert [(c.up, c.error_state, c.reason) for c in running.changes] == [
        (False, BusErrorState.OFF, "bus-off (reported by the interface)"),
        (True, BusErrorState.ACTIVE, "reopened")]
    assert (running.counters.failures, running.counters.bus_off) == (1, 1)


async def test_the_wait_grows_while_the_bus_keeps_failing_and_starts_over_once_it_stayed_up(
        stateful_virtual: dict[str, can.BusState]) -> None:
    settings = bus_settings("stateful-virtual", reconnect_initial_delay_s=0.05, reconnect_max_delay_s=0.4)
    async with serving(settings) as running:

        def recover_at_the_fourth_opening(change: BusStateChange) -> None:
            if change.up and running.counters.reconnects == 4:
                stateful_virtual[settings.channel] = can.BusState.ACTIVE

        running.service.add_state_listener(recover_at_the_fourth_opening)
        stateful_virtual[settings.channel] = can.BusState.ERROR  # until then every opening goes bus-off at once
        await until(lambda: running.counters.reconnects == 4, "four openings", 5.0)
        await asyncio.sleep(settings.reconnect_max_delay_s + 0.1)  # up long enough to start over
        with peer_on(settings) as peer:
            peer.send(error_frame(0x040))
            await until(lambda: running.counters.reconnects == 5, "reopened after a new outage")
    changes = running.changes
    assert [c.up for c in changes] == [False, True] * 5
    waits = [up.wall_time - down.wall_time for down, up in zip(changes[::2], changes[1::2], strict=True)]
    for wait, expected in zip(waits, (0.05, 0.1, 0.2, 0.4, 0.05), strict=True):
        assert expected <= wait < expected + 0.15, waits


def test_the_wait_doubles_from_the_initial_delay_up_to_the_maximum() -> None:
    assert [reconnect_delay_s(n, 0.5, 30.0) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert reconnect_delay_s(10_000, 0.5, 30.0) == 30.0
    jittered = [reconnect_delay_s(3, 0.5, 30.0, jitter_ratio=0.2) for _ in range(200)]
    assert all(3.2 <= delay <= 4.0 for delay in jittered)
    assert len(set(jittered)) > 1


def test_error_frames_announce_the_controller_state_in_the_socketcan_layout() -> None:
    assert error_frame_state(error_frame(0x040)) is BusErrorState.OFF
    assert error_frame_state(error_frame(0x004, 0x10)) is BusErrorState.PASSIVE  # receive error-passive
    assert error_frame_state(error_frame(0x004, 0x20)) is BusErrorState.PASSIVE  # transmit error-passive
    assert error_frame_state(error_frame(0x004, 0x40)) is BusErrorState.ACTIVE
    assert error_frame_state(error_frame(0x100)) is BusErrorState.ACTIVE  # controller restarted
    assert error_frame_state(error_frame(0x004, 0x04)) is None  # only a warning level
    assert error_frame_state(error_frame(0x080)) is None  # a bus error, no state change


def _raised(error: BaseException, cause: BaseException | None = None) -> BaseException:
    try:
        raise error from cause
    except BaseException as raised:  # noqa: BLE001 - only to get the chain python-can builds
        return raised


def test_only_send_failures_with_an_os_error_underneath_mean_the_interface_is_gone() -> None:
    io_error = OSError(errno.EIO, "Input/output error")
    assert interface_failed(_raised(can.CanOperationError("Could not write to serial device"), io_error))
    assert interface_failed(serial.SerialException("Could not configure port: (5, 'Input/output error')"))
    assert interface_failed(_raised(can.CanOperationError("Failed to transmit: Network is down"),
                                    OSError(errno.ENETDOWN, "Network is down")))
    assert not interface_failed(can.CanOperationError("Transmit buffer full"))
    assert not interface_failed(_raised(can.CanOperationError("Failed to transmit"),
                                        OSError(errno.ENOBUFS, "No buffer space available")))
    assert not interface_failed(can.CanTimeoutError("timed out"))
