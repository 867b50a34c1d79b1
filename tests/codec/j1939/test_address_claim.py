from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.codec.j1939.address_claim import (
    AddressChange,
    AddressClaimTracker,
    ClaimChange,
    J1939Name,
    address_claim_request_frame,
    address_claimed_frame,
)
from gateway.codec.j1939.identifier import J1939Id
from gateway.errors import FrameRejected

NAME = J1939Name(
    arbitrary_address_capable=True,
    industry_group=2,
    vehicle_system_instance=0xA,
    vehicle_system=0x3C,
    function=0x82,
    function_instance=0x11,
    ecu_instance=5,
    manufacturer_code=0x2AB,
    identity_number=0x12345,
)
LOWER = replace(NAME, identity_number=0x12344)
HIGHER = replace(NAME, identity_number=0x12346)


def claim(tracker: AddressClaimTracker, name: J1939Name, source: int) -> list[AddressChange]:
    arbitration_id, data = address_claimed_frame(name, source)
    return tracker.on_frame(J1939Id.parse(arbitration_id), data)


def test_name_bytes_follow_the_j1939_81_bit_layout() -> None:
    # identity 0x12345 | manufacturer 0x2AB << 21 = 0x55612345; ECU instance 5 | function instance 0x11 << 3 = 0x8D;
    # function 0x82; reserved 0 | vehicle system 0x3C << 1 = 0x78; VSI 0xA | group 2 << 4 | capable << 7 = 0xAA
    wire = bytes.fromhex("45 23 61 55 8D 82 78 AA")
    assert NAME.to_bytes() == wire
    assert J1939Name.from_bytes(wire) == NAME
    assert NAME.value == 0xAA78828D55612345


@given(st.integers(0, (1 << 64) - 1).map(lambda v: v & ~(1 << 48)))
def test_any_name_round_trips_through_its_bytes(value: int) -> None:
    name = J1939Name.from_value(value)
    assert name.value == value
    assert J1939Name.from_bytes(name.to_bytes()) == name


def test_name_fields_must_fit_their_bits() -> None:
    with pytest.raises(ValueError, match="identity_number"):
        replace(NAME, identity_number=1 << 21)
    with pytest.raises(ValueError, match="industry_group"):
        replace(NAME, industry_group=8)


def test_claim_frames_are_address_claimed_to_global_and_the_request_asks_for_pgn_60928() -> None:
    assert address_claimed_frame(NAME, 0x80) == (0x18EEFF80, NAME.to_bytes())
    assert address_claimed_frame(NAME, 0xFE)[0] == 0x18EEFFFE
    assert address_claim_request_frame(0xF9) == (0x18EAFFF9, bytes.fromhex("00 EE 00"))
    assert address_claim_request_frame(0xF9, destination=0x80) == (0x18EA80F9, bytes.fromhex("00 EE 00"))


def test_a_first_claim_records_the_address_and_a_repeat_changes_nothing() -> None:
    tracker = AddressClaimTracker()
    assert claim(tracker, NAME, 0x80) == [AddressChange(NAME, ClaimChange.CLAIMED, None, 0x80)]
    assert claim(tracker, NAME, 0x80) == []
    assert tracker.address_of(NAME) == 0x80
    assert tracker.name_at(0x80) == NAME
    assert tracker.addresses == {NAME: 0x80}


def test_a_known_name_moving_frees_its_old_address() -> None:
    tracker = AddressClaimTracker()
    claim(tracker, NAME, 0x80)
    assert claim(tracker, NAME, 0x81) == [AddressChange(NAME, ClaimChange.MOVED, 0x80, 0x81)]
    assert tracker.name_at(0x80) is None
    assert tracker.name_at(0x81) == NAME


def test_a_lower_name_takes_the_address_over() -> None:
    tracker = AddressClaimTracker()
    claim(tracker, NAME, 0x80)
    assert claim(tracker, LOWER, 0x80) == [
        AddressChange(LOWER, ClaimChange.CLAIMED, None, 0x80, rival=NAME),
        AddressChange(NAME, ClaimChange.DISPLACED, 0x80, None, rival=LOWER),
    ]
    assert tracker.name_at(0x80) == LOWER
    assert tracker.address_of(NAME) is None
    assert tracker.addresses == {LOWER: 0x80}


def test_a_higher_name_loses_arbitration_and_gives_up_its_old_address() -> None:
    tracker = AddressClaimTracker()
    claim(tracker, NAME, 0x80)
    claim(tracker, HIGHER, 0x81)
    assert claim(tracker, HIGHER, 0x80) == [AddressChange(HIGHER, ClaimChange.LOST_ARBITRATION, 0x81, None, NAME)]
    assert tracker.name_at(0x80) == NAME
    assert tracker.name_at(0x81) is None
    assert tracker.address_of(HIGHER) is None


def test_the_displaced_name_can_claim_another_address() -> None:
    tracker = AddressClaimTracker()
    claim(tracker, NAME, 0x80)
    claim(tracker, LOWER, 0x80)
    assert claim(tracker, NAME, 0x82) == [AddressChange(NAME, ClaimChange.CLAIMED, None, 0x82)]
    assert tracker.addresses == {LOWER: 0x80, NAME: 0x82}


def test_cannot_claim_releases_the_address_once() -> None:
    tracker = AddressClaimTracker()
    claim(tracker, NAME, 0x80)
    assert claim(tracker, NAME, 0xFE) == [AddressChange(NAME, ClaimChange.CANNOT_CLAIM, 0x80, None)]
    assert claim(tracker, NAME, 0xFE) == []
    assert tracker.name_at(0x80) is None


def test_other_pgns_are_ignored_and_bad_claims_rejected() -> None:
    tracker = AddressClaimTracker()
    assert tracker.on_frame(J1939Id.parse(0x18FECA80), NAME.to_bytes()) == []
    with pytest.raises(FrameRejected) as short:
        tracker.on_frame(J1939Id.parse(0x18EEFF80), NAME.to_bytes()[:7])
    assert short.value.reason == "address_claim_length"
    with pytest.raises(FrameRejected) as from_global:
        tracker.on_frame(J1939Id.parse(0x18EEFFFF), NAME.to_bytes())
    assert from_global.value.reason == "address_claim_source"
    assert tracker.addresses == {}
