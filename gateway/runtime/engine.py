"""The tick loop: every period, all packs at once -> BMS step -> snapshot -> hub."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from gateway.adapters.command_queue import CommandQueue
from gateway.adapters.event_log import EventLog
from gateway.adapters.state_store import StateStore
from gateway.bms.admission import AdmissionGate
from gateway.bms.inputs import BoolArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.protection_rules import ProtectionRules
from gateway.bms.step import BmsOutputs, BmsState, SafetySettings, bms_step
from gateway.domain.alarms import Severity
from gateway.domain.events import BmsEvent, EventKind
from gateway.domain.measurement import CommandKind
from gateway.domain.operator_actions import OperatorAction
from gateway.errors import AdapterError
from gateway.runtime.balancing_commands import BalancingCommander
from gateway.runtime.bus_counters import BusCounters
from gateway.runtime.checkpoints import checkpoints_of, restore
from gateway.runtime.command_port import CommandPort, HeartbeatState
from gateway.runtime.contactor_requests import ContactorRequester
from gateway.runtime.fast_trip import FastTrip
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.measurements import MeasurementTable
from gateway.runtime.operator_commands import OperatorCommand, gather, outcomes
from gateway.runtime.pack_admission import PackAdmission
from gateway.runtime.pack_link import PackLink
from gateway.runtime.remote_control import RemoteControl
from gateway.runtime.safety_events import protection_events
from gateway.runtime.slot_reset import reset_slots
from gateway.runtime.snapshot_builder import RemoteFlags, build_snapshot
from gateway.settings import EngineSettings, HeartbeatReaction

log = logging.getLogger(__name__)

TickObserver = Callable[[float], None]
COMMAND_POLL_S = 0.5
EVENT_PRUNE_INTERVAL_S = 3600.0
# a latch, its reset or acknowledgement, and an admission must survive a kill -9 before the next checkpoint
_CHECKPOINTED_EVENTS = (EventKind.LATCHED, EventKind.RESET, EventKind.ACKNOWLEDGED, EventKind.ADMITTED)


@dataclass
class _Chores:
    last_tick: float
    next_checkpoint: float
    next_identity_request: float
    next_prune: float


@dataclass(frozen=True)
class EngineStores:
    """The embedded store's parts: estimator checkpoints, the event log, the operator command queue."""

    state: StateStore | None = None
    events: EventLog | None = None
    commands: CommandQueue | None = None


class Engine:
    def __init__(self, settings: EngineSettings, site_name: str, parameters: PackParameters,
                 rules: ProtectionRules, table: MeasurementTable, counters: Sequence[BusCounters],
                 links: Sequence[PackLink], hub: SnapshotHub, stores: EngineStores,
                 on_tick: TickObserver | None = None, safety: SafetySettings | None = None,
                 admission: AdmissionGate | None = None, port: CommandPort | None = None,
                 heartbeat_reaction: HeartbeatReaction = "zero_limits") -> None:
        self.name = "engine"
        self.ready = asyncio.Event()
        self._settings = settings
        self._site_name = site_name
        self._parameters = parameters
        self._table = table
        self._counters = counters
        self._links = links
        self._hub = hub
        self._stores = stores
        self._store = stores.state
        self._on_tick = on_tick
        self._period_s = 1.0 / settings.tick_hz
        self._rules = rules
        self._safety = safety or SafetySettings.of(rules)
        self._pack_ids = tuple(layout.pack_id for layout in parameters.layouts)
        self._contactors = ContactorRequester(links, parameters.pack_count)
        self._balancing = BalancingCommander(links, parameters.pack_count)
        self.fast_trip = FastTrip(rules, self._contactors)
        table.current_observer = self.fast_trip.observe
        self._empty = BmsState.empty(parameters, self._rules)
        self.state = self._empty
        self.admission = PackAdmission(admission, parameters.pack_count)
        self.control = RemoteControl(parameters.pack_count)
        self.port = port or CommandPort()
        self._heartbeat_reaction = heartbeat_reaction
        self._heartbeat = HeartbeatState.NOT_SUPERVISED
        self._previous: BmsOutputs | None = None
        # The BMS step and the snapshot (pure, a few ms each at 64 packs) run here, off the event loop: CAN frames,
        # Modbus and OPC UA requests are served meanwhile (run_gateway shortens the GIL's switch interval).
        self._compute = ThreadPoolExecutor(1, thread_name_prefix="engine-step")
        store = stores.state
        if store is not None:
            saved = store.load()
            self.state, restored = restore(self.state, parameters, saved, rules)
            documents = {i: saved[pack_id].state for i, pack_id in enumerate(self._pack_ids) if pack_id in saved}
            self.admission.restore(documents)
            self.control.restore(documents)
            if restored:
                log.info("restored estimator state of %s from %s", ", ".join(restored), store.path)
        self._sequence = 0
        self._store_failing = False
        self._event_log_failing = False
        self._pending_commands: list[OperatorCommand] = []
        self._next_command_poll = 0.0
        self._started_wall = time.time()  # commands queued before this were meant for a state nobody has seen
        self._chores: _Chores | None = None
        self.wall_clock: Callable[[], float] = time.time  # event times; a replay sets the log's clock

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        self.ready.set()
        try:
            while True:
                next_tick += self._period_s
                await asyncio.sleep(max(0.0, next_tick - loop.time()))
                if loop.time() - next_tick > 5 * self._period_s:
                    next_tick = loop.time()  # after a stall, do not run a burst of catch-up ticks
                await self.advance(time.monotonic())
        finally:
            self.close()

    async def advance(self, now: float) -> None:
        """One tick at `now` (monotonic seconds; a log's time when replaying), then the chores that are due."""
        chores = self._chores
        if chores is None:
            chores = self._chores = _Chores(now - self._period_s, now + self._settings.checkpoint_interval_s, now, now)
        await self.tick(now, now - chores.last_tick)
        chores.last_tick = now
        if now >= chores.next_identity_request:
            self._request_missing_identities()
            chores.next_identity_request = now + self._settings.identity_request_interval_s
        if now >= chores.next_checkpoint:
            self.checkpoint()
            chores.next_checkpoint = now + self._settings.checkpoint_interval_s
        if now >= chores.next_prune:
            self._prune_events()
            chores.next_prune = now + EVENT_PRUNE_INTERVAL_S

    def close(self) -> None:
        """The last checkpoint; the compute thread ends."""
        self.checkpoint()
        self._compute.shutdown(wait=False, cancel_futures=True)

    def submit(self, command: OperatorCommand) -> None:
        """An operator command for the next tick (from any adapter running on the event loop)."""
        self.port.submit(command)

    async def tick(self, now: float, dt_s: float) -> None:
        started = time.perf_counter()
        self._poll_commands(now)
        submitted, port_events = self.port.drain()
        commands = gather(self._pending_commands + submitted, self._pack_ids, len(self._rules))
        self._pending_commands = []
        self.state = self.control.apply(commands.controls, self.state, self._parameters)
        heartbeat_lost = self._supervise_heartbeat(now, port_events)
        inputs = self._table.inputs(now)
        wall = self.wall_clock()
        identities = [self._table.identity(i) for i in range(self._parameters.pack_count)]
        admission = self.admission.step(identities, self._previous, dt_s, commands.admits, wall)
        if admission.swapped:
            log.warning("another pack in slot(s) %s: its estimates start over", ", ".join(
                self._pack_ids[i] for i in admission.swapped))
            self.state = reset_slots(self.state, self._empty, admission.swapped)
        before = self.state.protection
        held = self.control.disconnected | heartbeat_lost
        loop = asyncio.get_running_loop()
        self.state, outputs = await loop.run_in_executor(self._compute, partial(
            bms_step, self.state, inputs, self._parameters, self._rules, dt_s, commands.requests, self._safety,
            admission.admitted & ~held))
        outputs = replace(outputs, balancing=self.control.balancing(outputs.balancing))
        self._follow_identities(self._previous, outputs.fresh)
        self._previous = outputs
        open_requested = self.control.disconnected | (heartbeat_lost & (self._heartbeat_reaction == "disconnect"))
        self._contactors.update(outputs.actions.open_contactor | open_requested, now)
        self._balancing.update(outputs.balancing.mask, now)
        events = port_events + admission.events + protection_events(
            before, self.state.protection, self._rules, outputs.quantities, self._pack_ids, wall, commands.operators)
        if commands.commands:
            results, command_events = outcomes(commands, self.state.protection, self._rules, wall,
                                               admission.outcomes)
            events += command_events
            self._report_outcomes(results)
        if events:
            self._log_events(events)
            if any(e.kind in _CHECKPOINTED_EVENTS for e in events):
                self.checkpoint()  # a latch must survive a kill -9 that comes before the next checkpoint
        self._sequence += 1
        duration = time.perf_counter() - started
        snapshot = await loop.run_in_executor(self._compute, partial(
            build_snapshot, self._sequence, self._site_name, self._parameters, inputs, self.state, outputs,
            self._rules, identities, self.admission.state if self.admission.enabled else None,
            tuple(c.statistics() for c in self._counters), duration,
            RemoteFlags(self.control.disconnected, self.control.balancing_disabled, int(self._heartbeat))))
        await self._hub.publish(snapshot)
        if self._on_tick is not None:
            self._on_tick(time.perf_counter() - started)

    def _supervise_heartbeat(self, now: float, events: list[BmsEvent]) -> BoolArray:
        """Per pack: the EMS heartbeat is lost (every pack, or none); each loss and return is an event."""
        state = self.port.heartbeat_state(now)
        if state != self._heartbeat and state is not HeartbeatState.NOT_SUPERVISED:
            lost = state is HeartbeatState.LOST
            reaction = self._heartbeat_reaction.replace("_", " ")
            events.append(BmsEvent(time.time(), "site", EventKind.COMMAND, "ems_heartbeat",
                                   Severity.ALARM if lost else Severity.NONE,
                                   detail=f"EMS heartbeat lost: {reaction}" if lost else "EMS heartbeat received"))
        self._heartbeat = state
        return np.full(self._parameters.pack_count, state is HeartbeatState.LOST)

    def _poll_commands(self, now: float) -> None:
        queue = self._stores.commands
        if queue is None or now < self._next_command_poll:
            return
        self._next_command_poll = now + COMMAND_POLL_S
        try:
            queued = queue.pending()
        except AdapterError as error:
            log.error("%s", error)
            return
        for item in queued:
            refusal = None
            try:
                action = OperatorAction(item.action)
            except ValueError:
                refusal = f"refused: unknown action {item.action!r}"
            if item.issued_at < self._started_wall:
                refusal = "refused: issued before the gateway started; check the pack and issue it again"
            if refusal is not None:
                queue.complete(item.id, refusal)
                self._log_events([BmsEvent(time.time(), item.pack_id, EventKind.COMMAND, item.action,
                                           operator=item.operator, detail=refusal)])
                continue
            self._pending_commands.append(OperatorCommand(item.pack_id, action, item.operator, item.id))

    def _report_outcomes(self, results: list[tuple[OperatorCommand, str]]) -> None:
        queue = self._stores.commands
        for command, outcome in results:
            log.info("operator %s: %s pack %s: %s", command.operator, command.action.value, command.pack_id, outcome)
            if command.reply is not None:
                command.reply(outcome)
            if queue is not None and command.id:
                try:
                    queue.complete(command.id, outcome)
                except AdapterError as error:
                    log.error("%s", error)

    def _log_events(self, events: list[BmsEvent]) -> None:
        self.port.broadcast(events)
        for event in events:
            log.log(logging.WARNING if event.severity >= 2 else logging.INFO, "event %s %s %s %s cell=%s value=%g "
                    "threshold=%g %s", event.pack_id, event.kind.value, event.code, event.severity.name.lower(),
                    event.cell, event.value, event.threshold, event.detail)
        if self._stores.events is None:
            return
        try:
            self._stores.events.append(events)
        except AdapterError as error:
            if not self._event_log_failing:
                log.error("%s; events are logged to the console only until it works again", error)
            self._event_log_failing = True
            return
        self._event_log_failing = False

    def _prune_events(self) -> None:
        if self._stores.events is None:
            return
        try:
            removed = self._stores.events.prune(time.time())
        except AdapterError as error:
            log.error("%s", error)
            return
        if removed:
            log.info("event log: pruned %d events beyond the retention", removed)

    def _follow_identities(self, previous: BmsOutputs | None, fresh: BoolArray) -> None:
        """A pack that stops talking may come back as another pack (a swap): its identity is asked for again
        when it talks again, and until it answers it is not admitted."""
        was_fresh = previous.fresh if previous is not None else np.zeros_like(fresh)
        lost = was_fresh & ~fresh
        back = fresh & ~was_fresh
        for pack in np.nonzero(lost)[0].tolist():
            self._table.forget_identity(pack)
        for link in self._links:
            if back[link.pack_index] and self._table.identity(link.pack_index) is None:
                link.command(CommandKind.IDENTITY_REQUEST)

    def _request_missing_identities(self) -> None:
        for link in self._links:
            if self._table.identity(link.pack_index) is None:
                link.command(CommandKind.IDENTITY_REQUEST)

    def store_problems(self) -> list[str]:
        """What of the store is failing now (the health check's)."""
        problems = []
        if self._store_failing and self._store is not None:
            problems.append(f"checkpoints to {self._store.path} failing")
        if self._event_log_failing:
            problems.append("event log writes failing")
        return problems

    def checkpoint(self) -> None:
        if self._store is None:
            return
        try:
            documents = [a | c for a, c in zip(self.admission.documents(), self.control.documents(), strict=True)]
            self._store.save(checkpoints_of(self.state, self._parameters, self._rules, documents))
        except AdapterError as error:
            if not self._store_failing:
                log.error("%s; estimator state is kept in memory and retried", error)
            self._store_failing = True
            return
        if self._store_failing:
            log.info("store %s: checkpoints succeed again", self._store.path)
        self._store_failing = False
