"""The RTS/CTS originator against hand-written receiver frames, then against TransportReassembler."""

from __future__ import annotations

import pytest

from gateway.codec.j1939.identifier import J1939Id, RawFrame
from gateway.codec.j1939.transport import AbortReason, TransportReassembler, TransportSender
from tests.codec.j1939.exchange import run_exchange

PAYLOAD_20 = bytes(range(20))
FROM_US_CM = 0x1CEC8017
FROM_US_DT = 0x1CEB8017
TO_US_CM = 0x1CEC1780


def frame(arbitration_id: int, data_hex: str) -> RawFrame:
    return arbitration_id, bytes.fromhex(data_hex)


def started(max_packets_per_cts: int = 0xFF) -> TransportSender:
    sender = TransportSender(0xFF10, PAYLOAD_20, source=0x17, destination=0x80, max_packets_per_cts=max_packets_per_cts)
    sender.start(0.0)
    return sender


def answer(sender: TransportSender, data_hex: str, now: float, arbitration_id: int = TO_US_CM) -> list[RawFrame]:
    return sender.on_frame(J1939Id.parse(arbitration_id), bytes.fromhex(data_hex), now)


def test_start_sends_the_rts_in_the_standard_layout() -> None:
    sender = TransportSender(0xFF10, PAYLOAD_20, source=0x17, destination=0x80)
    assert sender.start(0.0) == [frame(FROM_US_CM, "10 14 00 03 FF 10 FF 00")]
    limited = TransportSender(0xFECA, bytes(100), source=0x17, destination=0x80, max_packets_per_cts=2)
    assert limited.start(0.0) == [frame(FROM_US_CM, "10 64 00 0F 02 CA FE 00")]
    with pytest.raises(RuntimeError):
        limited.start(0.1)


def test_cts_windows_are_answered_with_their_packets_and_eoma_finishes() -> None:
    sender = started()
    assert answer(sender, "11 02 01 FF FF 10 FF 00", 0.1) == [
        frame(FROM_US_DT, "01 00 01 02 03 04 05 06"),
        frame(FROM_US_DT, "02 07 08 09 0A 0B 0C 0D"),
    ]
    assert answer(sender, "11 01 03 FF FF 10 FF 00", 0.2) == [frame(FROM_US_DT, "03 0E 0F 10 11 12 13 FF")]
    assert not sender.done
    assert answer(sender, "13 14 00 03 FF 10 FF 00", 0.3) == []
    assert sender.done
    assert not sender.failed
    assert answer(sender, "11 01 01 FF FF 10 FF 00", 0.4) == []
    assert sender.expire(10.0) == []


def test_a_cts_may_ask_for_packets_again() -> None:
    sender = started()
    answer(sender, "11 03 01 FF FF 10 FF 00", 0.1)
    assert answer(sender, "11 01 02 FF FF 10 FF 00", 0.2) == [frame(FROM_US_DT, "02 07 08 09 0A 0B 0C 0D")]


def test_without_a_cts_within_t3_the_sender_aborts_with_reason_3() -> None:
    sender = started()
    assert sender.expire(1.25) == []
    assert sender.expire(1.26) == [frame(FROM_US_CM, "FF 03 FF FF FF 10 FF 00")]
    assert sender.failed
    assert sender.abort_reason == AbortReason.TIMEOUT


def test_a_cts_holding_the_connection_extends_the_wait_to_t4() -> None:
    sender = started()
    assert answer(sender, "11 00 01 FF FF 10 FF 00", 1.0) == []
    assert sender.expire(2.05) == []
    assert sender.expire(2.06) == [frame(FROM_US_CM, "FF 03 FF FF FF 10 FF 00")]


def test_the_receivers_abort_fails_the_session_with_its_reason() -> None:
    sender = started()
    assert answer(sender, "FF 01 FF FF FF 10 FF 00", 0.1) == []
    assert sender.failed
    assert sender.abort_reason == AbortReason.BUSY


def test_frames_from_another_node_or_for_another_pgn_are_ignored() -> None:
    sender = started()
    assert answer(sender, "11 03 01 FF FF 10 FF 00", 0.1, arbitration_id=0x1CEC1781) == []
    assert answer(sender, "11 03 01 FF FF 11 FF 00", 0.1) == []
    assert answer(sender, "13 14 00 03 FF 10 FF 00", 0.1, arbitration_id=0x1CEC1880) == []
    assert not sender.done
    assert not sender.failed


@pytest.mark.parametrize(
    ("max_packets_per_cts", "reply_hex"),
    [
        (0xFF, "11 02 03 FF FF 10 FF 00"),  # beyond the last packet
        (0xFF, "11 01 00 FF FF 10 FF 00"),  # packet 0 does not exist
        (2, "11 03 01 FF FF 10 FF 00"),  # more than the RTS allowed
        (0xFF, "13 14 00 03 FF 10 FF 00"),  # EoMA before any packet was sent
    ],
)
def test_a_reply_that_breaks_the_protocol_is_aborted(max_packets_per_cts: int, reply_hex: str) -> None:
    sender = started(max_packets_per_cts)
    assert answer(sender, reply_hex, 0.1) == [frame(FROM_US_CM, "FF FA FF FF FF 10 FF 00")]
    assert sender.failed
    assert sender.abort_reason == AbortReason.OTHER


def test_the_sender_refuses_what_rts_cts_cannot_carry() -> None:
    with pytest.raises(ValueError, match=r"9\.\.1785"):
        TransportSender(0xFF10, bytes(8), source=0x17, destination=0x80)
    with pytest.raises(ValueError, match=r"9\.\.1785"):
        TransportSender(0xFF10, bytes(1786), source=0x17, destination=0x80)
    with pytest.raises(ValueError, match="bam_frames"):
        TransportSender(0xFF10, bytes(20), source=0x17, destination=0xFF)


def test_round_trip_over_several_windows() -> None:
    payload = bytes(range(100)) * 2
    sender = TransportSender(0xFF10, payload, source=0x17, destination=0x80)
    exchange = run_exchange(sender, TransportReassembler(address=0x80, packets_per_cts=5))
    assert [(m.pgn, m.source, m.destination, m.payload) for m in exchange.messages] == [(0xFF10, 0x17, 0x80, payload)]
    assert exchange.rejections == []
    controls = [data for _, data in exchange.sent_by_receiver]
    assert [(c[0], c[1], c[2]) for c in controls[:-1]] == [(0x11, 5, 1), (0x11, 5, 6), (0x11, 5, 11), (0x11, 5, 16),
                                                           (0x11, 5, 21), (0x11, 4, 26)]
    assert controls[-1][:4] == bytes([0x13, 200, 0, 29])
    assert sender.done


def test_round_trip_with_a_sender_that_takes_fewer_packets_per_cts() -> None:
    sender = TransportSender(0xFF10, bytes(100), source=0x17, destination=0x80, max_packets_per_cts=3)
    exchange = run_exchange(sender, TransportReassembler(address=0x80))
    assert [data[1] for _, data in exchange.sent_by_receiver if data[0] == 0x11] == [3, 3, 3, 3, 3]
    assert [m.payload for m in exchange.messages] == [bytes(100)]
    assert sender.done
