"""bench/modbus.py: a smoke run with tiny durations produces every figure of the report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.modbus_figures import tail_causes, tick_jitter_s

ROOT = Path(__file__).resolve().parents[2]


def table_row(report: str, *first_cells: str) -> list[str]:
    """The cells of the Markdown table row whose first cells are `first_cells`."""
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[: len(first_cells)] == list(first_cells):
            return cells
    raise AssertionError(f"no row {first_cells} in:\n{report}")


def number(cell: str) -> float:
    return float(cell.replace(",", "").split()[0])


def test_tick_jitter_is_the_deviation_of_each_interval_from_the_period() -> None:
    assert np.allclose(tick_jitter_s([0.0, 0.1, 0.25, 0.3], 0.1), [0.0, 0.05, 0.05])


def test_slow_requests_are_attributed_to_the_stalls_they_overlapped() -> None:
    ms = 1_000_000
    # (sent, latency) in ns: two fast requests, a slow one across the tick at 10-15 ms, a slow one across nothing
    timings = np.array([0, 1 * ms, 2 * ms, 1 * ms, 9 * ms, 8 * ms, 30 * ms, 8 * ms], dtype=np.int64)
    stalls = {"engine tick": [(0.010, 0.015)], "GC pause": [(0.050, 0.060)]}
    assert tail_causes(timings, 50.0, stalls) == {"engine tick": 0.5, "GC pause": 0.0, "neither": 0.5}
    assert tail_causes(timings, 0.0, stalls)["engine tick"] == 0.25


@pytest.mark.e2e  # starts the gateway (and a plain pymodbus server) in subprocesses
def test_smoke_run_reports_throughput_latency_and_can_ingest() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.modbus", "--seconds", "0.5", "--warmup", "0.3", "--clients", "0,3",
         "--packs", "2", "--buses", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    report = result.stdout
    for server in ("gateway + CAN load", "plain pymodbus, static"):
        cells = table_row(report, "3", server)
        requests_per_s, p50_ms, p99_ms = (number(c) for c in cells[2:5])
        assert requests_per_s > 0
        assert 0 < p50_ms <= p99_ms
        assert cells[6] == "0"  # errors
    assert table_row(report, "0", "gateway + CAN load")[2] == "-"  # CAN load only: no client figures
    can_table = report.split("CAN ingest during", 1)[1]
    sent, received, dropped = (number(c) for c in table_row(can_table, "3")[1:4])
    assert sent > 0
    assert received > 0
    assert dropped == 0
    assert "0 dropped (queue full)" in report
    assert "tick jitter p99" in report
    assert table_row(report.split("Where the slowest", 1)[1], "3", "gateway + CAN load")
