"""The BAM pacer: one broadcast at a time, packets at least 50 ms apart, each PGN at most once a period with its
latest payload; its packets reassembled by the gateway's own TransportReassembler."""

from __future__ import annotations

import itertools

from gateway.codec.j1939.identifier import J1939Id, Pgn, RawFrame
from gateway.codec.j1939.transport import BAM_MIN_SPACING_S, T1_S, Control, TransportReassembler
from gateway.sim.j1939_pacer import MULTI_PACKET_PERIOD_S, BamPacer

CELLS = 0xFF10
CELLS_64 = bytes(range(64))  # 10 packets


def run(pacer: BamPacer, until_s: float, *, from_s: float = 0.0, step_s: float = 0.01,
        source: int = 33) -> list[tuple[float, RawFrame]]:
    """`pacer.due` every `step_s` of time from `from_s` to `until_s`, as the simulator's loop calls it."""
    sent = []
    now = from_s
    while now < until_s:
        sent += [(now, frame) for frame in pacer.due(now, source)]
        now = round(now + step_s, 6)
    return sent


def test_a_64_byte_message_goes_out_as_a_bam_spaced_at_least_50_ms_and_reassembles() -> None:
    pacer = BamPacer()
    pacer.offer(CELLS, CELLS_64)
    sent = run(pacer, 1.0)
    assert len(sent) == 11  # TP.CM BAM and 10 TP.DT
    times = [t for t, _ in sent]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= BAM_MIN_SPACING_S - 1e-9
    assert max(gaps) < T1_S
    receiver = TransportReassembler(249)
    messages = []
    for now, (arbitration_id, data) in sent:
        result = receiver.on_frame(J1939Id.parse(arbitration_id), data, now)
        assert result.rejections == ()
        messages += result.messages
    assert [(m.pgn, m.source, m.payload) for m in messages] == [(CELLS, 33, CELLS_64)]


def test_one_broadcast_at_a_time_and_each_pgn_at_most_once_a_period_with_its_latest_payload() -> None:
    pacer = BamPacer()
    pacer.offer(CELLS, CELLS_64)
    pacer.offer(Pgn.DM1, bytes(14))
    first = run(pacer, 0.3)
    pacer.offer(CELLS, bytes(64))  # offered while the first cell message is still going out: waits for its period
    pacer.offer(CELLS, bytes([7]) * 64)  # replaces the waiting payload
    sent = first + run(pacer, 2.5, from_s=0.3)
    announcements = [(t, int.from_bytes(data[5:8], "little")) for t, (i, data) in sent
                     if J1939Id.parse(i).pgn == Pgn.TP_CM and data[0] == Control.BAM]
    assert [pgn for _, pgn in announcements] == [CELLS, Pgn.DM1, CELLS]
    cell_starts = [t for t, pgn in announcements if pgn == CELLS]
    assert cell_starts[1] - cell_starts[0] >= MULTI_PACKET_PERIOD_S - 1e-9
    dm1_start = announcements[1][0]
    assert dm1_start > max(t for t, (i, _) in sent[:11])  # not before the cell message ended
    last_data = [data for _, (i, data) in sent if J1939Id.parse(i).pgn == Pgn.TP_DT][-1]
    assert last_data[1] == 7  # the latest payload went out
    assert pacer.sessions_started == 3


def test_an_abandoned_broadcast_stops_and_the_waiting_ones_remain() -> None:
    pacer = BamPacer()
    pacer.offer(CELLS, CELLS_64)
    pacer.offer(Pgn.DM1, bytes(14))
    run(pacer, 0.2)
    assert pacer.in_session
    pacer.abandon()
    assert not pacer.in_session
    assert pacer.sessions_abandoned == 1
    resumed = run(pacer, 1.0, from_s=0.2)
    assert int.from_bytes(resumed[0][1][1][5:8], "little") == Pgn.DM1
