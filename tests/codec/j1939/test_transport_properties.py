from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.codec.j1939.identifier import J1939Id
from gateway.codec.j1939.transport import TransportReassembler, TransportSender, bam_frames
from tests.codec.j1939.exchange import run_exchange

payloads = st.binary(min_size=9, max_size=1785)


@given(payload=payloads, pgn=st.integers(0, 0xFFFF), source=st.integers(0, 253).filter(lambda a: a != 0x80))
def test_any_payload_round_trips_through_bam(payload: bytes, pgn: int, source: int) -> None:
    receiver = TransportReassembler(address=0x80)
    frames = bam_frames(pgn, payload, source)
    results = [receiver.on_frame(J1939Id.parse(i), d, 0.05 * n) for n, (i, d) in enumerate(frames)]
    assert [(m.pgn, m.source, m.payload) for r in results for m in r.messages] == [(pgn, source, payload)]
    assert all(r.rejections == () and r.frames == () for r in results)
    assert all(len(data) == 8 for _, data in frames)


@given(payload=payloads, ours=st.integers(1, 255), theirs=st.integers(1, 255))
def test_any_payload_round_trips_through_rts_cts(payload: bytes, ours: int, theirs: int) -> None:
    sender = TransportSender(0xFF10, payload, source=0x17, destination=0x80, max_packets_per_cts=theirs)
    exchange = run_exchange(sender, TransportReassembler(address=0x80, packets_per_cts=ours))
    assert [m.payload for m in exchange.messages] == [payload]
    assert exchange.rejections == []
    assert sender.done
    window_limit = ours if theirs == 0xFF else min(ours, theirs)
    assert all(data[1] <= window_limit for _, data in exchange.sent_by_receiver if data[0] == 0x11)
    assert all(len(data) == 8 for _, data in exchange.sent_by_sender + exchange.sent_by_receiver)
