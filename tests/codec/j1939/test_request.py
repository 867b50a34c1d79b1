from __future__ import annotations

import pytest

from gateway.codec.j1939.identifier import J1939Id, Pgn
from gateway.codec.j1939.request import PgnRequest, build_request, parse_request
from gateway.errors import FrameRejected


def test_a_request_to_one_node_is_priority_6_with_the_pgn_in_three_little_endian_bytes() -> None:
    assert build_request(Pgn.DM1, source=0xF9, destination=0x17) == (0x18EA17F9, bytes([0xCA, 0xFE, 0x00]))


def test_a_request_without_destination_goes_to_everyone() -> None:
    assert build_request(0x1FEDA, source=0xF9) == (0x18EAFFF9, bytes([0xDA, 0xFE, 0x01]))


def test_parse_tells_which_pgn_is_asked_by_whom_for_whom() -> None:
    request = parse_request(J1939Id.parse(0x18EA17F9), bytes([0xCA, 0xFE, 0x00]))
    assert request == PgnRequest(pgn=Pgn.DM1, requester=0xF9, destination=0x17)


def test_parse_accepts_a_request_padded_to_eight_bytes() -> None:
    request = parse_request(J1939Id.parse(0x18EAFFF9), bytes([0x00, 0xEE, 0x00]) + b"\xff" * 5)
    assert request == PgnRequest(pgn=Pgn.ADDRESS_CLAIMED, requester=0xF9, destination=0xFF)


def test_parse_rejects_a_short_request_and_refuses_other_pgns() -> None:
    with pytest.raises(FrameRejected) as rejected:
        parse_request(J1939Id.parse(0x18EA17F9), bytes([0xCA, 0xFE]))
    assert rejected.value.reason == "request_too_short"
    with pytest.raises(ValueError, match="not a Request"):
        parse_request(J1939Id.parse(0x18FECA17), bytes(8))
