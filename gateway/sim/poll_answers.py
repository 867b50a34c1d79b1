"""What a polled simulated pack keeps to itself until asked: the messages that answer its protocol's polls."""

from __future__ import annotations

from gateway.codec.can_encoder import FrameEncoder
from gateway.sim.pack_frames import PackFrames


class PollAnswers:
    """The pack's unsolicited frames (every message that answers no poll), and per request message its answer."""

    def __init__(self, encoder: FrameEncoder, node_address: int) -> None:
        protocol = encoder.protocol
        responses: dict[str, set[str]] = {}
        for poll in protocol.polls.values():
            responses.setdefault(poll.request, set()).update(poll.responses)
        polled = set().union(*responses.values())
        self.unsolicited = PackFrames(encoder, node_address,
                                      [name for name in protocol.messages if name not in polled])
        self.answers = {request: PackFrames(encoder, node_address, names) for request, names in responses.items()}
