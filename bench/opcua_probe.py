"""What the OPC UA benchmark's server processes measure about themselves, and how they are commanded.

- `LoopLag`: a task that asks the event loop to wake it every `period_s` and records how late each wake-up came
  (monotonic time, lateness). Everything else the loop runs (engine ticks, CAN frames, outputs, GC pauses) shows up
  as lateness; uvloop's timers have 1 ms resolution, so about 1 ms is the floor.
- `process_cpu_s`: CPU seconds of a whole process so far, from /proc/<pid>/stat (the benchmark reads it for each
  server process at the start and the end of a window: a busy event loop cannot delay that reading).
- `commands`: the line protocol on stdin / stdout: the server prints one JSON line when ready, then answers each
  command line with one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class LoopLag:
    def __init__(self, period_s: float = 0.01) -> None:
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []  # (monotonic, seconds late)

    async def run(self) -> None:
        while True:
            due = time.monotonic() + self.period_s
            await asyncio.sleep(self.period_s)
            now = time.monotonic()
            self.samples.append((now, now - due))

    def window(self, start_s: float, end_s: float) -> list[float]:
        return [late for when, late in self.samples if start_s <= when <= end_s]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (all its threads); NaN once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def reply(values: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(values) + "\n")
    sys.stdout.flush()


async def commands() -> AsyncIterator[tuple[str, Sequence[str]]]:
    """(command, arguments) of each line on stdin, until it closes or says `stop`."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode():
        command, *arguments = line.split()
        if command == "stop":
            return
        yield command, arguments
