"""BAM reception; expected frames are written out byte by byte from the J1939-21 layout."""

from __future__ import annotations

from gateway.codec.j1939.identifier import J1939Id, Pgn, RawFrame
from gateway.codec.j1939.transport import TransportMessage, TransportReassembler, TransportResult, bam_frames

PAYLOAD_64 = bytes(range(64))


def feed(receiver: TransportReassembler, arbitration_id: int, data_hex: str, now: float) -> TransportResult:
    return receiver.on_frame(J1939Id.parse(arbitration_id), bytes.fromhex(data_hex), now)


def deliver(receiver: TransportReassembler, frames: list[RawFrame], spacing_s: float) -> list[TransportResult]:
    return [receiver.on_frame(J1939Id.parse(i), d, spacing_s * n) for n, (i, d) in enumerate(frames)]


def payloads(results: list[TransportResult]) -> list[bytes]:
    return [message.payload for result in results for message in result.messages]


def test_bam_frames_follow_the_standard_layout() -> None:
    frames = bam_frames(Pgn.DM1, PAYLOAD_64, source=0x17)
    assert len(frames) == 1 + 10
    assert frames[0] == (0x1CECFF17, bytes.fromhex("20 40 00 0A FF CA FE 00"))
    assert frames[1] == (0x1CEBFF17, bytes.fromhex("01 00 01 02 03 04 05 06"))
    assert frames[9] == (0x1CEBFF17, bytes.fromhex("09 38 39 3A 3B 3C 3D 3E"))
    assert frames[10] == (0x1CEBFF17, bytes.fromhex("0A 3F FF FF FF FF FF FF"))


def test_a_64_byte_bam_reassembles_exactly_and_sends_nothing_back() -> None:
    receiver = TransportReassembler(address=0x80)
    results = deliver(receiver, bam_frames(0xFF10, PAYLOAD_64, 0x17), spacing_s=0.05)
    assert all(not r.frames and not r.rejections for r in results)
    assert [m for r in results[:-1] for m in r.messages] == []
    (message,) = results[-1].messages
    assert (message.pgn, message.source, message.destination, message.payload) == (0xFF10, 0x17, 0xFF, PAYLOAD_64)
    assert receiver.open_sessions == 0


def test_hand_written_bam_is_trimmed_to_the_announced_size() -> None:
    receiver = TransportReassembler(address=0x80)
    assert feed(receiver, 0x1CECFF17, "20 09 00 02 FF 10 FF 00", 0.0) == TransportResult()
    feed(receiver, 0x1CEBFF17, "01 11 22 33 44 55 66 77", 0.05)
    result = feed(receiver, 0x1CEBFF17, "02 88 99 FF FF FF FF FF", 0.10)
    assert [m.payload for m in result.messages] == [bytes.fromhex("11 22 33 44 55 66 77 88 99")]


def test_a_sequence_gap_drops_the_bam_without_replying() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, 0x1CECFF17, "20 15 00 03 FF 10 FF 00", 0.0)
    feed(receiver, 0x1CEBFF17, "01 00 00 00 00 00 00 00", 0.05)
    result = feed(receiver, 0x1CEBFF17, "03 00 00 00 00 00 00 00", 0.10)
    assert [(r.reason, r.source, r.pgn) for r in result.rejections] == [("tp_sequence_gap", 0x17, 0xFF10)]
    assert result.frames == ()
    late = feed(receiver, 0x1CEBFF17, "02 00 00 00 00 00 00 00", 0.15)
    assert [r.reason for r in late.rejections] == ["tp_unexpected_data"]
    assert late.messages == ()


def test_a_repeated_packet_drops_the_bam() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, 0x1CECFF17, "20 15 00 03 FF 10 FF 00", 0.0)
    feed(receiver, 0x1CEBFF17, "01 00 00 00 00 00 00 00", 0.05)
    result = feed(receiver, 0x1CEBFF17, "01 00 00 00 00 00 00 00", 0.10)
    assert [r.reason for r in result.rejections] == ["tp_duplicate_sequence"]
    assert receiver.open_sessions == 0


def test_bam_packets_may_come_as_fast_or_as_slow_as_the_standard_allows_but_not_slower_than_t1() -> None:
    frames = bam_frames(0xFF10, PAYLOAD_64, 0x17)
    assert payloads(deliver(TransportReassembler(address=0x80), frames, spacing_s=0.0)) == [PAYLOAD_64]
    assert payloads(deliver(TransportReassembler(address=0x80), frames, spacing_s=0.74)) == [PAYLOAD_64]

    late = TransportReassembler(address=0x80)
    for i, d in frames[:3]:
        late.on_frame(J1939Id.parse(i), d, 0.0)
    assert late.expire(0.75) == TransportResult()
    expired = late.expire(0.76)
    assert [(r.reason, r.pgn) for r in expired.rejections] == [("tp_timeout", 0xFF10)]
    assert expired.frames == ()


def test_a_new_bam_from_the_same_source_replaces_the_unfinished_one() -> None:
    receiver = TransportReassembler(address=0x80)
    feed(receiver, 0x1CECFF17, "20 15 00 03 FF 10 FF 00", 0.0)
    feed(receiver, 0x1CEBFF17, "01 00 00 00 00 00 00 00", 0.05)
    result = feed(receiver, 0x1CECFF17, "20 09 00 02 FF 11 FF 00", 0.10)
    assert [(r.reason, r.pgn) for r in result.rejections] == [("tp_session_replaced", 0xFF10)]
    feed(receiver, 0x1CEBFF17, "01 01 02 03 04 05 06 07", 0.15)
    done = feed(receiver, 0x1CEBFF17, "02 08 09 FF FF FF FF FF", 0.20)
    assert [(m.pgn, m.payload) for m in done.messages] == [(0xFF11, bytes(range(1, 10)))]


def test_interleaved_bams_from_two_sources_both_complete() -> None:
    receiver = TransportReassembler(address=0x80)
    first = bam_frames(0xFF10, PAYLOAD_64, 0x17)
    second = bam_frames(0xFF20, PAYLOAD_64[::-1], 0x18)
    messages: list[TransportMessage] = []
    for n, ((i1, d1), (i2, d2)) in enumerate(zip(first, second, strict=True)):
        messages += receiver.on_frame(J1939Id.parse(i1), d1, 0.05 * n).messages
        messages += receiver.on_frame(J1939Id.parse(i2), d2, 0.05 * n).messages
    expected = {(0x17, 0xFF10, PAYLOAD_64), (0x18, 0xFF20, PAYLOAD_64[::-1])}
    assert {(m.source, m.pgn, m.payload) for m in messages} == expected


def test_an_announced_size_that_does_not_match_the_packet_count_is_rejected() -> None:
    receiver = TransportReassembler(address=0x80)
    too_many = feed(receiver, 0x1CECFF17, "20 15 00 04 FF 10 FF 00", 0.0)
    too_large = feed(receiver, 0x1CECFF17, "20 FA 06 FF FF 10 FF 00", 0.0)
    too_small = feed(receiver, 0x1CECFF17, "20 08 00 02 FF 10 FF 00", 0.0)
    assert [r.reason for x in (too_many, too_large, too_small) for r in x.rejections] == ["tp_size_mismatch"] * 3
    assert all(x.frames == () for x in (too_many, too_large, too_small))
    assert receiver.open_sessions == 0


def test_data_without_an_announcement_is_unexpected_and_frames_for_others_are_ignored() -> None:
    receiver = TransportReassembler(address=0x80)
    stray = feed(receiver, 0x1CEBFF17, "01 00 00 00 00 00 00 00", 0.0)
    assert [(r.reason, r.pgn) for r in stray.rejections] == [("tp_unexpected_data", None)]
    assert feed(receiver, 0x1CEC4017, "10 14 00 03 FF 10 FF 00", 0.0) == TransportResult()
    assert feed(receiver, 0x18FECA17, "00 FF 00 00 00 00 FF FF", 0.0) == TransportResult()


def test_a_short_control_frame_is_malformed() -> None:
    receiver = TransportReassembler(address=0x80)
    result = feed(receiver, 0x1CECFF17, "20 15 00 03", 0.0)
    assert [r.reason for r in result.rejections] == ["tp_malformed"]
