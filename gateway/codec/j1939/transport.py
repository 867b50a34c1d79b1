"""J1939-21 transport protocol: BAM and RTS/CTS reassembly with strict sequence and timeout checks, and the
originator side (BAM frames, an RTS/CTS sender) for simulators."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum, IntEnum, StrEnum

from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, NULL_ADDRESS, J1939Id, Pgn, RawFrame

TP_PRIORITY = 7
PACKET_PAYLOAD_BYTES = 7
FRAME_BYTES = 8
MIN_MESSAGE_BYTES = 9
MAX_MESSAGE_BYTES = 1785
MAX_PACKETS = 255
NO_PACKET_LIMIT = 0xFF
PADDING = 0xFF

T1_S = 0.750
"""Receiver: longest wait for the next data packet (BAM or RTS/CTS)."""
T2_S = 1.250
"""Receiver: longest wait for the first data packet after sending a CTS."""
T3_S = 1.250
"""Originator: longest wait for a CTS or the EoMA after the RTS or the last packet of a window."""
T4_S = 1.050
"""Originator: longest wait for the next CTS after a CTS that holds the connection open (0 packets)."""
BAM_MIN_SPACING_S = 0.050
BAM_MAX_SPACING_S = 0.200
"""A BAM originator spaces its packets 50..200 ms apart; a receiver accepts any spacing up to T1."""


class Control(IntEnum):
    RTS = 16
    CTS = 17
    EOMA = 19
    BAM = 32
    ABORT = 255


class AbortReason(IntEnum):
    BUSY = 1
    RESOURCES = 2
    TIMEOUT = 3
    CTS_DURING_TRANSFER = 4
    RETRANSMIT_LIMIT = 5
    UNEXPECTED_DATA = 6
    BAD_SEQUENCE = 7
    DUPLICATE_SEQUENCE = 8
    MESSAGE_TOO_LARGE = 9
    OTHER = 250


class RejectReason(StrEnum):
    SEQUENCE_GAP = "tp_sequence_gap"
    DUPLICATE_SEQUENCE = "tp_duplicate_sequence"
    TIMEOUT = "tp_timeout"
    SIZE_MISMATCH = "tp_size_mismatch"
    UNEXPECTED_DATA = "tp_unexpected_data"
    ABORTED = "tp_aborted"
    SESSION_REPLACED = "tp_session_replaced"
    MALFORMED = "tp_malformed"


def packet_count(size_bytes: int) -> int:
    return -(-size_bytes // PACKET_PAYLOAD_BYTES)


def _pgn_bytes(pgn: int) -> bytes:
    return pgn.to_bytes(3, "little")


def rts_data(size_bytes: int, packets: int, max_packets_per_cts: int, pgn: int) -> bytes:
    size = size_bytes.to_bytes(2, "little")
    return bytes([Control.RTS]) + size + bytes([packets, max_packets_per_cts]) + _pgn_bytes(pgn)


def cts_data(packets: int, next_packet: int, pgn: int) -> bytes:
    return bytes([Control.CTS, packets, next_packet, PADDING, PADDING]) + _pgn_bytes(pgn)


def eoma_data(size_bytes: int, packets: int, pgn: int) -> bytes:
    return bytes([Control.EOMA]) + size_bytes.to_bytes(2, "little") + bytes([packets, PADDING]) + _pgn_bytes(pgn)


def bam_data(size_bytes: int, packets: int, pgn: int) -> bytes:
    return bytes([Control.BAM]) + size_bytes.to_bytes(2, "little") + bytes([packets, PADDING]) + _pgn_bytes(pgn)


def abort_data(reason: int, pgn: int) -> bytes:
    return bytes([Control.ABORT, reason, PADDING, PADDING, PADDING]) + _pgn_bytes(pgn)


def _control_frame(data: bytes, source: int, destination: int, priority: int) -> RawFrame:
    return J1939Id.for_pgn(Pgn.TP_CM, source, destination, priority).arbitration_id, data


def _data_frames(payload: bytes, source: int, destination: int, first: int, last: int, priority: int) -> list[RawFrame]:
    arbitration_id = J1939Id.for_pgn(Pgn.TP_DT, source, destination, priority).arbitration_id
    frames = []
    for sequence in range(first, last + 1):
        chunk = payload[(sequence - 1) * PACKET_PAYLOAD_BYTES : sequence * PACKET_PAYLOAD_BYTES]
        frames.append((arbitration_id, bytes([sequence]) + chunk.ljust(PACKET_PAYLOAD_BYTES, b"\xff")))
    return frames


def _check_payload(payload: bytes) -> None:
    if not MIN_MESSAGE_BYTES <= len(payload) <= MAX_MESSAGE_BYTES:
        limits = f"{MIN_MESSAGE_BYTES}..{MAX_MESSAGE_BYTES}"
        raise ValueError(f"the transport protocol carries {limits} bytes, not {len(payload)}")


def bam_frames(pgn: int, payload: bytes, source: int, priority: int = TP_PRIORITY) -> list[RawFrame]:
    """TP.CM BAM then every TP.DT packet (last one padded with 0xFF); send them BAM_MIN..MAX_SPACING_S apart."""
    _check_payload(payload)
    packets = packet_count(len(payload))
    announce = _control_frame(bam_data(len(payload), packets, pgn), source, GLOBAL_ADDRESS, priority)
    return [announce, *_data_frames(payload, source, GLOBAL_ADDRESS, 1, packets, priority)]


@dataclass(frozen=True, slots=True)
class TransportMessage:
    pgn: int
    source: int
    destination: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class TransportRejection:
    reason: str
    source: int
    destination: int
    pgn: int | None


@dataclass(frozen=True, slots=True)
class TransportResult:
    """What one received frame (or one expiry) produced: messages, frames to send back, rejections to count."""

    messages: tuple[TransportMessage, ...] = ()
    frames: tuple[RawFrame, ...] = ()
    rejections: tuple[TransportRejection, ...] = ()


@dataclass(slots=True)
class _Outcome:
    messages: list[TransportMessage] = field(default_factory=list)
    frames: list[RawFrame] = field(default_factory=list)
    rejections: list[TransportRejection] = field(default_factory=list)

    def reject(self, reason: RejectReason, source: int, destination: int, pgn: int | None) -> None:
        self.rejections.append(TransportRejection(reason, source, destination, pgn))

    def freeze(self) -> TransportResult:
        return TransportResult(tuple(self.messages), tuple(self.frames), tuple(self.rejections))


@dataclass(slots=True)
class _Session:
    pgn: int
    source: int
    destination: int
    size_bytes: int
    packets: int
    max_packets_per_cts: int
    deadline_s: float
    buffer: bytearray
    next_sequence: int = 1
    window_end: int = 0

    @property
    def connection_mode(self) -> bool:
        return self.destination != GLOBAL_ADDRESS


def _size_problem(size_bytes: int, packets: int) -> AbortReason | None:
    if size_bytes > MAX_MESSAGE_BYTES:
        return AbortReason.MESSAGE_TOO_LARGE
    if size_bytes < MIN_MESSAGE_BYTES or packets != packet_count(size_bytes):
        return AbortReason.OTHER
    return None


class TransportReassembler:
    """Receives BAM (global) and RTS/CTS (to `address`) sessions, one per (source, destination)."""

    def __init__(self, address: int, packets_per_cts: int = 16) -> None:
        if not 0 <= address < NULL_ADDRESS:
            raise ValueError(f"receiver address {address} must be 0..253")
        if not 1 <= packets_per_cts <= MAX_PACKETS:
            raise ValueError(f"packets per CTS {packets_per_cts} must be 1..{MAX_PACKETS}")
        self._address = address
        self._packets_per_cts = packets_per_cts
        self._sessions: dict[tuple[int, int], _Session] = {}

    @property
    def address(self) -> int:
        return self._address

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    def on_frame(self, frame_id: J1939Id, data: bytes, now: float) -> TransportResult:
        out = _Outcome()
        self._expire_into(now, out)
        if frame_id.source >= NULL_ADDRESS or frame_id.source == self._address:
            return out.freeze()
        if frame_id.destination not in (self._address, GLOBAL_ADDRESS):
            return out.freeze()
        if frame_id.pgn == Pgn.TP_CM:
            self._on_control(frame_id, data, now, out)
        elif frame_id.pgn == Pgn.TP_DT:
            self._on_data(frame_id, data, now, out)
        return out.freeze()

    def expire(self, now: float) -> TransportResult:
        out = _Outcome()
        self._expire_into(now, out)
        return out.freeze()

    def _expire_into(self, now: float, out: _Outcome) -> None:
        for session in [s for s in self._sessions.values() if now > s.deadline_s]:
            self._fail(session, RejectReason.TIMEOUT, AbortReason.TIMEOUT, out)

    def _on_control(self, frame_id: J1939Id, data: bytes, now: float, out: _Outcome) -> None:
        source, destination = frame_id.source, frame_id.destination
        if len(data) != FRAME_BYTES:
            out.reject(RejectReason.MALFORMED, source, destination, None)
            return
        control, pgn = data[0], int.from_bytes(data[5:8], "little")
        to_us = destination == self._address
        if (control == Control.BAM and not to_us) or (control == Control.RTS and to_us):
            self._open(frame_id, data, now, out)
        elif control == Control.ABORT and to_us:
            self._on_abort(source, pgn, out)
        elif control not in (Control.CTS, Control.EOMA):
            out.reject(RejectReason.MALFORMED, source, destination, pgn)

    def _open(self, frame_id: J1939Id, data: bytes, now: float, out: _Outcome) -> None:
        source, destination = frame_id.source, frame_id.destination
        size_bytes, packets, pgn = int.from_bytes(data[1:3], "little"), data[3], int.from_bytes(data[5:8], "little")
        connection_mode = destination != GLOBAL_ADDRESS
        max_packets_per_cts = data[4] if connection_mode else NO_PACKET_LIMIT
        problem = _size_problem(size_bytes, packets)
        if problem is not None or max_packets_per_cts == 0:
            reason = RejectReason.SIZE_MISMATCH if problem is not None else RejectReason.MALFORMED
            out.reject(reason, source, destination, pgn)
            if connection_mode:
                abort = AbortReason.OTHER if problem is None else problem
                out.frames.append(self._reply(abort_data(abort, pgn), source))
            return
        replaced = self._sessions.pop((source, destination), None)
        if replaced is not None:
            out.reject(RejectReason.SESSION_REPLACED, source, destination, replaced.pgn)
        session = _Session(
            pgn=pgn,
            source=source,
            destination=destination,
            size_bytes=size_bytes,
            packets=packets,
            max_packets_per_cts=max_packets_per_cts,
            deadline_s=now + T1_S,
            buffer=bytearray(packets * PACKET_PAYLOAD_BYTES),
        )
        self._sessions[(source, destination)] = session
        if connection_mode:
            self._send_cts(session, now, out)

    def _send_cts(self, session: _Session, now: float, out: _Outcome) -> None:
        remaining = session.packets - session.next_sequence + 1
        count = min(self._packets_per_cts, remaining, session.max_packets_per_cts)
        session.window_end = session.next_sequence + count - 1
        session.deadline_s = now + T2_S
        out.frames.append(self._reply(cts_data(count, session.next_sequence, session.pgn), session.source))

    def _on_abort(self, source: int, pgn: int, out: _Outcome) -> None:
        session = self._sessions.get((source, self._address))
        if session is not None and session.pgn == pgn:
            del self._sessions[(source, self._address)]
            out.reject(RejectReason.ABORTED, source, self._address, pgn)

    def _on_data(self, frame_id: J1939Id, data: bytes, now: float, out: _Outcome) -> None:
        session = self._sessions.get((frame_id.source, frame_id.destination))
        if session is None:
            out.reject(RejectReason.UNEXPECTED_DATA, frame_id.source, frame_id.destination, None)
            return
        if len(data) != FRAME_BYTES:
            self._fail(session, RejectReason.MALFORMED, AbortReason.OTHER, out)
            return
        sequence = data[0]
        if sequence != session.next_sequence:
            if 1 <= sequence < session.next_sequence:
                self._fail(session, RejectReason.DUPLICATE_SEQUENCE, AbortReason.DUPLICATE_SEQUENCE, out)
            else:
                self._fail(session, RejectReason.SEQUENCE_GAP, AbortReason.BAD_SEQUENCE, out)
            return
        offset = (sequence - 1) * PACKET_PAYLOAD_BYTES
        session.buffer[offset : offset + PACKET_PAYLOAD_BYTES] = data[1:]
        session.next_sequence += 1
        if session.next_sequence > session.packets:
            del self._sessions[(session.source, session.destination)]
            payload = bytes(session.buffer[: session.size_bytes])
            out.messages.append(TransportMessage(session.pgn, session.source, session.destination, payload))
            if session.connection_mode:
                eoma = eoma_data(session.size_bytes, session.packets, session.pgn)
                out.frames.append(self._reply(eoma, session.source))
        elif session.connection_mode and session.next_sequence > session.window_end:
            self._send_cts(session, now, out)
        else:
            session.deadline_s = now + T1_S

    def _fail(self, session: _Session, reason: RejectReason, abort: AbortReason, out: _Outcome) -> None:
        del self._sessions[(session.source, session.destination)]
        out.reject(reason, session.source, session.destination, session.pgn)
        if session.connection_mode:
            out.frames.append(self._reply(abort_data(abort, session.pgn), session.source))

    def _reply(self, data: bytes, sender: int) -> RawFrame:
        return _control_frame(data, self._address, sender, TP_PRIORITY)


class _Stage(Enum):
    IDLE = "idle"
    AWAIT_CTS = "await_cts"
    AWAIT_EOMA = "await_eoma"
    DONE = "done"
    FAILED = "failed"


class TransportSender:
    """The originator of one RTS/CTS session: `start` sends the RTS, `on_frame` answers CTS, EoMA and Abort."""

    def __init__(
        self,
        pgn: int,
        payload: bytes,
        source: int,
        destination: int,
        *,
        max_packets_per_cts: int = NO_PACKET_LIMIT,
        priority: int = TP_PRIORITY,
    ) -> None:
        _check_payload(payload)
        if not 0 <= destination < NULL_ADDRESS:
            raise ValueError(f"RTS/CTS needs a destination 0..253, not {destination}; broadcast with bam_frames")
        if not 1 <= max_packets_per_cts <= MAX_PACKETS:
            raise ValueError(f"max packets per CTS {max_packets_per_cts} must be 1..{MAX_PACKETS}")
        self._pgn = pgn
        self._payload = payload
        self._source = source
        self._destination = destination
        self._max_packets_per_cts = max_packets_per_cts
        self._priority = priority
        self._packets = packet_count(len(payload))
        self._stage = _Stage.IDLE
        self._deadline_s = math.inf
        self._highest_sent = 0
        self._abort_reason: int | None = None

    @property
    def done(self) -> bool:
        return self._stage is _Stage.DONE

    @property
    def failed(self) -> bool:
        return self._stage is _Stage.FAILED

    @property
    def abort_reason(self) -> int | None:
        """Why the session failed: ours on a timeout or a bad reply, the receiver's when it aborted."""
        return self._abort_reason

    def start(self, now: float) -> list[RawFrame]:
        if self._stage is not _Stage.IDLE:
            raise RuntimeError("a TransportSender is started once")
        self._stage = _Stage.AWAIT_CTS
        self._deadline_s = now + T3_S
        rts = rts_data(len(self._payload), self._packets, self._max_packets_per_cts, self._pgn)
        return [self._control(rts)]

    def on_frame(self, frame_id: J1939Id, data: bytes, now: float) -> list[RawFrame]:
        frames = self.expire(now)
        if self._stage not in (_Stage.AWAIT_CTS, _Stage.AWAIT_EOMA):
            return frames
        if frame_id.pgn != Pgn.TP_CM or len(data) != FRAME_BYTES:
            return frames
        if (frame_id.source, frame_id.destination) != (self._destination, self._source):
            return frames
        if int.from_bytes(data[5:8], "little") != self._pgn:
            return frames
        if data[0] == Control.CTS:
            frames += self._on_cts(data[1], data[2], now)
        elif data[0] == Control.EOMA:
            frames += self._on_eoma()
        elif data[0] == Control.ABORT:
            self._stage = _Stage.FAILED
            self._abort_reason = data[1]
        return frames

    def expire(self, now: float) -> list[RawFrame]:
        if self._stage in (_Stage.AWAIT_CTS, _Stage.AWAIT_EOMA) and now > self._deadline_s:
            return self._abort(AbortReason.TIMEOUT)
        return []

    def _on_cts(self, count: int, next_packet: int, now: float) -> list[RawFrame]:
        if count == 0:
            self._deadline_s = now + T4_S
            return []
        last = next_packet + count - 1
        if next_packet < 1 or last > self._packets or count > self._max_packets_per_cts:
            return self._abort(AbortReason.OTHER)
        self._highest_sent = max(self._highest_sent, last)
        self._stage = _Stage.AWAIT_EOMA if self._highest_sent == self._packets else _Stage.AWAIT_CTS
        self._deadline_s = now + T3_S
        return _data_frames(self._payload, self._source, self._destination, next_packet, last, self._priority)

    def _on_eoma(self) -> list[RawFrame]:
        if self._stage is not _Stage.AWAIT_EOMA:
            return self._abort(AbortReason.OTHER)
        self._stage = _Stage.DONE
        return []

    def _abort(self, reason: AbortReason) -> list[RawFrame]:
        self._stage = _Stage.FAILED
        self._abort_reason = reason
        return [self._control(abort_data(reason, self._pgn))]

    def _control(self, data: bytes) -> RawFrame:
        return _control_frame(data, self._source, self._destination, self._priority)
