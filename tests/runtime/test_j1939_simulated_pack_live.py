"""The gateway and its built-in simulator playing a J1939 pack (j1939-hvess-v1) on one virtual bus, in process, as
the demo would: the pack claims its address, comes online with every cell voltage (64 bytes by BAM, once a second),
gives its identity by RTS/CTS and is admitted; two `dtc` faults make a multi-packet DM1 (dtc_active, later
dtc_cleared); a `readdress` fault moves it to another address, which the gateway follows by its NAME."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from gateway.adapters.event_log import EventLog
from gateway.app import build_gateway, run_gateway
from gateway.codec.protocol import load_protocol
from gateway.domain.events import EventKind
from gateway.domain.states import AdmissionStatus
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.sites import OUTPUTS_OFF, site_in

# The engine keeps its default 1 s: the binding's own stale timeout (the cell voltages come once a second by BAM)
# must keep the pack online.
STALE_TIMEOUT_S = load_protocol(DEFAULT_MAPPINGS_DIR, "j1939-hvess-v1").stale_timeout_s
CONFIG = OUTPUTS_OFF + """
[engine]
identity_request_interval_s = 0.5
[admission]
confirm_s = 1.0
[[buses]]
name = "trucks"
interface = "virtual"
channel = "{channel}"
[[packs]]
id = "truck-7"
bus = "trucks"
node_address = 33
protocol = "j1939-hvess-v1"
[simulation]
enabled = true
load_profile = "idle"
[[simulation.packs]]
node_address = 33
bus = "trucks"
protocol = "j1939-hvess-v1"
serial_number = 4711
faults = [
  {{kind = "dtc", spn = 5920, fmi = 3, start_s = 3.0, duration_s = 2.0, lamp = "red_stop"}},
  {{kind = "dtc", spn = 5921, fmi = 4, start_s = 3.0, duration_s = 2.0}},
  {{kind = "readdress", address = 34, start_s = 6.0}},
]
"""
RUN_S = 9.5


async def test_the_simulator_plays_a_j1939_pack_the_gateway_follows_through_dtcs_and_a_new_address(
        tmp_path: Path) -> None:
    channel = f"j1939-sim-{time.monotonic_ns()}"
    gateway = build_gateway(site_in(tmp_path, CONFIG.format(channel=channel)))
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    first_online: float | None = None
    offline_since: float | None = None
    longest_offline_s = 0.0
    try:
        start = time.monotonic()
        while (now := time.monotonic()) - start < RUN_S:
            await asyncio.sleep(0.05)
            snapshot = gateway.hub.latest
            if snapshot is None:
                continue
            truck = snapshot.packs[0]
            if truck.online:
                first_online = now if first_online is None else first_online
                if offline_since is not None:
                    longest_offline_s = max(longest_offline_s, now - offline_since)
                    offline_since = None
                assert all(3.0 < v < 4.3 for v in truck.cell_voltage_v), truck.cell_voltage_v
                assert math.isclose(sum(truck.cell_voltage_v), truck.pack_voltage_v, abs_tol=0.5)
            elif first_online is not None and offline_since is None:
                offline_since = now
        snapshot = gateway.hub.latest
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
    assert first_online is not None, "the simulated J1939 pack never came online"
    assert first_online - start < 3.0
    if offline_since is not None:
        longest_offline_s = max(longest_offline_s, now - offline_since)
    assert longest_offline_s <= STALE_TIMEOUT_S, f"offline for {longest_offline_s:.2f} s once online"
    assert snapshot is not None
    truck = snapshot.packs[0]
    assert truck.online
    assert truck.identity is not None, "the identity never arrived by RTS/CTS"
    assert (truck.identity.serial_number, truck.identity.cell_count) == ("0000004711", 32)
    assert truck.admission_status is AdmissionStatus.ADMITTED
    assert dict(snapshot.buses[0].frames_rejected) == {}

    log = EventLog(tmp_path / "s.sqlite", create=False)
    events = [(e.kind, e.severity.name, int(e.value), int(e.threshold)) for e in log.query()
              if e.kind in (EventKind.DTC_ACTIVE, EventKind.DTC_CLEARED, EventKind.READDRESSED)]
    log.close()
    assert events == [
        (EventKind.DTC_ACTIVE, "ALARM", 5920, 3), (EventKind.DTC_ACTIVE, "ALARM", 5921, 4),  # one DM1, by BAM
        (EventKind.DTC_CLEARED, "NONE", 5920, 3), (EventKind.DTC_CLEARED, "NONE", 5921, 4),
        (EventKind.READDRESSED, "WARNING", 34, 33),
    ]
