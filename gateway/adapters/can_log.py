"""Reading a CAN log (candump `.log`, Vector `.asc` or `.blf`, through python-can's readers) as the site's buses.

Channels map back to bus names the way `bms-gateway run --record` writes them (adapters/can_recorder.py): a
`.log` names the bus, an `.asc`/`.blf` channel is the 1-based position of the bus in the site's `[[buses]]`.
A log from elsewhere (candump on `can0`) is mapped with `channel_map` (`{"can0": "packs"}`), or all of it onto
one bus. Frames the gateway itself sent (marked transmitted in the log) are skipped: the replayed engine sends
its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import can

from gateway.domain.frames import CanFrame, LoggedFrame
from gateway.errors import ConfigError, Problem

LOG_FORMATS = {".log": "candump", ".asc": "Vector ASC", ".blf": "Vector BLF"}
_EPOCH_2000_S = 946_684_800.0


@dataclass
class LogCounts:
    frames: int = 0
    transmitted_skipped: int = 0
    error_or_remote: int = 0


class CanLog:
    """The frames of one log file, mapped onto the site's buses; `start_wall_time` is the log's first frame on the
    wall clock when the log carries absolute times, else None."""

    def __init__(self, path: Path, bus_names: Sequence[str], channel_map: Mapping[str, str] | None = None,
                 only_bus: str | None = None) -> None:
        suffix = path.suffix.lower()
        if suffix not in LOG_FORMATS:
            raise ConfigError([Problem(str(path), "(file name)", f"{suffix or 'no suffix'} is not a CAN log format "
                                       "this gateway reads", f"use one of {', '.join(sorted(LOG_FORMATS))}")])
        if not path.is_file():
            raise ConfigError([Problem(str(path), "(file)", "does not exist", "give the path of a recorded log")])
        for name in [*(channel_map or {}).values(), *([only_bus] if only_bus else [])]:
            if name not in bus_names:
                raise ConfigError([Problem(str(path), "--bus", f"names bus {name!r}, which the site does not have",
                                           f"use one of {list(bus_names)}")])
        self.path = path
        self.counts = LogCounts()
        self.start_wall_time: float | None = None
        self._bus_names = list(bus_names)
        self._channel_map = dict(channel_map or {})
        self._only_bus = only_bus

    def frames(self) -> Iterator[LoggedFrame]:
        first: float | None = None
        try:
            reader = can.LogReader(str(self.path))
        except (OSError, ValueError) as error:
            raise ConfigError([Problem(str(self.path), "(file)", f"cannot be read ({error})",
                                       "check the file is a complete CAN log")]) from error
        with reader:
            for message in reader:
                if not message.is_rx:
                    self.counts.transmitted_skipped += 1
                    continue
                if message.is_error_frame or message.is_remote_frame:
                    self.counts.error_or_remote += 1
                    continue
                if first is None:
                    first = message.timestamp
                    if message.timestamp > _EPOCH_2000_S:
                        self.start_wall_time = message.timestamp
                bus = self._bus_of(message.channel)
                self.counts.frames += 1
                yield LoggedFrame(max(0.0, message.timestamp - first),
                                  CanFrame(bus, message.arbitration_id, bytes(message.data), message.timestamp,
                                           message.is_extended_id))

    def _bus_of(self, channel: object) -> str:
        if self._only_bus is not None:
            return self._only_bus
        key = "" if channel is None else str(channel)
        if key in self._channel_map:
            return self._channel_map[key]
        if isinstance(channel, str) and channel in self._bus_names:
            return channel
        if isinstance(channel, int) and 0 <= channel < len(self._bus_names):
            return self._bus_names[channel]  # python-can's ASC/BLF readers count from 0: file channel 1 is bus 1
        if len(self._bus_names) == 1:
            return self._bus_names[0]
        raise ConfigError([Problem(str(self.path), f"channel {channel!r}", "matches no bus of the site",
                                   f"map it with --bus {channel}=NAME (buses: {self._bus_names}), or play the "
                                   "whole log onto one bus with --bus NAME")])

