"""The tick loop: every period, all packs at once -> BMS step -> snapshot -> hub."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from gateway.adapters.state_store import StateStore
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.protection_rules import build_rules
from gateway.bms.step import BmsState, bms_step
from gateway.domain.measurement import CommandKind
from gateway.errors import AdapterError
from gateway.runtime.bus_counters import BusCounters
from gateway.runtime.checkpoints import checkpoints_of, restore
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.measurements import MeasurementTable
from gateway.runtime.pack_link import PackLink
from gateway.runtime.snapshot_builder import build_snapshot
from gateway.settings import EngineSettings

log = logging.getLogger(__name__)

TickObserver = Callable[[float], None]


class Engine:
    def __init__(self, settings: EngineSettings, site_name: str, parameters: PackParameters,
                 table: MeasurementTable, counters: Sequence[BusCounters], links: Sequence[PackLink],
                 hub: SnapshotHub, store: StateStore | None, on_tick: TickObserver | None = None) -> None:
        self.name = "engine"
        self.ready = asyncio.Event()
        self._settings = settings
        self._site_name = site_name
        self._parameters = parameters
        self._table = table
        self._counters = counters
        self._links = links
        self._hub = hub
        self._store = store
        self._on_tick = on_tick
        self._period_s = 1.0 / settings.tick_hz
        self._rules = build_rules(parameters, settings.stale_timeout_s, self._period_s,
                                  temperature_stale_timeout_s=settings.temperature_stale_timeout_s)
        self.state = BmsState.empty(parameters, self._rules)
        if store is not None:
            self.state, restored = restore(self.state, parameters, store.load())
            if restored:
                log.info("restored estimator state of %s from %s", ", ".join(restored), store.path)
        self._sequence = 0
        self._store_failing = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_tick = time.monotonic()
        next_tick = loop.time()
        next_checkpoint = last_tick + self._settings.checkpoint_interval_s
        next_identity_request = last_tick
        self.ready.set()
        try:
            while True:
                next_tick += self._period_s
                await asyncio.sleep(max(0.0, next_tick - loop.time()))
                if loop.time() - next_tick > 5 * self._period_s:
                    next_tick = loop.time()  # after a stall, do not run a burst of catch-up ticks
                now = time.monotonic()
                await self.tick(now, now - last_tick)
                last_tick = now
                if now >= next_identity_request:
                    self._request_missing_identities()
                    next_identity_request = now + self._settings.identity_request_interval_s
                if now >= next_checkpoint:
                    self.checkpoint()
                    next_checkpoint = now + self._settings.checkpoint_interval_s
        finally:
            self.checkpoint()

    async def tick(self, now: float, dt_s: float) -> None:
        started = time.perf_counter()
        inputs = self._table.inputs(now)
        self.state, outputs = bms_step(self.state, inputs, self._parameters, self._rules, dt_s)
        identities = [self._table.identity(i) for i in range(self._parameters.pack_count)]
        self._sequence += 1
        duration = time.perf_counter() - started
        snapshot = build_snapshot(self._sequence, self._site_name, self._parameters, inputs, self.state,
                                  outputs, self._rules, identities,
                                  tuple(c.statistics() for c in self._counters), duration)
        await self._hub.publish(snapshot)
        if self._on_tick is not None:
            self._on_tick(time.perf_counter() - started)

    def _request_missing_identities(self) -> None:
        for link in self._links:
            if self._table.identity(link.pack_index) is None:
                link.command(CommandKind.IDENTITY_REQUEST)

    def checkpoint(self) -> None:
        if self._store is None:
            return
        try:
            self._store.save(checkpoints_of(self.state, self._parameters))
        except AdapterError as error:
            if not self._store_failing:
                log.error("%s; estimator state is kept in memory and retried", error)
            self._store_failing = True
            return
        if self._store_failing:
            log.info("store %s: checkpoints succeed again", self._store.path)
        self._store_failing = False
