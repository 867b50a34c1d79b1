"""RTS/CTS reception against frames written out byte by byte from the J1939-21 layout.

Sender 0x17 sends PGN 0xFF10 to us, 0x80: its TP.CM frames are 0x1CEC8017 and TP.DT 0x1CEB8017; ours go back
as 0x1CEC1780 (priority 7).
"""

from __future__ import annotations

from gateway.codec.j1939.identifier import J1939Id
from gateway.codec.j1939.transport import TransportMessage, TransportReassembler, TransportResult

TO_US_CM = 0x1CEC8017
TO_US_DT = 0x1CEB8017
TO_SENDER_CM = 0x1CEC1780
RTS_20_BYTES = "10 14 00 03 FF 10 FF 00"
PACKETS_20_BYTES = ("01 00 01 02 03 04 05 06", "02 07 08 09 0A 0B 0C 0D", "03 0E 0F 10 11 12 13 FF")


def feed(receiver: TransportReassembler, arbitration_id: int, data_hex: str, now: float) -> TransportResult:
    return receiver.on_frame(J1939Id.parse(arbitration_id), bytes.fromhex(data_hex), now)


def reply(data_hex: str) -> tuple[int, bytes]:
    return TO_SENDER_CM, bytes.fromhex(data_hex)


def test_rts_is_answered_by_cts_and_the_last_packet_by_eoma() -> None:
    receiver = TransportReassembler(address=0x80)
    opened = feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    assert opened.frames == (reply("11 03 01 FF FF 10 FF 00"),)
    assert feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 0.01) == TransportResult()
    assert feed(receiver, TO_US_DT, PACKETS_20_BYTES[1], 0.02) == TransportResult()
    done = feed(receiver, TO_US_DT, PACKETS_20_BYTES[2], 0.03)
    assert done.frames == (reply("13 14 00 03 FF 10 FF 00"),)
    (message,) = done.messages
    assert (message.pgn, message.source, message.destination, message.payload) == (0xFF10, 0x17, 0x80, bytes(range(20)))
    assert receiver.open_sessions == 0


def test_each_window_of_packets_is_opened_by_its_own_cts() -> None:
    receiver = TransportReassembler(address=0x80, packets_per_cts=2)
    sent = [feed(receiver, TO_US_CM, "10 21 00 05 FF 10 FF 00", 0.0)]
    sent += [feed(receiver, TO_US_DT, f"{n:02X} " + " ".join([f"{n:02X}"] * 7), 0.1 * n) for n in range(1, 6)]
    assert [r.frames for r in sent] == [
        (reply("11 02 01 FF FF 10 FF 00"),),
        (),
        (reply("11 02 03 FF FF 10 FF 00"),),
        (),
        (reply("11 01 05 FF FF 10 FF 00"),),
        (reply("13 21 00 05 FF 10 FF 00"),),
    ]
    assert sent[-1].messages[0].payload == b"".join(bytes([n]) * 7 for n in range(1, 6))[:33]


def test_cts_never_asks_for_more_than_the_rts_allows_per_window() -> None:
    receiver = TransportReassembler(address=0x80, packets_per_cts=16)
    assert feed(receiver, TO_US_CM, "10 14 00 03 01 10 FF 00", 0.0).frames == (reply("11 01 01 FF FF 10 FF 00"),)
    assert feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 0.01).frames == (reply("11 01 02 FF FF 10 FF 00"),)


def test_an_rts_allowing_zero_packets_per_window_is_malformed_and_aborted() -> None:
    receiver = TransportReassembler(address=0x80)
    result = feed(receiver, TO_US_CM, "10 14 00 03 00 10 FF 00", 0.0)
    assert [r.reason for r in result.rejections] == ["tp_malformed"]
    assert result.frames == (reply("FF FA FF FF FF 10 FF 00"),)


def test_a_sequence_gap_aborts_with_bad_sequence() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 0.01)
    result = feed(receiver, TO_US_DT, PACKETS_20_BYTES[2], 0.02)
    assert [(r.reason, r.source, r.destination, r.pgn) for r in result.rejections] == [
        ("tp_sequence_gap", 0x17, 0x80, 0xFF10)
    ]
    assert result.frames == (reply("FF 07 FF FF FF 10 FF 00"),)
    assert result.messages == ()
    assert receiver.open_sessions == 0


def test_a_sequence_number_zero_is_a_bad_sequence() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    result = feed(receiver, TO_US_DT, "00 00 01 02 03 04 05 06", 0.01)
    assert [r.reason for r in result.rejections] == ["tp_sequence_gap"]
    assert result.frames == (reply("FF 07 FF FF FF 10 FF 00"),)


def test_a_repeated_packet_aborts_with_duplicate_sequence() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 0.01)
    feed(receiver, TO_US_DT, PACKETS_20_BYTES[1], 0.02)
    result = feed(receiver, TO_US_DT, PACKETS_20_BYTES[1], 0.03)
    assert [r.reason for r in result.rejections] == ["tp_duplicate_sequence"]
    assert result.frames == (reply("FF 08 FF FF FF 10 FF 00"),)
    assert receiver.open_sessions == 0


def test_no_data_within_t2_after_cts_times_out_with_abort_reason_3() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    assert receiver.expire(1.25) == TransportResult()
    result = receiver.expire(1.26)
    assert [(r.reason, r.pgn) for r in result.rejections] == [("tp_timeout", 0xFF10)]
    assert result.frames == (reply("FF 03 FF FF FF 10 FF 00"),)
    assert receiver.expire(5.0) == TransportResult()


def test_between_packets_of_a_window_the_limit_is_t1() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 0.1)
    assert receiver.expire(0.85) == TransportResult()
    assert [r.reason for r in receiver.expire(0.86).rejections] == ["tp_timeout"]


def test_after_a_window_s_cts_the_limit_is_t2_again() -> None:
    receiver = TransportReassembler(address=0x80, packets_per_cts=1)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    assert feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 0.1).frames == (reply("11 01 02 FF FF 10 FF 00"),)
    assert receiver.expire(1.35) == TransportResult()
    assert [r.reason for r in receiver.expire(1.36).rejections] == ["tp_timeout"]


def test_a_late_packet_first_expires_the_session_then_is_unexpected() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    result = feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 2.0)
    assert [r.reason for r in result.rejections] == ["tp_timeout", "tp_unexpected_data"]
    assert result.frames == (reply("FF 03 FF FF FF 10 FF 00"),)


def test_sizes_that_do_not_add_up_are_aborted() -> None:
    receiver = TransportReassembler(address=0x80)
    wrong_count = feed(receiver, TO_US_CM, "10 14 00 04 FF 10 FF 00", 0.0)
    assert [r.reason for r in wrong_count.rejections] == ["tp_size_mismatch"]
    assert wrong_count.frames == (reply("FF FA FF FF FF 10 FF 00"),)
    too_large = feed(receiver, TO_US_CM, "10 FA 06 FF FF 10 FF 00", 0.0)
    assert [r.reason for r in too_large.rejections] == ["tp_size_mismatch"]
    assert too_large.frames == (reply("FF 09 FF FF FF 10 FF 00"),)
    assert receiver.open_sessions == 0


def test_the_senders_abort_closes_the_session_without_a_reply() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 0.01)
    assert feed(receiver, TO_US_CM, "FF 02 FF FF FF 11 FF 00", 0.02) == TransportResult()
    assert receiver.open_sessions == 1
    result = feed(receiver, TO_US_CM, "FF 02 FF FF FF 10 FF 00", 0.03)
    assert [(r.reason, r.pgn) for r in result.rejections] == [("tp_aborted", 0xFF10)]
    assert result.frames == ()
    assert receiver.open_sessions == 0


def test_a_new_rts_from_the_same_sender_replaces_the_unfinished_session() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    feed(receiver, TO_US_DT, PACKETS_20_BYTES[0], 0.01)
    result = feed(receiver, TO_US_CM, RTS_20_BYTES, 0.02)
    assert [r.reason for r in result.rejections] == ["tp_session_replaced"]
    assert result.frames == (reply("11 03 01 FF FF 10 FF 00"),)
    for n, packet in enumerate(PACKETS_20_BYTES):
        done = feed(receiver, TO_US_DT, packet, 0.03 + 0.01 * n)
    assert [m.payload for m in done.messages] == [bytes(range(20))]


def test_a_bam_and_an_rts_session_from_one_sender_run_side_by_side() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, 0x1CECFF17, "20 09 00 02 FF 20 FF 00", 0.0)
    feed(receiver, TO_US_CM, RTS_20_BYTES, 0.0)
    messages: list[TransportMessage] = []
    for n, packet in enumerate(PACKETS_20_BYTES):
        messages += feed(receiver, TO_US_DT, packet, 0.01 * n).messages
        if n < 2:
            messages += feed(receiver, 0x1CEBFF17, PACKETS_20_BYTES[n], 0.01 * n).messages
    assert sorted((m.pgn, m.destination, m.payload) for m in messages) == [
        (0xFF10, 0x80, bytes(range(20))),
        (0xFF20, 0xFF, bytes(range(9))),
    ]


def test_control_frames_for_an_originator_are_not_the_receivers_business() -> None:
    receiver = TransportReassembler(address=0x80)
    assert feed(receiver, TO_US_CM, "11 03 01 FF FF 10 FF 00", 0.0) == TransportResult()
    assert feed(receiver, TO_US_CM, "13 14 00 03 FF 10 FF 00", 0.0) == TransportResult()
    assert [r.reason for r in feed(receiver, TO_US_CM, "42 14 00 03 FF 10 FF 00", 0.0).rejections] == ["tp_malformed"]
