"""The CAN recorder with python-can's own writers and readers: formats, channels per bus, direction, time order,
flushing while it runs, and a clear refusal of a format it does not write."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import can
import pytest

from gateway.adapters.can_recorder import FLUSH_INTERVAL_S, CanRecorder
from gateway.errors import AdapterError, ConfigError

BUSES = ("packs-a", "packs-b")


def _frame(timestamp: float, arbitration_id: int, *, is_rx: bool = True) -> can.Message:
    return can.Message(timestamp=timestamp, arbitration_id=arbitration_id, data=bytes([arbitration_id & 0xFF]),
                       is_extended_id=True, is_rx=is_rx)


def _read(path: Path) -> list[can.Message]:
    return list(can.LogReader(path))


@pytest.mark.parametrize(("suffix", "channels"), [(".log", list(BUSES)), (".asc", [0, 1]), (".blf", [0, 1])])
def test_every_format_keeps_the_bus_direction_and_order_of_the_frames(tmp_path: Path, suffix: str,
                                                                      channels: list[str | int]) -> None:
    path = tmp_path / f"record{suffix}"
    recorder = CanRecorder(path, BUSES)
    recorder.record("packs-a", _frame(1_700_000_000.10, 0x18FF0101))
    recorder.record("packs-b", _frame(1_700_000_000.20, 0x18FF0202))
    recorder.record("packs-a", _frame(1_700_000_000.15, 0x18FF0103))  # drained after packs-b's: written at .20
    recorder.record("packs-b", _frame(1_700_000_000.30, 0x18EF0201, is_rx=False))
    recorder.close()
    recorder.close()  # again: nothing happens

    frames = _read(path)
    assert [f.arbitration_id for f in frames] == [0x18FF0101, 0x18FF0202, 0x18FF0103, 0x18EF0201]
    assert [f.channel for f in frames] == [channels[0], channels[1], channels[0], channels[1]]
    assert [f.is_rx for f in frames] == [True, True, True, False]
    assert [bytes(f.data) for f in frames] == [b"\x01", b"\x02", b"\x03", b"\x01"]
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(frames)]
    assert all(gap >= 0.0 for gap in gaps), gaps
    assert gaps[0] == pytest.approx(0.1, abs=1e-3)
    assert recorder.frames == 4


def test_an_asc_file_numbers_the_buses_from_one_as_in_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "record.asc"
    recorder = CanRecorder(path, BUSES)
    recorder.record("packs-b", _frame(1_700_000_000.0, 0x18FF0202))
    recorder.close()
    frame_lines = [line.split() for line in path.read_text().splitlines() if "18FF0202x" in line]
    assert len(frame_lines) == 1
    assert frame_lines[0][1] == "2"  # second [[buses]] entry: channel 2 in the file


@pytest.mark.parametrize("suffix", [".log", ".blf"])
async def test_what_is_recorded_reaches_the_file_within_the_flush_interval_while_recording_goes_on(
        tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"running{suffix}"
    recorder = CanRecorder(path, BUSES)
    try:
        recorder.record("packs-a", _frame(1_700_000_000.0, 0x18FF0101))
        await asyncio.sleep(FLUSH_INTERVAL_S + 0.2)
        assert [f.arbitration_id for f in _read(path)] == [0x18FF0101]  # readable as a kill -9 would leave it
        recorder.record("packs-a", _frame(1_700_000_001.0, 0x18FF0102))
        await asyncio.sleep(FLUSH_INTERVAL_S + 0.2)
        assert [f.arbitration_id for f in _read(path)] == [0x18FF0101, 0x18FF0102]
    finally:
        recorder.close()


def test_a_format_it_does_not_write_is_refused_naming_the_option_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"run --record: .*record\.trc: cannot record to a \.trc file.*\.log "
                                          r"\(candump\), \*\.asc .* or \*\.blf"):
        CanRecorder(tmp_path / "record.trc", BUSES)
    assert not (tmp_path / "record.trc").exists()


def test_a_file_that_cannot_be_created_is_an_adapter_error(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="cannot create the file"):
        CanRecorder(tmp_path / "missing" / "record.log", BUSES)
