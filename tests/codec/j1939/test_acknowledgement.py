"""Acknowledgement (PGN 59392): the J1939-21 layout, sent to all with the requester in byte 5."""

from __future__ import annotations

import pytest

from gateway.codec.j1939.acknowledgement import (
    AckControl,
    Acknowledgement,
    acknowledgement_frame,
    parse_acknowledgement,
)
from gateway.codec.j1939.identifier import J1939Id
from gateway.errors import FrameRejected


def test_a_nack_in_the_standard_layout() -> None:
    arbitration_id, data = acknowledgement_frame(AckControl.NACK, 0xFEE5, requester=0xF9, source=0x21)
    assert arbitration_id == 0x18E8FF21  # priority 6, PGN 59392 to the global address, from 0x21
    assert data == bytes.fromhex("01 FF FF FF F9 E5 FE 00")
    assert J1939Id.parse(arbitration_id).destination == 0xFF


def test_parse_reads_back_what_was_built_and_rejects_what_is_not_one() -> None:
    _, data = acknowledgement_frame(AckControl.CANNOT_RESPOND, 0x1FF12, requester=3, source=4)
    assert parse_acknowledgement(data) == Acknowledgement(AckControl.CANNOT_RESPOND, 0x1FF12, 3)
    with pytest.raises(FrameRejected, match="acknowledgement_length"):
        parse_acknowledgement(data[:7])
    with pytest.raises(FrameRejected, match="acknowledgement_control"):
        parse_acknowledgement(bytes([9]) + data[1:])
    with pytest.raises(ValueError, match="18 bits"):
        acknowledgement_frame(AckControl.ACK, 1 << 18, requester=3, source=4)
