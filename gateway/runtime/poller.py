"""Request/response polling of the packs on one bus: the schedules of their protocols' `polls:`, timeouts, retries,
and a bus-load budget (docs/polling.md).

Each (pack, poll) is a schedule at a fixed rate: when due, its request goes out if the budget allows, and the poll
is answered when every response message has arrived once after the request; a try that times out is sent again up
to `retries` times, then the poll has failed. A failed poll changes nothing else: the pack's data simply ages, and
the engine's staleness rules give it zero limits as for any silent pack.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from gateway.codec.protocol import PackProtocol, PollBinding
from gateway.domain.measurement import ArrayField, ScalarField
from gateway.domain.snapshot import PollStatistics
from gateway.runtime.bus_counters import BusCounters
from gateway.runtime.pack_link import PackLink
from gateway.settings import EngineSettings

log = logging.getLogger(__name__)

RECENT_POLLS = 20  # the window of the success ratio
MAX_SLEEP_S = 0.05
BUCKET_SECONDS = 0.1  # the budget may be spent this far ahead (a burst), at least one poll's worth

SendFrame = Callable[[int, bytes, bool], bool]  # arbitration id, data, extended id -> sent


def frame_bits(data_bytes: int, *, extended: bool) -> float:
    """Bits a classic CAN data frame takes on the wire, with about the worst bit stuffing (+20 %) and interframe."""
    overhead = 67 if extended else 47
    return (overhead + 8 * data_bytes) * 1.2


@dataclass(frozen=True)
class PolledPack:
    pack_index: int
    pack_id: str
    link: PackLink  # its node address follows a J1939 address claim
    protocol: PackProtocol
    array_sizes: Mapping[ArrayField, int]  # its cells and sensors: how many pages an answer has
    periods_s: Mapping[str, float] = field(default_factory=dict)  # the pack's own period per poll name


@dataclass(frozen=True)
class Staleness:
    """The engine's stale timeouts: a poll slower than these lets the data it carries go stale between answers."""

    measurements_s: float  # cell voltages, pack voltage and current
    temperatures_s: float

    @classmethod
    def of(cls, engine: EngineSettings) -> Staleness:
        return cls(engine.stale_timeout_s, engine.temperature_stale_timeout_s)

    def measurements_timeout_s(self, protocol: PackProtocol) -> float:
        """A protocol whose packs send only about once a second brings its own, longer timeout."""
        return max(self.measurements_s, protocol.stale_timeout_s)

    def limit_s(self, protocol: PackProtocol, poll: PollBinding) -> float:
        carried = {bound.field for name in poll.responses for bound in protocol.messages[name].bindings.values()}
        limit = math.inf
        if carried & {ArrayField.CELL_VOLTAGE_V, ScalarField.PACK_VOLTAGE_V, ScalarField.PACK_CURRENT_A}:
            limit = self.measurements_timeout_s(protocol)
        if ArrayField.TEMPERATURE_C in carried:
            limit = min(limit, self.temperatures_s)
        return limit


class _State(Enum):
    IDLE = 0
    WAITING = 1  # a try is out, answers outstanding
    RETRY = 2  # a try timed out; the next one waits for the budget


class _Schedule:
    def __init__(self, pack: PolledPack, poll: PollBinding, period_s: float, cost_bits: float) -> None:
        self.pack = pack
        self.poll = poll
        self.period_s = period_s
        self.cost_bits = cost_bits
        self.next_due = math.inf
        self.state = _State.IDLE
        self.sent_at = math.nan
        self.tries = 0
        self.held = False  # this due request has already been counted as deferred
        self.awaiting: set[str] = set()
        self.requests = self.responses = self.timeouts = self.retries = self.failures = 0
        self.last_response_time_s = math.nan
        self.response_time_sum_s = 0.0
        self.recent: deque[bool] = deque(maxlen=RECENT_POLLS)

    def statistics(self) -> PollStatistics:
        ratio = sum(self.recent) / len(self.recent) if self.recent else math.nan
        return PollStatistics(self.pack.pack_id, self.poll.name, self.requests, self.responses, self.timeouts,
                              self.retries, self.failures, self.last_response_time_s, self.response_time_sum_s,
                              ratio, self.period_s)


class BusPoller:
    """Polls the packs of one bus (a service); `received` is the bus ingest's listener for decoded messages."""

    def __init__(self, counters: BusCounters, bitrate: int, budget_ratio: float, packs: Sequence[PolledPack],
                 send: SendFrame, staleness: Staleness, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = f"poller {counters.bus}"
        self.ready = asyncio.Event()
        self._counters = counters
        self._send = send
        self._clock = clock
        self._budget_bits_per_s = bitrate * budget_ratio
        self._schedules: list[_Schedule] = []
        for pack in packs:
            for poll in pack.protocol.polls.values():
                cost = poll_cost_bits(pack, poll)
                self._schedules.append(_Schedule(pack, poll, pack.periods_s.get(poll.name, poll.period_s), cost))
        self._by_pack: dict[int, list[_Schedule]] = {}
        for schedule in self._schedules:
            self._by_pack.setdefault(schedule.pack.pack_index, []).append(schedule)
        planned = sum(s.cost_bits / s.period_s for s in self._schedules)
        if planned > self._budget_bits_per_s:
            stretch = planned / self._budget_bits_per_s
            log.warning("bus %s: the polls need %.0f bit/s, over the budget of %.0f bit/s (%.0f %% of %d bit/s); "
                        "every poll period is stretched %.2f times", counters.bus, planned, self._budget_bits_per_s,
                        100 * budget_ratio, bitrate, stretch)
            for schedule in self._schedules:
                schedule.period_s *= stretch
            planned = self._budget_bits_per_s
        counters.poll_load_ratio = planned / bitrate
        for schedule in self._schedules:
            limit = staleness.limit_s(schedule.pack.protocol, schedule.poll)
            if schedule.period_s >= limit:
                log.warning("bus %s: pack %s is polled for %s every %.2f s, not within the stale timeout of %.1f s: "
                            "it will go offline with zero limits between answers; raise the bus's bitrate or "
                            "poll_budget_ratio, or lengthen the engine's stale timeout", counters.bus,
                            schedule.pack.pack_id, schedule.poll.name, schedule.period_s, limit)
        counters.polls = self.statistics
        self._capacity_bits = max((s.cost_bits for s in self._schedules), default=0.0)
        self._capacity_bits = max(self._capacity_bits, self._budget_bits_per_s * BUCKET_SECONDS)
        self._tokens_bits = self._capacity_bits
        self._refilled_at = math.nan

    @property
    def schedules(self) -> int:
        return len(self._schedules)

    def statistics(self) -> tuple[PollStatistics, ...]:
        return tuple(s.statistics() for s in self._schedules)

    def start(self, now: float) -> None:
        """First requests spread over each period, pack by pack, so the bus load is even."""
        packs = sorted(self._by_pack)
        self._refilled_at = now
        for schedule in self._schedules:
            offset = packs.index(schedule.pack.pack_index) / len(packs)
            schedule.next_due = now + schedule.period_s * offset

    def received(self, pack_index: int, message: str, now: float) -> None:
        for schedule in self._by_pack.get(pack_index, ()):
            if schedule.state is _State.WAITING and message in schedule.awaiting:
                schedule.awaiting.discard(message)
                if not schedule.awaiting:
                    elapsed = now - schedule.sent_at
                    schedule.responses += 1
                    schedule.last_response_time_s = elapsed
                    schedule.response_time_sum_s += elapsed
                    schedule.recent.append(True)
                    schedule.state = _State.IDLE

    def step(self, now: float) -> float:
        """Time out, retry and send what is due at `now`; returns when something is next due."""
        self._refill(now)
        next_event = math.inf
        for schedule in self._schedules:
            if schedule.state is _State.WAITING and now >= schedule.sent_at + schedule.poll.timeout_s:
                schedule.timeouts += 1
                if schedule.tries <= schedule.poll.retries:
                    schedule.state = _State.RETRY
                else:
                    schedule.failures += 1
                    schedule.recent.append(False)
                    schedule.state = _State.IDLE
            if schedule.state is _State.RETRY or (schedule.state is _State.IDLE and now >= schedule.next_due):
                self._try(schedule, now)
            if schedule.state is _State.WAITING:
                next_event = min(next_event, schedule.sent_at + schedule.poll.timeout_s)
            elif schedule.state is _State.RETRY or schedule.held:
                next_event = min(next_event, now + schedule.cost_bits / self._budget_bits_per_s)
            next_event = min(next_event, schedule.next_due)
        return next_event

    async def run(self) -> None:
        self.start(self._clock())
        self.ready.set()
        while True:
            now = self._clock()
            next_event = self.step(now)
            await asyncio.sleep(min(max(next_event - self._clock(), 0.0), MAX_SLEEP_S))

    def _try(self, schedule: _Schedule, now: float) -> None:
        if self._tokens_bits < schedule.cost_bits:
            if not schedule.held:
                schedule.held = True
                self._counters.polls_deferred += 1
            return
        self._tokens_bits -= schedule.cost_bits
        schedule.held = False
        retry = schedule.state is _State.RETRY
        if retry:
            schedule.retries += 1
            schedule.tries += 1
        else:
            schedule.tries = 1
            schedule.next_due += schedule.period_s
            if schedule.next_due <= now:  # after a stall: the next one a period from now, not a burst
                schedule.next_due = now + schedule.period_s
        schedule.requests += 1
        poll, link = schedule.poll, schedule.pack.link
        frame = link.encoder.encode_message(poll.request, link.node_address, poll.values)
        extended = bool(link.encoder.protocol.messages[poll.request].message.is_extended_frame)
        sent = self._send(frame.arbitration_id, frame.data, extended)
        if not poll.responses:  # a keep-alive: done when sent
            schedule.recent.append(sent)
            if sent:
                schedule.responses += 1
            else:
                schedule.failures += 1
            schedule.state = _State.IDLE
            return
        schedule.sent_at = now
        schedule.awaiting = set(poll.responses)
        schedule.state = _State.WAITING

    def _refill(self, now: float) -> None:
        if not math.isnan(self._refilled_at):
            gained = (now - self._refilled_at) * self._budget_bits_per_s
            self._tokens_bits = min(self._capacity_bits, self._tokens_bits + gained)
        self._refilled_at = now


def poll_cost_bits(pack: PolledPack, poll: PollBinding) -> float:
    """Wire bits of one request and its full answer, for this pack's number of cells and sensors."""
    protocol = pack.protocol
    request = protocol.messages[poll.request]
    bits = frame_bits(request.length, extended=bool(request.message.is_extended_frame))
    for name in poll.responses:
        binding = protocol.messages[name]
        extended = bool(binding.message.is_extended_frame)
        if binding.length > 8:  # J1939 transport: the announcement, then 7 bytes a packet
            bits += frame_bits(8, extended=extended) * (1 + math.ceil(binding.length / 7))
            continue
        pages = {b.multiplexer_value for b in binding.bindings.values()
                 if not isinstance(b.field, ArrayField) or b.index < pack.array_sizes.get(b.field, 0)}
        bits += frame_bits(binding.length, extended=extended) * max(len(pages), 1)
    return bits
