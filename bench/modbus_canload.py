"""The CAN load of the Modbus benchmark: simulated packs recorded once, then played on virtual buses in real time.

Recording: the gateway's own pack simulator (cell physics, drive profile, the protocol's encoder with rolling
counters and CRC) steps every pack through LOOP_S of simulated time. Playing: one thread sends each pack's frames
of a status period at the pack's own phase within the period, as a pack on the bus would (bmsgw-ref-v1 at the
simulator's rates: status + 11 cell-voltage pages every 0.1 s, 3 temperature pages every second, about
123 frames/s per pack). LOOP_S is chosen so that every identifier's frame count per loop is a multiple of the
counter modulo: the counters run on seamlessly when the recording starts over. Identity requests from the
gateway are answered with the pack's identity frames, so packs are admitted as on a real site.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import can

from gateway.codec.integrity import COUNTER_MODULO
from gateway.settings import GatewaySettings, SimulationSettings
from gateway.sim.pack_simulator import PackSimulator

LOOP_S = 16.0
IDENTITY_REQUEST = "IdentityRequest"

Burst = tuple[can.Message, ...]


@dataclass(frozen=True)
class RecordedPack:
    channel: str
    node_address: int
    identity_request_id: int  # the gateway asks for the identity with this frame
    periods: tuple[Burst, ...]  # what the pack sends in each status period of the loop
    identities: tuple[Burst, ...]  # COUNTER_MODULO identity answers, counters running on


class _Recorder(can.BusABC):
    """A bus that keeps what is sent to it."""

    def __init__(self) -> None:
        super().__init__(channel="bench-recorder")
        self.sent: list[can.Message] = []

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self.sent.append(msg)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        return None, False

    def take(self) -> Burst:
        burst, self.sent = tuple(self.sent), []
        return burst


def record(settings: GatewaySettings, simulation: SimulationSettings) -> list[RecordedPack]:
    channel_of = {bus.name: bus.channel for bus in settings.buses}
    periods = round(LOOP_S / simulation.status_period_s)
    recorder = _Recorder()
    packs = []
    try:
        for index, pack in enumerate(simulation.packs):
            simulator = PackSimulator.from_settings(simulation, index, recorder, settings.mappings_dir)
            simulator.tick(simulation.status_period_s)  # the first period also sends temperatures: one too many
            recorder.take()
            bursts = []
            for _ in range(periods):
                simulator.tick(simulation.status_period_s)
                bursts.append(recorder.take())
            answers = []
            for _ in range(COUNTER_MODULO):
                simulator.send_identity()
                answers.append(recorder.take())
            _check_seamless(bursts, pack.node_address)
            request_id = simulator.protocol.frame_id(IDENTITY_REQUEST, pack.node_address)
            packs.append(RecordedPack(channel_of[pack.bus], pack.node_address, request_id, tuple(bursts),
                                      tuple(answers)))
    finally:
        recorder.shutdown()
    return packs


def _check_seamless(bursts: Sequence[Burst], node_address: int) -> None:
    counts = Counter(message.arbitration_id for burst in bursts for message in burst)
    broken = sorted(f"{i:#x}" for i, n in counts.items() if n % COUNTER_MODULO)
    if broken:
        raise ValueError(f"node {node_address}: frame counts of {broken} per {LOOP_S} s loop are not multiples of "
                         f"{COUNTER_MODULO}; the rolling counters would jump where the recording starts over")


def frames_per_second(packs: Sequence[RecordedPack]) -> float:
    return sum(len(burst) for p in packs for burst in p.periods) / LOOP_S


class CanLoad:
    """Plays recorded packs on their virtual channels from one thread until stopped.

    `sent` counts frames sent, `cpu_s` the thread's CPU time, `lateness` how far behind schedule the latest
    burst of each sending cycle went out, with the time (the thread competes for the GIL with the gateway).
    """

    def __init__(self, packs: Sequence[RecordedPack], period_s: float) -> None:
        self._packs = list(packs)
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-can-load", daemon=True)
        self._buses = {channel: can.Bus(interface="virtual", channel=channel)
                       for channel in dict.fromkeys(p.channel for p in packs)}
        self._identity_requests = {(p.channel, p.identity_request_id): i for i, p in enumerate(self._packs)}
        self._answered = [0] * len(self._packs)
        self.sent = 0
        self.cpu_s = 0.0
        self.lateness: list[tuple[float, float]] = []
        self.identity_answers = 0
        self._closed = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and close the buses; again, nothing."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for bus in self._buses.values():
            bus.shutdown()

    def _run(self) -> None:
        count = len(self._packs)
        phases = [self._period_s * i / count for i in range(count)]
        periods = len(self._packs[0].periods) if self._packs else 1
        start = time.monotonic()
        cycle = 0
        while not self._stop.is_set():
            base = start + cycle * self._period_s
            late = 0.0
            for pack, phase in zip(self._packs, phases, strict=True):
                delay = base + phase - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                late = max(late, time.monotonic() - base - phase)
                self._send(pack.channel, pack.periods[cycle % periods])
            self.lateness.append((time.monotonic(), late))
            self._answer_identity_requests()
            self.cpu_s = time.thread_time()
            cycle += 1

    def _send(self, channel: str, burst: Burst) -> None:
        bus = self._buses[channel]
        for message in burst:
            bus.send(message)
        self.sent += len(burst)

    def _answer_identity_requests(self) -> None:
        """Read what the gateway sent (also keeps the unbounded virtual queues empty); answer identity requests."""
        for channel, bus in self._buses.items():
            while (message := bus.recv(timeout=0.0)) is not None:
                index = self._identity_requests.get((channel, message.arbitration_id))
                if index is None:
                    continue  # balancing or contactor commands: the recording cannot obey them
                pack = self._packs[index]
                self._send(channel, pack.identities[self._answered[index] % len(pack.identities)])
                self._answered[index] += 1
                self.identity_answers += 1
