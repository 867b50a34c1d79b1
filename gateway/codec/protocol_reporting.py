"""What a pack protocol reports of the measurement model, read off its bindings (gateway.domain.pack_reporting)."""

from __future__ import annotations

from gateway.codec.protocol import PackProtocol
from gateway.domain.measurement import BoundField
from gateway.domain.pack_reporting import PackReporting


def reported_fields(protocol: PackProtocol) -> frozenset[BoundField]:
    """Every field a frame from the pack carries."""
    return frozenset(bound.field for binding in protocol.messages.values() if binding.direction == "from_pack"
                     for bound in binding.bindings.values())


def pack_reporting(protocol: PackProtocol) -> PackReporting:
    return PackReporting.of(reported_fields(protocol))
