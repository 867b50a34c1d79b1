"""A simulated J1939 pack's multi-packet broadcasts (BAM), paced in real time across the simulator's loop.

J1939-21 has an originator space BAM packets 50..200 ms apart and run one BAM at a time per source (a receiver tells
sessions apart by source address only). `due` hands out at most one frame per call, never sooner than
BAM_MIN_SPACING_S after the previous one, so the simulator never sleeps for it: its loop calls `due` every
POLL_INTERVAL_S (10 ms) and the packets go out 50-60 ms apart, well inside the gateway's T1 (750 ms).

A 64-byte message is 10 packets, about 0.55 s of the bus per session: it cannot follow a 10 Hz status. Each PGN
therefore starts at most once per MULTI_PACKET_PERIOD_S (1 s, what HVESS packs do for cell data); offered again
while it waits, its payload is replaced, so a session always carries the latest values.
"""

from __future__ import annotations

from collections import deque

from gateway.codec.j1939.identifier import RawFrame
from gateway.codec.j1939.transport import BAM_MIN_SPACING_S, bam_frames

MULTI_PACKET_PERIOD_S = 1.0


class BamPacer:
    def __init__(self, spacing_s: float = BAM_MIN_SPACING_S, period_s: float = MULTI_PACKET_PERIOD_S) -> None:
        self._spacing_s = spacing_s
        self._period_s = period_s
        self._waiting: dict[int, bytes] = {}  # PGN -> latest payload, in the order first offered
        self._last_start: dict[int, float] = {}
        self._session: deque[RawFrame] = deque()
        self._next_frame_at = float("-inf")
        self.sessions_started = 0
        self.sessions_abandoned = 0

    @property
    def in_session(self) -> bool:
        """A BAM has started and not all its packets are out (its source address must not change meanwhile)."""
        return bool(self._session)

    def offer(self, pgn: int, payload: bytes) -> None:
        self._waiting[pgn] = payload

    def due(self, now: float, source: int) -> list[RawFrame]:
        """The frame to send now, if any; a new session takes `source` as its sender."""
        if now < self._next_frame_at:
            return []
        if not self._session and not self._start(now, source):
            return []
        self._next_frame_at = now + self._spacing_s
        return [self._session.popleft()]

    def abandon(self) -> None:
        """Drop the session under way (the pack fell silent); what waits stays waiting."""
        if self._session:
            self._session.clear()
            self.sessions_abandoned += 1

    def _start(self, now: float, source: int) -> bool:
        for pgn, payload in self._waiting.items():
            if now - self._last_start.get(pgn, float("-inf")) >= self._period_s:
                del self._waiting[pgn]
                self._last_start[pgn] = now
                self._session.extend(bam_frames(pgn, payload, source))
                self.sessions_started += 1
                return True
        return False
