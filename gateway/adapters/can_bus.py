"""python-can at the boundary: open a bus, receive into a bounded queue, send frames, reopen a lost bus.

Each open bus has a receive thread blocking in python-can's `recv`; it only appends to a bounded deque (oldest
dropped and counted when full) and wakes the event loop once per batch, so a flood never grows memory and ingest
drains in batches. (python-can's Notifier would hand the loop every frame on its own, and with a loop it ends its
thread on a receive error, unhandled.)

A bus that fails (an interface error on receive or send, bus-off; gateway.adapters.bus_supervisor) is closed and
reopened with backoff, for ever; only the first opening, `open_bus` while the gateway is built, fails the start.
Opening and closing run on a worker thread (a serial adapter's open sleeps), so the loop serves on meanwhile. While
a bus is down its packs' data ages, and the engine's stale-data rules take their limits to zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import can

from gateway.adapters.bus_supervisor import BusSupervisor, StateListener, error_frame_state, reconnect_delay_s
from gateway.adapters.can_recorder import CanRecorder
from gateway.domain.frames import CanFrame
from gateway.errors import AdapterError
from gateway.runtime.bus_counters import BusCounters, BusErrorState
from gateway.settings import BusSettings

log = logging.getLogger(__name__)

FrameHandler = Callable[[CanFrame, float], None]

RECEIVE_TIMEOUT_S = 0.1  # how soon a receive thread notices it should stop
STATE_POLL_INTERVAL_S = 1.0  # how often a receive thread asks the interface whether it is bus-off
SEND_TIMEOUT_S = 0.05
JOIN_TIMEOUT_S = 2.0
_BUSY_ERRNOS = frozenset({errno.ENOBUFS, errno.EAGAIN})  # a full transmit queue: the bus is busy, not gone


def open_bus(settings: BusSettings) -> can.BusABC:
    kwargs: dict[str, Any] = dict(settings.options)
    if settings.bitrate is not None and settings.interface not in {"virtual"}:
        kwargs["bitrate"] = settings.bitrate
    try:
        return can.Bus(interface=settings.interface, channel=settings.channel,
                       receive_own_messages=settings.receive_own_messages, **kwargs)
    except (can.CanError, OSError, ValueError, ImportError) as error:
        raise AdapterError(f"bus {settings.name}: cannot open interface {settings.interface!r} channel "
                           f"{settings.channel!r} ({error}); check [[buses]] name={settings.name!r}") from error


def interface_failed(error: BaseException) -> bool:
    """Whether a send failure means the interface is gone (an OS error underneath, e.g. an unplugged serial adapter)
    rather than a busy or unacknowledged bus (a timeout, a full transmit queue)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, TimeoutError) and cause.errno not in _BUSY_ERRNOS:
            return True
        cause = cause.__cause__
    return False


def _shut_down(bus: can.BusABC) -> None:
    try:
        bus.shutdown()
    except (can.CanError, OSError) as error:  # a lost interface often fails its own close command
        log.debug("closing %s: %s", bus.channel_info, error)


def _shut_down_if_opened(opening: asyncio.Future[can.BusABC]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        _shut_down(opening.result())


async def _open_off_loop(settings: BusSettings) -> can.BusABC:
    """`open_bus` on a worker thread; a bus that opens after the caller was cancelled is shut down again."""
    opening = asyncio.ensure_future(asyncio.to_thread(open_bus, settings))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_shut_down_if_opened)
        raise


class CanBusService:
    """Receives from one bus into `handler` (on the event loop), sends frames to it, reopens it when it is lost.

    `add_state_listener(listener)`: `listener(BusStateChange)` is called on the event loop when the bus goes down,
    comes back, or its controller turns error-passive or error-active again (the engine's hook for bus events).
    `recorder`: every frame received and sent is also written there (`bms-gateway run --record`).
    """

    def __init__(self, settings: BusSettings, bus: can.BusABC, counters: BusCounters,
                 handler: FrameHandler, recorder: CanRecorder | None = None) -> None:
        self.name = f"can:{settings.name}"
        self.ready = asyncio.Event()
        self.recorder = recorder
        self._settings = settings
        self._counters = counters
        self._handler = handler
        self._supervisor = BusSupervisor(settings.name, counters)
        self._supervisor.opened()
        self._queue: deque[can.Message] = deque(maxlen=settings.queue_size)
        self._pending = asyncio.Event()
        self._wake_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # the bus and its receive thread change hands between the loop and workers
        self._bus: can.BusABC | None = bus
        self._receiving: threading.Thread | None = None
        self._session = threading.Event()  # one per open bus: set when it is over; stale reports name an old one
        self._failure: tuple[str, bool] | None = None  # (reason, bus-off) once the open bus failed
        self._tries = 0  # failed or short-lived openings in a row: the next wait's exponent
        self._up_since = time.monotonic()
        self._send_failures_logged = False

    def add_state_listener(self, listener: StateListener) -> None:
        self._supervisor.listeners.append(listener)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.ready.set()
        try:
            while True:
                reason, bus_off = await self._receive_until_lost()
                self._supervisor.lost(reason, bus_off=bus_off)
                if time.monotonic() - self._up_since >= self._settings.reconnect_max_delay_s:
                    self._tries = 0  # it had been up a while: a new outage, not the last one flapping
                await asyncio.to_thread(self._release)
                await self._reopen()
        finally:
            # The bus itself stays open until close(): other services may still send on their way out.
            self._session.set()

    def close(self) -> None:
        """Stop receiving and shut the bus down (after every service has stopped); safe to call again."""
        self._release()

    def send(self, arbitration_id: int, data: bytes, is_extended_id: bool = True) -> bool:
        bus = self._bus
        if bus is None:
            return False  # down: reported by the supervisor, the frame has nowhere to go
        message = can.Message(timestamp=time.time(), arbitration_id=arbitration_id, data=data,
                              is_extended_id=is_extended_id, is_rx=False)
        try:
            bus.send(message, timeout=SEND_TIMEOUT_S)
        except (can.CanError, OSError) as error:  # slcan raises pyserial's errors (OSError) as they are
            if not self._send_failures_logged:
                self._send_failures_logged = True
                log.warning("bus %s: send failed (%s); further failures are only counted",
                            self._settings.name, error)
            self._counters.rejected["send_failed"] += 1
            if interface_failed(error):
                self._fail(self._session, f"send failed: {error}", bus_off=False)
            return False
        self._send_failures_logged = False
        self._counters.sent += 1
        if self.recorder is not None:
            self.recorder.record(self._settings.name, message)
        return True

    # --- on the event loop ----------------------------------------------------------------------
    async def _receive_until_lost(self) -> tuple[str, bool]:
        """Receive from the open bus until it fails: why, and whether it went bus-off."""
        with self._lock:
            bus = self._bus
            assert bus is not None, "a bus service receives only while its bus is open"
            session = self._session = threading.Event()
            self._failure = None
            self._receiving = threading.Thread(target=self._receive, args=(bus, session), daemon=True,
                                               name=f"can-receive-{self._settings.name}")
            self._receiving.start()
        while self._failure is None:
            await self._pending.wait()
            self._pending.clear()
            self._wake_scheduled = False
            self._drain()
        return self._failure

    def _drain(self) -> None:
        now = time.monotonic()
        bus_name = self._settings.name
        counters = self._counters
        recorder = self.recorder
        queue = self._queue
        while queue:
            msg = queue.popleft()
            if msg.is_error_frame:
                counters.error_frames += 1
                self._error_frame(msg)
            elif msg.is_remote_frame:
                counters.received += 1
                counters.rejected["remote_frame"] += 1
            else:
                self._handler(CanFrame(bus_name, msg.arbitration_id, bytes(msg.data), msg.timestamp,
                                       msg.is_extended_id), now)
            if recorder is not None:
                recorder.record(bus_name, msg)

    def _error_frame(self, msg: can.Message) -> None:
        state = error_frame_state(msg)
        if state is BusErrorState.OFF:
            self._fail(self._session, "bus-off (error frame)", bus_off=True)
        elif state is not None:
            self._supervisor.error_state_reported(state)

    def _fail(self, session: threading.Event, reason: str, *, bus_off: bool) -> None:
        if session is not self._session or session.is_set() or self._failure is not None:
            return  # a report about a bus already given up, or a second one about this bus
        self._failure = (reason, bus_off)
        self._pending.set()

    async def _reopen(self) -> None:
        settings = self._settings
        while True:
            await asyncio.sleep(reconnect_delay_s(self._tries, settings.reconnect_initial_delay_s,
                                                  settings.reconnect_max_delay_s, settings.reconnect_jitter_ratio))
            self._tries += 1
            try:
                bus = await _open_off_loop(settings)
            except AdapterError as error:
                self._supervisor.reopen_failed(error)
                continue
            with self._lock:
                self._bus = bus
            self._up_since = time.monotonic()
            self._supervisor.reopened()
            return

    # --- on the receive thread --------------------------------------------------------------------
    def _receive(self, bus: can.BusABC, session: threading.Event) -> None:
        next_state_poll = 0.0
        while not session.is_set():
            try:
                msg = bus.recv(RECEIVE_TIMEOUT_S)
                if time.monotonic() >= next_state_poll:
                    next_state_poll = time.monotonic() + STATE_POLL_INTERVAL_S
                    if bus.state is can.BusState.ERROR:
                        self._call_soon(self._reported, session, "bus-off (reported by the interface)", True)
                        return
            except Exception as error:  # noqa: BLE001 - whatever an interface raises here, the bus failed: report it
                if not session.is_set():
                    self._call_soon(self._reported, session, f"receive failed: {error}", False)
                return
            if msg is not None:
                self._enqueue(msg)

    def _reported(self, session: threading.Event, reason: str, bus_off: bool) -> None:
        self._fail(session, reason, bus_off=bus_off)

    def _enqueue(self, msg: can.Message) -> None:
        queue = self._queue
        if len(queue) == queue.maxlen:
            self._counters.dropped_queue_full += 1
        queue.append(msg)
        if not self._wake_scheduled:
            self._wake_scheduled = True
            self._call_soon(self._pending.set)

    def _call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed while this thread was stopping
                loop.call_soon_threadsafe(callback, *args)

    # --- on a worker thread, or at the very end ---------------------------------------------------
    def _release(self) -> None:
        """Stop the receive thread, then shut the bus down (blocking)."""
        with self._lock:
            bus, self._bus = self._bus, None
            receiving, self._receiving = self._receiving, None
            self._session.set()
        if receiving is not None:
            receiving.join(JOIN_TIMEOUT_S)
        if bus is not None:
            _shut_down(bus)
