"""Garbage-collector pauses of the process under test, recorded through `gc.callbacks`.

A collection stops every thread of the process (it runs with the GIL held), so on an event-loop server a full
collection is a stall of the loop: requests and engine ticks wait for it.
"""

from __future__ import annotations

import gc
import time
from typing import Any


class GcPauses:
    """(end, generation, duration) of every collection since `install()`; times are monotonic seconds."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []
        self._started = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._started = now
        else:
            self.pauses.append((now, int(info["generation"]), now - self._started))
