from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, NULL_ADDRESS, J1939Id, Pgn


def test_pdu2_identifier_carries_the_group_extension_in_the_pgn_and_is_global() -> None:
    frame_id = J1939Id.parse(0x18FECA17)
    assert (frame_id.priority, frame_id.pdu_format, frame_id.pdu_specific, frame_id.source) == (6, 0xFE, 0xCA, 0x17)
    assert (frame_id.data_page, frame_id.extended_data_page) == (0, 0)
    assert not frame_id.is_pdu1
    assert frame_id.pgn == 65226
    assert frame_id.destination == GLOBAL_ADDRESS


def test_pdu1_identifier_zeroes_the_destination_out_of_the_pgn() -> None:
    frame_id = J1939Id.parse(0x1CEB8017)
    assert frame_id.priority == 7
    assert frame_id.is_pdu1
    assert frame_id.pgn == 60160
    assert frame_id.destination == 0x80
    assert frame_id.source == 0x17


def test_data_pages_are_the_top_bits_of_the_pgn() -> None:
    assert J1939Id.parse(0x19FECA00).pgn == 0x1FECA
    assert J1939Id.parse(0x1AFECA00).pgn == 0x2FECA
    assert J1939Id.parse(0x1AFECA00).extended_data_page == 1
    assert J1939Id.parse(0x1AFECA00).data_page == 0


def test_pgn_constants_are_the_standard_numbers() -> None:
    assert (Pgn.REQUEST, Pgn.ADDRESS_CLAIMED, Pgn.TP_CM, Pgn.TP_DT, Pgn.DM1, Pgn.ACKNOWLEDGEMENT) == (
        59904, 60928, 60416, 60160, 65226, 59392
    )
    assert (GLOBAL_ADDRESS, NULL_ADDRESS) == (255, 254)


def test_for_pgn_builds_addressed_and_broadcast_identifiers() -> None:
    assert J1939Id.for_pgn(Pgn.REQUEST, source=0xF9, destination=0x17).arbitration_id == 0x18EA17F9
    assert J1939Id.for_pgn(Pgn.TP_CM, source=0x80, destination=0x17, priority=7).arbitration_id == 0x1CEC1780
    assert J1939Id.for_pgn(Pgn.DM1, source=0x17, priority=6).arbitration_id == 0x18FECA17
    assert J1939Id.for_pgn(0x1FECA, source=0x01, priority=3).arbitration_id == 0x0DFECA01


def test_for_pgn_refuses_what_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="PDU2"):
        J1939Id.for_pgn(Pgn.DM1, source=0x17, destination=0x80)
    with pytest.raises(ValueError, match="zero low byte"):
        J1939Id.for_pgn(0xEA01, source=0x17)
    with pytest.raises(ValueError, match="priority"):
        J1939Id.for_pgn(Pgn.DM1, source=0x17, priority=8)
    with pytest.raises(ValueError, match="arbitration_id"):
        J1939Id.parse(1 << 29)


@given(st.integers(0, (1 << 29) - 1))
def test_any_29_bit_identifier_parses_and_rebuilds_unchanged(arbitration_id: int) -> None:
    frame_id = J1939Id.parse(arbitration_id)
    assert frame_id.arbitration_id == arbitration_id
    assert J1939Id.for_pgn(frame_id.pgn, frame_id.source, frame_id.destination, frame_id.priority) == frame_id
