"""Samples the latest snapshot into the trend log: pack figures every `interval_s`, cells every `cell_interval_s`.

Only online packs are sampled: an offline pack's values are unknown, and a gap in its trend says so.
Writes run on a worker thread; a failing store is logged once and sampling goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.adapters.trend_log import CellTrendRow, PackTrendRow, TrendLog
from gateway.domain.snapshot import GatewaySnapshot, PackSnapshot
from gateway.errors import AdapterError
from gateway.runtime.hub import SnapshotHub

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0


def pack_row(pack: PackSnapshot, at: float) -> PackTrendRow:
    return PackTrendRow(at, pack.pack_id, (
        pack.soc, pack.soh, pack.soh_resistance, pack.pack_voltage_v, pack.pack_current_a, pack.cell_voltage_min_v,
        pack.cell_voltage_max_v, pack.temperature_min_c, pack.temperature_max_c, pack.charge_current_limit_a,
        pack.discharge_current_limit_a, pack.cell_soc_spread))


def cell_row(pack: PackSnapshot, at: float) -> CellTrendRow:
    return CellTrendRow(at, pack.pack_id, (pack.cell_voltage_v, pack.temperature_c, pack.cell_soc,
                                           pack.cell_resistance_ohm, pack.cell_capacity_ah))


def sample(snapshot: GatewaySnapshot, with_cells: bool) -> tuple[list[PackTrendRow], list[CellTrendRow]]:
    online = [pack for pack in snapshot.packs if pack.online]
    cells = [cell_row(pack, snapshot.wall_time) for pack in online] if with_cells else []
    return [pack_row(pack, snapshot.wall_time) for pack in online], cells


class TrendRecorder:
    def __init__(self, hub: SnapshotHub, trend_log: TrendLog) -> None:
        self.name = "trends"
        self.ready = asyncio.Event()
        self._hub = hub
        self._log = trend_log
        self._failing = False

    def store_problems(self) -> list[str]:
        return ["trend log writes failing"] if self._failing else []

    async def run(self) -> None:
        settings = self._log.settings
        loop = asyncio.get_running_loop()
        next_sample = loop.time()
        next_cells = next_prune = time.monotonic()
        last_sequence = -1
        self.ready.set()
        while True:
            next_sample += settings.interval_s
            await asyncio.sleep(max(0.0, next_sample - loop.time()))
            snapshot = self._hub.latest
            if snapshot is None or snapshot.sequence == last_sequence:
                continue  # no engine tick since the last sample: nothing new to say
            last_sequence = snapshot.sequence
            now = time.monotonic()
            with_cells = now >= next_cells
            if with_cells:
                next_cells = now + settings.cell_interval_s
            packs, cells = sample(snapshot, with_cells)
            await self._write(packs, cells, prune=now >= next_prune)
            if now >= next_prune:
                next_prune = now + PRUNE_INTERVAL_S

    async def _write(self, packs: list[PackTrendRow], cells: list[CellTrendRow], prune: bool) -> None:
        try:
            await asyncio.to_thread(self._log.append, packs, cells)
            if prune:
                await asyncio.to_thread(self._log.prune, time.time())
        except AdapterError as error:
            if not self._failing:
                log.error("%s; trend samples are lost until the store works again", error)
            self._failing = True
            return
        if self._failing:
            log.info("trend log %s: writes succeed again", self._log.path)
        self._failing = False
