"""kill -9 the gateway: the store stays consistent and the next start continues from it."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.e2e.gateway_process import GatewayProcess
from tests.processes import alive, spawned_children

pytestmark = pytest.mark.e2e

CONFIG = """
[engine]
checkpoint_interval_s = 0.5

[[buses]]
name = "bus"
interface = "virtual"
channel = "{channel}"

[[packs]]
id = "pack-a"
bus = "bus"
node_address = 1

[simulation]
enabled = true
load_profile = "constant"
load_scale_c = 1.0

[[simulation.packs]]
node_address = 1
bus = "bus"
initial_soc = 0.8
"""


def saved(store: Path) -> tuple[float, list[float]]:
    db = sqlite3.connect(store)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        import json

        (text,) = db.execute("SELECT state FROM estimator_state WHERE pack_id='pack-a'").fetchone()
        state = json.loads(text)
        for learned in ("ekf.p_soc", "ekf.bias_a", "capacity.sum_wxx", "resistance.sum_xx", "usage.time_at_soc_s"):
            assert learned in state, f"{learned} is not persisted"
        return float(state["usage.ah_discharged"]), list(state["ekf.soc"])
    finally:
        db.close()


def test_kill_9_loses_at_most_one_checkpoint_interval(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(CONFIG.format(channel=f"crash-{time.monotonic_ns()}"))
    first = GatewayProcess.start(tmp_path, config)
    time.sleep(4.0)
    ah_at_kill = first.scrape()[("bmsgw_pack_discharged_coulombs_total", (("pack", "pack-a"),))] / 3600.0
    opcua_children = spawned_children(first.process.pid)
    assert len(opcua_children) == 1, "the OPC UA output runs in a child process"
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    deadline = time.monotonic() + 10.0
    while any(alive(pid) for pid in opcua_children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in opcua_children), "the OPC UA process outlived the gateway"
    ah_saved, cell_soc = saved(tmp_path / "state.sqlite")
    # 1 C = 200 A: 0.5 s of checkpoint interval (plus the scrape-to-kill gap) is about 0.03 Ah
    assert 0 < ah_saved <= ah_at_kill + 0.05
    assert ah_at_kill - ah_saved <= 200.0 * 0.8 / 3600.0
    assert len(cell_soc) == 32

    second = GatewayProcess.start(tmp_path, config)
    try:
        assert "restored estimator state of pack-a" in second.log()
        time.sleep(1.0)
        ah_now = second.scrape()[("bmsgw_pack_discharged_coulombs_total", (("pack", "pack-a"),))] / 3600.0
        assert ah_now >= ah_saved  # continued from the checkpoint, not from zero
    finally:
        assert second.stop() == 0
