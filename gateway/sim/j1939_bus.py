"""The simulator's J1939 link layer on one bus: the link-layer frames the gateway sends (Requests, TP.CM replies to
the packs' RTS/CTS sessions, address claims, acknowledgements) go to the packs' J1939 nodes, not to the command
decoder, which would take any Request for the mapping's identity request."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.codec.j1939.identifier import J1939Id, Pgn
from gateway.domain.frames import CanFrame
from gateway.sim.j1939_node import J1939PackNode

LINK_LAYER_PGNS = frozenset({Pgn.REQUEST, Pgn.TP_CM, Pgn.TP_DT, Pgn.ADDRESS_CLAIMED, Pgn.ACKNOWLEDGEMENT})


class J1939BusLink:
    def __init__(self, nodes: Sequence[J1939PackNode], clock: Callable[[], float]) -> None:
        self._nodes = tuple(nodes)
        self._clock = clock

    def take(self, frame: CanFrame) -> bool:
        """Whether `frame` is the link layer's (handed to every node, each checks the destination); FrameRejected for
        a malformed one."""
        if not frame.is_extended_id:
            return False
        identifier = J1939Id.parse(frame.arbitration_id)
        if identifier.pgn not in LINK_LAYER_PGNS:
            return False
        now = self._clock()
        for node in self._nodes:
            node.on_frame(identifier, frame.data, now)
        return True
