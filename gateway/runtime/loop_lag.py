"""The event loop's lag, measured the way a waiting CAN frame or request feels it: how late a timer fires."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

PERIOD_S = 0.1


class LoopLagProbe:
    """Service: asks the loop to wake it every `period_s` and reports how late each wake-up came (seconds)."""

    name = "loop-lag"

    def __init__(self, observe: Callable[[float], None], period_s: float = PERIOD_S) -> None:
        self.ready = asyncio.Event()
        self._observe = observe
        self._period_s = period_s

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.ready.set()
        while True:
            due = loop.time() + self._period_s
            await asyncio.sleep(self._period_s)
            self._observe(max(0.0, loop.time() - due))
