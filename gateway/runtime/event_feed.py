"""The engine's events for one output that follows them as they happen (the OPC UA conditions).

The engine pushes every event it logs; the output takes what accumulated since it last looked. A reader that
stops taking loses the oldest beyond `capacity`, and is told how many, so it can resynchronise from a snapshot
instead of growing without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.domain.events import BmsEvent

DEFAULT_CAPACITY = 10_000


@dataclass(frozen=True, slots=True)
class EventBatch:
    events: tuple[BmsEvent, ...]
    lost: int  # events dropped before these because the reader fell behind


class EventFeed:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._events: deque[BmsEvent] = deque(maxlen=capacity)
        self._lost = 0
        self._arrived = asyncio.Event()

    def push(self, events: Iterable[BmsEvent]) -> None:
        for event in events:
            if len(self._events) == self._events.maxlen:
                self._lost += 1
            self._events.append(event)
            self._arrived.set()

    def lose(self, count: int) -> None:
        """Events lost upstream (a feed that forwards another's): reported with the next batch."""
        self._lost += count
        self._arrived.set()

    def take(self) -> EventBatch:
        batch = EventBatch(tuple(self._events), self._lost)
        self._events.clear()
        self._lost = 0
        self._arrived.clear()
        return batch

    async def wait(self) -> None:
        """Until there is something to take."""
        await self._arrived.wait()
