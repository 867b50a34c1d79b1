"""The way back to a pack: its protocol's encoder and the bus it listens on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.codec.can_encoder import FrameEncoder
from gateway.domain.measurement import BoundField, CommandKind

SendFrame = Callable[[int, bytes], bool]


@dataclass
class PackLink:  # not frozen: a J1939 pack that claims another address is followed there
    pack_index: int
    node_address: int
    encoder: FrameEncoder
    send: SendFrame

    def command(self, kind: CommandKind, values: Mapping[BoundField, float] | None = None) -> bool:
        """False when not sent: the bus refused it, or the protocol has no such command (a pack that reports no
        identity, or switches its contactor itself)."""
        if not any(binding.command is kind for binding in self.encoder.protocol.messages.values()):
            return False
        frame = self.encoder.encode_command(kind, self.node_address, values or {})
        return self.send(frame.arbitration_id, frame.data)
