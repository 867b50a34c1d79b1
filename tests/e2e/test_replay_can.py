"""A log recorded from the bus of a live gateway replays through `bms-gateway replay-can` to the same states."""

from __future__ import annotations

import asyncio
import csv
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import can
import pytest

from gateway.app import build_gateway, run_gateway
from gateway.config_loader import load_settings
from tests.sites import OUTPUTS_OFF, simulated_packs

pytestmark = pytest.mark.e2e
TICK_S = 0.1

LiveState = tuple[float, str, bool, float, float, frozenset[str]]  # log time, pack, online, soc, ccl, alarms


async def record_live(site: Path, log: Path, seconds: float) -> list[LiveState]:
    """Run the gateway on simulated packs while a candump-like listener logs its bus; the live states by log time."""
    gateway = build_gateway(load_settings(site))
    channel = gateway.settings.buses[0].channel
    tap = can.Bus(interface="virtual", channel=channel)
    logger = can.Logger(str(log))
    notifier = can.Notifier(tap, [logger])
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    snapshots = []
    try:
        for _ in range(round(seconds / TICK_S)):
            await asyncio.sleep(TICK_S)
            if gateway.hub.latest is not None:
                snapshots.append(gateway.hub.latest)
    finally:
        notifier.stop()
        logger.stop()
        tap.shutdown()
        stop.set()
        await asyncio.wait_for(runner, 10)
    with can.LogReader(str(log)) as reader:
        first_frame = next(iter(reader)).timestamp
    return [(s.wall_time - first_frame, p.pack_id, p.online, p.soc, p.charge_current_limit_a,
             frozenset(code.label for code in p.alarms)) for s in snapshots for p in s.packs]


async def test_a_recorded_log_replays_to_the_live_states(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(OUTPUTS_OFF + f'[store]\npath = "{tmp_path / "live.sqlite"}"\n' + simulated_packs(
        "replay", ["pack-a", "pack-b"], {"pack-b": '[{kind = "silent", start_s = 5.0}]'}))
    log = tmp_path / "bus.log"
    live = await record_live(site, log, 9.0)
    states = tmp_path / "states.csv"
    replay_store = tmp_path / "replay.sqlite"
    done = subprocess.run([sys.executable, "-m", "gateway", "replay-can", str(log), "--config", str(site),
                           "--output", str(states), "--every", str(TICK_S), "--store", str(replay_store),
                           "--speed", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pack-b: offline" in done.stdout
    rows: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    with states.open() as stream:
        for row in csv.DictReader(stream):
            rows[row["pack_id"]].append(row)
    compared = 0
    for log_time_s, pack_id, online, soc, ccl, alarms in live:
        if log_time_s < 0.5:
            continue  # the first ticks: which partly received pages count, depends on the tick's phase
        near = [r for r in rows[pack_id] if abs(float(r["time_s"]) - log_time_s) <= 1.5 * TICK_S]
        assert near, f"no replayed state of {pack_id} near {log_time_s:.2f} s"
        where = f"{pack_id} at {log_time_s:.2f} s"
        assert any(int(r["online"]) == online for r in near), where
        assert any(frozenset(filter(None, r["alarms"].split("|"))) == alarms for r in near), where
        assert min(abs(float(r["charge_current_limit_a"]) - ccl) for r in near) < 0.5, where
        if not math.isnan(soc):
            assert min(abs(float(r["soc"] or "nan") - soc) for r in near) < 1e-4, where
        compared += 1
    assert compared >= 2 * 65
    assert {"communication_loss"} in [a for _, pack, _, _, _, a in live if pack == "pack-b"]  # the scenario ran


def replay(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "replay-can", *arguments], capture_output=True, text=True,
                          timeout=60)


def test_a_log_in_an_unknown_format_is_refused_with_the_fix(tmp_path: Path) -> None:
    log = tmp_path / "bus.txt"
    log.write_text("nothing")
    done = replay(str(log))
    assert done.returncode == 2
    assert ".txt is not a CAN log format" in done.stderr
    assert ".asc, .blf, .log" in done.stderr


def test_a_channel_that_matches_no_bus_names_the_mapping_fix(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[[buses]]\nname = "packs"\ninterface = "virtual"\n[[buses]]\nname = "trucks"\n'
                    'interface = "virtual"\n[[packs]]\nid = "p"\nbus = "packs"\nnode_address = 1\n')
    log = tmp_path / "field.log"
    log.write_text("(1700000000.000000) can7 18A10001#0006300000020000 R\n")
    done = replay(str(log), "--config", str(site))
    assert done.returncode == 2
    assert "channel 'can7'" in done.stderr
    assert "--bus can7=NAME" in done.stderr
    mapped = replay(str(log), "--config", str(site), "--bus", "can7=packs")
    assert mapped.returncode == 0, mapped.stderr
    assert "1 frames" in mapped.stdout


def test_asc_channels_map_to_buses_by_position(tmp_path: Path) -> None:
    """An .asc's channel 1 is the first [[buses]] entry, channel 2 the second (python-can reads them 0-based)."""
    from gateway.adapters.can_log import CanLog

    log = tmp_path / "two.asc"
    with can.ASCWriter(str(log)) as writer:
        for channel, arbitration_id in ((0, 0x100), (1, 0x200)):
            writer.on_message_received(can.Message(timestamp=1.0 + channel, arbitration_id=arbitration_id,
                                                   data=b"\x01", channel=channel))
    frames = list(CanLog(log, ["packs", "trucks"]).frames())
    assert [(f.frame.bus, f.frame.arbitration_id) for f in frames] == [("packs", 0x100), ("trucks", 0x200)]
    assert " 1 " in log.read_text().splitlines()[-2]  # the file itself numbers the first bus 1
