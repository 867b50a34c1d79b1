"""Recording the frames of every bus into one file (`bms-gateway run --record FILE`) with python-can's writers.

The suffix picks the format: `.log` candump (`candump -L` lines), `.asc` Vector ASCII, `.blf` Vector binary
logging. Frames are recorded on the event loop only: received ones as the bus service drains them, the ones the
gateway sends as it sends them (`is_rx` false). Timestamps are Unix time; a frame a bus stamped earlier than the
frame written before it (buses are drained in turn) is written with that frame's time, so the file never goes
back in time.

The channel of a frame says its bus:

    .log        the bus's name in [[buses]] (a name of digits only, e.g. "2", python-can writes as "can2")
    .asc .blf   the bus's 1-based position in [[buses]]: the first bus is channel 1 in the file; python-can's
                readers give it back 0-based (`Message.channel == 0` for the first bus), as for any interface

What is recorded reaches the file within FLUSH_INTERVAL_S, so a gateway killed with kill -9 loses well under a
second of log. The header of a BLF file (object count, stop time) is only written on a clean stop; python-can's
BLFReader reads a file without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import can
from can.io.generic import FileIOMessageWriter

from gateway.errors import AdapterError, ConfigError, Problem

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
WRITERS: dict[str, Callable[[Path], FileIOMessageWriter[Any]]] = {
    ".log": can.CanutilsLogWriter,
    ".asc": can.ASCWriter,
    ".blf": can.BLFWriter,
}
CHANNEL_IS_BUS_NAME = frozenset({".log"})  # the others number channels


class CanRecorder:
    """One recording file for the buses `bus_names` (in [[buses]] order)."""

    def __init__(self, path: Path, bus_names: Sequence[str]) -> None:
        suffix = path.suffix.lower()
        writer_class = WRITERS.get(suffix)
        if writer_class is None:
            raise ConfigError([Problem("command line", "run --record", f"{path}: cannot record to a "
                                       f"{suffix or 'suffix-less'} file",
                                       "name the file *.log (candump), *.asc (Vector ASCII) or *.blf (Vector BLF)")])
        try:
            self._writer: FileIOMessageWriter[Any] | None = writer_class(path)
        except OSError as error:
            raise AdapterError(f"run --record {path}: cannot create the file ({error}); record into an existing, "
                               "writable directory") from error
        self.path = path
        self.frames = 0
        self._channels: dict[str, str | int] = {
            name: name if suffix in CHANNEL_IS_BUS_NAME else position for position, name in enumerate(bus_names)}
        self._last_timestamp = 0.0
        self._flush_due: asyncio.TimerHandle | None = None

    def record(self, bus: str, message: can.Message) -> None:
        """Write `message` of `bus` (takes it over: its channel and, when earlier than the last, its timestamp)."""
        writer = self._writer
        if writer is None:
            return
        message.channel = self._channels[bus]
        if message.timestamp < self._last_timestamp:
            message.timestamp = self._last_timestamp
        self._last_timestamp = message.timestamp
        try:
            writer.on_message_received(message)
        except OSError as error:
            self._give_up(error)
            return
        self.frames += 1
        if self._flush_due is None:
            self._schedule_flush()

    def flush(self) -> None:
        self._flush_due = None
        writer = self._writer
        if writer is None:
            return
        try:
            if isinstance(writer, can.BLFWriter):
                writer._flush()  # BLFWriter has no public flush: this writes the buffered frames as one container
            writer.file.flush()
        except OSError as error:
            self._give_up(error)

    def close(self) -> None:
        """Write what is buffered and the file's trailer (BLF header, ASC end); safe to call again."""
        if self._flush_due is not None:
            self._flush_due.cancel()
            self._flush_due = None
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.stop()
        except OSError as error:
            log.error("recording to %s: closing failed (%s)", self.path, error)
            return
        log.info("recorded %d CAN frames to %s", self.frames, self.path)

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop (a test, a tool): write through
            self.flush()
            return
        self._flush_due = loop.call_later(FLUSH_INTERVAL_S, self.flush)

    def _give_up(self, error: OSError) -> None:
        log.error("recording to %s stopped: %s (the gateway runs on)", self.path, error)
        writer, self._writer = self._writer, None
        if self._flush_due is not None:
            self._flush_due.cancel()
            self._flush_due = None
        if writer is not None:
            try:
                writer.stop()
            except OSError as again:
                log.debug("recording to %s: closing after the failure failed too (%s)", self.path, again)
