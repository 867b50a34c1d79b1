"""`bms-gateway simulate` plays the demo's packs and records their truth; Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_simulate_plays_the_packs_and_stops_on_sigint(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "simulate", "--interface", "virtual", "--channel",
         f"sim-{time.monotonic_ns()}", "--truth-file", str(truth)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(truth.read_text().splitlines() if truth.exists() else []) < 3:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    assert len(records) >= 3
    packs = records[-1]["packs"]
    assert [p["node_address"] for p in packs] == [1, 2, 3, 4]
    assert all(len(p["cell_voltage_v"]) == 32 for p in packs)
    assert records[-1]["sim_time_s"] > records[0]["sim_time_s"]
