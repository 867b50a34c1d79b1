from __future__ import annotations

import pytest

from gateway.codec.j1939.dm1 import (
    Dm1,
    Dtc,
    Lamp,
    LampFlash,
    Lamps,
    LampStatus,
    decode_dm1,
    diff_dtcs,
    dm1_frames,
    encode_dm1,
)
from gateway.codec.j1939.identifier import J1939Id, Pgn
from gateway.codec.j1939.transport import TransportReassembler
from gateway.errors import FrameRejected

WARNING = Lamps(
    malfunction=Lamp(LampStatus.ON),
    amber_warning=Lamp(LampStatus.ON, LampFlash.FAST_2_HZ),
    protect=Lamp(LampStatus.NOT_AVAILABLE, LampFlash.NOT_FLASHING),
)
THREE = (Dtc(437197, 3, 5), Dtc(1569, 31, 35), Dtc(100, 1, 127))


def test_hand_decoded_dm1_from_the_j1939_73_layout() -> None:
    # byte 1: MIL 01, red stop 00, amber 01, protect 00; byte 2: flash MIL 11, red 11, amber 00 (slow), protect 11
    # DTC: SPN 0x6ABCD = 437197 as CD AB + top 3 bits 110 over FMI 00011 -> C3; CM 0, occurrence count 5 -> 05
    dm1 = decode_dm1(bytes.fromhex("44 F3 CD AB C3 05 FF FF"))
    assert dm1.lamps == Lamps(
        malfunction=Lamp(LampStatus.ON, LampFlash.NOT_FLASHING),
        red_stop=Lamp(LampStatus.OFF, LampFlash.NOT_FLASHING),
        amber_warning=Lamp(LampStatus.ON, LampFlash.SLOW_1_HZ),
        protect=Lamp(LampStatus.OFF, LampFlash.NOT_FLASHING),
    )
    assert dm1.dtcs == (Dtc(spn=437197, fmi=3, occurrence_count=5, conversion_method=0),)


def test_the_conversion_method_bit_is_the_top_bit_of_the_occurrence_byte() -> None:
    (dtc,) = decode_dm1(bytes.fromhex("00 FF 21 06 1F 85 FF FF")).dtcs
    assert (dtc.spn, dtc.fmi, dtc.occurrence_count, dtc.conversion_method) == (1569, 31, 5, 1)


def test_a_single_all_zero_dtc_means_no_active_dtc() -> None:
    dm1 = decode_dm1(bytes.fromhex("00 FF 00 00 00 00 FF FF"))
    assert dm1 == Dm1(Lamps(), ())
    assert encode_dm1(Lamps(), []) == bytes.fromhex("00 FF 00 00 00 00 FF FF")


def test_one_dtc_fits_one_padded_frame() -> None:
    # MIL on 01, red stop off 00, amber on 01, protect n/a 11 -> 47; flash 11 11 fast 01 11 -> F7
    encoded = encode_dm1(WARNING, [Dtc(437197, 3, 5)])
    assert encoded == bytes.fromhex("47 F7 CD AB C3 05 FF FF")
    assert decode_dm1(encoded) == Dm1(WARNING, (Dtc(437197, 3, 5),))


def test_three_dtcs_take_two_bytes_plus_four_per_dtc_and_round_trip() -> None:
    encoded = encode_dm1(WARNING, THREE)
    assert len(encoded) == 2 + 4 * 3
    assert encoded[2:6] == bytes.fromhex("CD AB C3 05")
    assert encoded[10:14] == bytes.fromhex("64 00 01 7F")
    assert decode_dm1(encoded) == Dm1(WARNING, THREE)


def test_padding_entries_are_not_dtcs() -> None:
    padded = encode_dm1(WARNING, THREE[:2]) + b"\xff" * 4
    assert decode_dm1(padded).dtcs == THREE[:2]


def test_a_dm1_shorter_than_one_dtc_is_rejected() -> None:
    with pytest.raises(FrameRejected) as rejected:
        decode_dm1(bytes.fromhex("00 FF 00 00"))
    assert rejected.value.reason == "dm1_too_short"


def test_dtc_fields_must_fit_their_bits() -> None:
    with pytest.raises(ValueError, match="spn"):
        Dtc(1 << 19, 0)
    with pytest.raises(ValueError, match="fmi"):
        Dtc(100, 32)
    with pytest.raises(ValueError, match="occurrence_count"):
        Dtc(100, 1, 128)


def test_dm1_frames_use_one_frame_or_bam_and_survive_reassembly() -> None:
    (single,) = dm1_frames(WARNING, THREE[:1], source=0x17)
    assert single == (0x18FECA17, encode_dm1(WARNING, THREE[:1]))

    frames = dm1_frames(WARNING, THREE, source=0x17)
    assert frames[0][0] == 0x1CECFF17
    receiver = TransportReassembler(address=0x80)
    messages = [m for n, (i, d) in enumerate(frames) for m in receiver.on_frame(J1939Id.parse(i), d, 0.05 * n).messages]
    assert [(m.pgn, m.source) for m in messages] == [(Pgn.DM1, 0x17)]
    assert decode_dm1(messages[0].payload) == Dm1(WARNING, THREE)


def test_diff_reports_new_and_cleared_faults_but_not_a_rising_occurrence_count() -> None:
    before = [Dtc(100, 1, 1), Dtc(200, 2, 1)]
    after = [Dtc(100, 1, 2), Dtc(300, 3, 1)]
    diff = diff_dtcs(before, after)
    assert diff.appeared == (Dtc(300, 3, 1),)
    assert diff.cleared == (Dtc(200, 2, 1),)
    assert diff_dtcs(after, after) == ((), ())
    assert diff_dtcs([Dtc(100, 1)], [Dtc(100, 2)]) == ((Dtc(100, 2),), (Dtc(100, 1),))
