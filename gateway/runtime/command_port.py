"""Commands from in-process clients (the Modbus command registers, OPC UA methods) for the engine's next tick, the
EMS heartbeat supervision, the events of writes refused before they reached the engine, and the engine's events
for the outputs that follow them (`follow_events`).

The heartbeat is supervised from the gateway's start: until the EMS has written a first value, and whenever it
has not changed the value for `timeout_s`, the heartbeat is lost and the engine applies the configured reaction.
"""

from __future__ import annotations

from enum import IntEnum

from gateway.domain.events import BmsEvent
from gateway.runtime.event_feed import EventFeed
from gateway.runtime.operator_commands import OperatorCommand


class HeartbeatState(IntEnum):
    """Published on the site unit: never renumber."""

    NOT_SUPERVISED = 0
    OK = 1
    LOST = 2


class CommandPort:
    def __init__(self, heartbeat_timeout_s: float | None = None, started: float = 0.0) -> None:
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self._commands: list[OperatorCommand] = []
        self._events: list[BmsEvent] = []
        self._heartbeat_value: int | None = None
        self._heartbeat_at = started
        self._feeds: list[EventFeed] = []

    def submit(self, command: OperatorCommand) -> None:
        self._commands.append(command)

    def record(self, event: BmsEvent) -> None:
        self._events.append(event)

    def follow_events(self) -> EventFeed:
        """A feed of every event the engine logs from now on."""
        feed = EventFeed()
        self._feeds.append(feed)
        return feed

    def broadcast(self, events: list[BmsEvent]) -> None:
        for feed in self._feeds:
            feed.push(events)

    def heartbeat(self, value: int, now: float) -> None:
        """A written heartbeat value; only a change proves the EMS is alive."""
        if value != self._heartbeat_value:
            self._heartbeat_value = value
            self._heartbeat_at = now

    @property
    def heartbeat_value(self) -> int:
        return self._heartbeat_value or 0

    def heartbeat_state(self, now: float) -> HeartbeatState:
        if self.heartbeat_timeout_s is None:
            return HeartbeatState.NOT_SUPERVISED
        alive = self._heartbeat_value is not None and now - self._heartbeat_at <= self.heartbeat_timeout_s
        return HeartbeatState.OK if alive else HeartbeatState.LOST

    def drain(self) -> tuple[list[OperatorCommand], list[BmsEvent]]:
        commands, events = self._commands, self._events
        self._commands, self._events = [], []
        return commands, events
