"""Drives a TransportSender against a TransportReassembler the way a bus would, recording every frame."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.codec.j1939.identifier import J1939Id, RawFrame
from gateway.codec.j1939.transport import TransportMessage, TransportReassembler, TransportRejection, TransportSender


@dataclass
class Exchange:
    messages: list[TransportMessage] = field(default_factory=list)
    rejections: list[TransportRejection] = field(default_factory=list)
    sent_by_sender: list[RawFrame] = field(default_factory=list)
    sent_by_receiver: list[RawFrame] = field(default_factory=list)


def run_exchange(sender: TransportSender, receiver: TransportReassembler, frame_gap_s: float = 0.01) -> Exchange:
    exchange = Exchange()
    now = 0.0
    pending = sender.start(now)
    while pending:
        replies: list[RawFrame] = []
        for arbitration_id, data in pending:
            exchange.sent_by_sender.append((arbitration_id, data))
            now += frame_gap_s
            result = receiver.on_frame(J1939Id.parse(arbitration_id), data, now)
            exchange.messages += result.messages
            exchange.rejections += result.rejections
            replies += result.frames
        pending = []
        for arbitration_id, data in replies:
            exchange.sent_by_receiver.append((arbitration_id, data))
            now += frame_gap_s
            pending += sender.on_frame(J1939Id.parse(arbitration_id), data, now)
    return exchange
