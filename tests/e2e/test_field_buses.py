"""examples/field-buses.toml end to end: a J1939 pack (BAM cell voltages, DM1 faults, a change of address), two
polled packs (one falls silent) and an off-the-shelf battery-CAN rack, each on its own bus in one gateway, recorded
with the gateway's own `--record`; the recording replays through `bms-gateway replay-can` to the same states."""

from __future__ import annotations

import asyncio
import csv
import math
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import can
import pytest

from gateway.adapters.event_log import EventLog
from gateway.app import build_gateway, run_gateway
from gateway.domain.events import EventKind
from gateway.domain.snapshot import GatewaySnapshot
from tests.sites import OUTPUTS_OFF, site_in

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).parents[2] / "examples" / "field-buses.toml"
TIME_SCALE = 5.0  # simulated seconds per real second: the example's 60 s of faults in 12 s
RUN_S = 14.0
TICK_S = 0.1


def field_site(tmp_path: Path) -> str:
    text = EXAMPLE.read_text()
    stamp = time.monotonic_ns()
    for bus in ("trucks", "cabinet", "storage"):
        text = text.replace(f'channel = "field-{bus}"', f'channel = "field-{bus}-{stamp}"')
    text = text.replace('load_scale_c = 0.3', f'load_scale_c = 0.3\ntime_scale = {TIME_SCALE}')
    return text + "\n" + OUTPUTS_OFF  # after the example: its site_name is a top-level key


async def run_live(tmp_path: Path, log: Path) -> list[GatewaySnapshot]:
    settings = site_in(tmp_path, field_site(tmp_path))
    gateway = build_gateway(settings, record_path=log)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    snapshots = []
    try:
        for _ in range(round(RUN_S / TICK_S)):
            await asyncio.sleep(TICK_S)
            if gateway.hub.latest is not None:
                snapshots.append(gateway.hub.latest)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
    return snapshots


async def test_three_kinds_of_packs_on_three_buses_run_and_replay(tmp_path: Path) -> None:
    log = tmp_path / "field.log"
    snapshots = await run_live(tmp_path, log)
    settings = site_in(tmp_path, field_site(tmp_path))

    # live: every pack came online, by its own protocol
    def online_at_some_point(pack_id: str) -> bool:
        return any(s.pack(pack_id).online for s in snapshots)

    for pack_id in ("truck-7", "slot-1", "slot-2", "rack-1"):
        assert online_at_some_point(pack_id), pack_id
    last = snapshots[-1]
    assert last.pack("truck-7").online  # followed to its new address without going stale
    assert last.pack("slot-1").online
    assert not last.pack("slot-2").online  # silent from 60 s of simulated time: offline, zero limits
    assert last.pack("slot-2").charge_current_limit_a == 0.0
    assert last.pack("rack-1").online
    truck = next(s for s in reversed(snapshots) if s.pack("truck-7").online).pack("truck-7")
    assert all(not math.isnan(v) for v in truck.cell_voltage_v[:32])  # the 64-byte BAM message arrived
    buses = {b.bus: b for b in last.buses}
    polls = {(p.pack_id, p.poll): p for p in buses["cabinet"].polls}
    assert polls["slot-1", "status"].responses > 20
    assert polls["slot-2", "status"].failures >= 2
    assert polls["slot-2", "temperatures"].period_s == 2.0
    assert {b.bus: b.up for b in last.buses} == {"trucks": True, "cabinet": True, "storage": True}
    events = EventLog(settings.store.path)
    try:
        kinds = [(e.pack_id, e.kind) for e in events.query()]
    finally:
        events.close()
    assert kinds.count(("truck-7", EventKind.DTC_ACTIVE)) == 2
    assert kinds.count(("truck-7", EventKind.DTC_CLEARED)) == 2
    assert ("truck-7", EventKind.READDRESSED) in kinds

    # the gateway's own recording replays to the same states
    states = tmp_path / "states.csv"
    site = tmp_path / "site.toml"
    done = subprocess.run([sys.executable, "-m", "gateway", "replay-can", str(log), "--config", str(site),
                           "--output", str(states), "--every", str(TICK_S), "--store", str(tmp_path / "r.sqlite"),
                           "--speed", "0"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    with states.open() as stream:
        for row in csv.DictReader(stream):
            rows[row["pack_id"]].append(row)
    with can.LogReader(str(log)) as reader:
        recorded = list(reader)
    first_frame = recorded[0].timestamp  # log time 0
    keepalives = [m for m in recorded if m.channel == "storage" and m.arbitration_id == 0x305]
    assert len(keepalives) >= RUN_S - 3  # the rack's keep-alive poll, once a second, recorded as sent
    assert not any(m.is_extended_id for m in keepalives)
    compared = 0
    worst_soc = 0.0
    for snapshot in snapshots:
        log_time_s = snapshot.wall_time - first_frame
        if log_time_s < 3.0:
            continue  # while the estimators settle, a live tick's phase against the frames moves the SoC
        for pack in snapshot.packs:
            # within 3 ticks: a live snapshot is stamped when its tick ends, up to a tick or two after the frames
            # it used (the J1939 truck's SoC steps once a second, with its BAM cell voltages)
            near = [r for r in rows[pack.pack_id] if abs(float(r["time_s"]) - log_time_s) <= 3.5 * TICK_S]
            where = f"{pack.pack_id} at {log_time_s:.2f} s"
            assert near, where
            assert any(int(r["online"]) == pack.online for r in near), where
            if pack.online and not math.isnan(pack.soc):
                closest = min(abs(float(r["soc"] or "nan") - pack.soc) for r in near)
                assert closest < 1e-2, where  # measured: up to 4.5e-3, the J1939 truck (closing note)
                worst_soc = max(worst_soc, closest)
            compared += 1
    assert compared >= 4 * 80
    print(f"{len(recorded)} frames recorded on 3 buses; {compared} live pack states matched by the replay "
          f"(largest SoC difference {worst_soc:.1e})")
