"""Playing a CAN log through the gateway at the log's own time: frames into the buses' receivers, the engine advanced
every tick period of log time, paced to `speed` x real time (0: as fast as the engine computes).

Because the engine sees the log's clock, not the wall clock, a replay reaches the states the live gateway reached
from the same frames, whatever the speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping

from gateway.domain.frames import LoggedFrame
from gateway.runtime.engine import Engine
from gateway.runtime.ingest import FrameSink

LOG_CLOCK_ORIGIN_S = 1_000.0  # the engine's monotonic time of the log's first frame
TickObserver = Callable[[float], None]


class LogPlayer:
    def __init__(self, frames: Iterable[LoggedFrame], receivers: Mapping[str, FrameSink], engine: Engine, *,
                 period_s: float, speed: float, start_wall_time: Callable[[], float | None],
                 on_tick: TickObserver | None = None) -> None:
        self.name = "replay"
        self.ready = asyncio.Event()
        self.finished = asyncio.Event()
        self.ticks = 0
        self.log_time_s = 0.0
        self._frames = frames
        self._receivers = receivers
        self._engine = engine
        self._period_s = period_s
        self._speed = speed
        self._start_wall_time = start_wall_time
        self._on_tick = on_tick
        self._wall_origin = 0.0
        self._paced_from = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._paced_from = loop.time()
        self.ready.set()
        next_tick_s = self._period_s
        try:
            for logged in self._frames:
                while logged.time_s >= next_tick_s:
                    await self._tick(next_tick_s)
                    next_tick_s += self._period_s
                self._receivers[logged.frame.bus].handle(logged.frame, LOG_CLOCK_ORIGIN_S + logged.time_s)
            await self._tick(next_tick_s)
        finally:
            self._engine.close()
        self.finished.set()

    async def _tick(self, log_time_s: float) -> None:
        if self.ticks == 0:
            wall = self._start_wall_time()
            self._wall_origin = wall if wall is not None else time.time()
            self._engine.wall_clock = lambda: self._wall_origin + self.log_time_s
        if self._speed > 0:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._paced_from + log_time_s / self._speed - loop.time()))
        self.log_time_s = log_time_s
        await self._engine.advance(LOG_CLOCK_ORIGIN_S + log_time_s)
        self.ticks += 1
        if self._on_tick is not None:
            self._on_tick(log_time_s)
