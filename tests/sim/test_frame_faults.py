"""silent, bad_crc, bad_counter and garbage_frames as the gateway's decoder sees them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway.codec.protocol import PackProtocol
from gateway.domain.measurement import ArrayField
from gateway.settings import SimulatedFault
from gateway.sim.pack_simulator import PackSimulator
from tests.sim.helpers import BusPair, Gateway, drain, make_pack, make_settings, values_of


def expected_frames(ticks: int) -> int:
    """Status + 11 cell pages every 0.1 s tick; 3 temperature pages at 0 s (the first tick), 1 s, 2 s..."""
    return ticks * 12 + 3 * (1 + ticks // 10)


def simulate(bus_pair: Callable[[], BusPair], protocol: PackProtocol, mappings_dir: Path,
             *faults: SimulatedFault, ticks: int = 10) -> tuple[PackSimulator, Gateway, list[int]]:
    sim_bus, gateway_bus = bus_pair()
    pack = PackSimulator.from_settings(make_settings(make_pack(5, *faults)), 0, sim_bus, mappings_dir)
    gateway = Gateway(gateway_bus, protocol)
    decoded_per_tick = []
    for _ in range(ticks):
        pack.tick(0.1)
        decoded_per_tick.append(len(gateway.drain()))
    return pack, gateway, decoded_per_tick


def test_no_fault_no_rejects(bus_pair: Callable[[], BusPair], protocol: PackProtocol,
                             mappings_dir: Path) -> None:
    _, gateway, _ = simulate(bus_pair, protocol, mappings_dir, ticks=30)
    assert gateway.rejected == {}
    assert gateway.received == expected_frames(30)


def test_silent_sends_nothing_while_active(
        bus_pair: Callable[[], BusPair], protocol: PackProtocol, mappings_dir: Path) -> None:
    fault = SimulatedFault(kind="silent", start_s=0.5, duration_s=1.0)
    pack, gateway, per_tick = simulate(bus_pair, protocol, mappings_dir, fault, ticks=25)
    assert all(count > 0 for count in per_tick[:4])
    assert per_tick[5:14] == [0] * 9
    assert all(count > 0 for count in per_tick[16:])
    assert pack.truth()["silent"] is False
    assert gateway.rejected == {"counter_jump": 3}  # counters ran on while silent: one jump per identifier


def test_silent_pack_truth_says_so(bus_pair: Callable[[], BusPair], protocol: PackProtocol,
                                   mappings_dir: Path) -> None:
    fault = SimulatedFault(kind="silent")
    pack, gateway, per_tick = simulate(bus_pair, protocol, mappings_dir, fault, ticks=3)
    pack.send_identity()
    assert per_tick == [0, 0, 0]
    assert drain(gateway.bus) == []
    assert pack.truth()["silent"] is True
    assert pack.truth()["active_faults"] == ["silent"]


def test_bad_crc_rejects_every_frame(bus_pair: Callable[[], BusPair], protocol: PackProtocol,
                                     mappings_dir: Path) -> None:
    _, gateway, per_tick = simulate(bus_pair, protocol, mappings_dir, SimulatedFault(kind="bad_crc"))
    assert sum(per_tick) == 0
    assert gateway.rejected == {"bad_crc": expected_frames(10)}


def test_bad_crc_fraction(bus_pair: Callable[[], BusPair], protocol: PackProtocol,
                          mappings_dir: Path) -> None:
    _, gateway, _ = simulate(bus_pair, protocol, mappings_dir,
                                    SimulatedFault(kind="bad_crc", magnitude=0.3), ticks=50)
    total = expected_frames(50)
    assert 0.2 * total < gateway.rejected["bad_crc"] < 0.4 * total
    assert set(gateway.rejected) <= {"bad_crc", "counter_jump"}


def test_bad_counter_repeats_counters(bus_pair: Callable[[], BusPair], protocol: PackProtocol,
                                      mappings_dir: Path) -> None:
    fault = SimulatedFault(kind="bad_counter", start_s=0.35, duration_s=0.5)
    _, gateway, per_tick = simulate(bus_pair, protocol, mappings_dir, fault, ticks=15)
    assert per_tick[:3] == [15, 12, 12]
    assert sum(per_tick[4:8]) == 0  # every identifier repeats the counter it froze at
    assert gateway.rejected["counter_repeated"] >= 4 * 12
    assert "bad_crc" not in gateway.rejected
    assert gateway.rejected["counter_jump"] >= 1  # counters resume where the encoder got to
    assert per_tick[-1] > 0


def test_garbage_frames_are_rejected_for_every_reason_and_never_decoded(
        bus_pair: Callable[[], BusPair], protocol: PackProtocol, mappings_dir: Path) -> None:
    fault = SimulatedFault(kind="garbage_frames", magnitude=5.0)  # about 100 frames/s
    pack, gateway, per_tick = simulate(bus_pair, protocol, mappings_dir, fault, ticks=50)
    garbage = sum(gateway.rejected.values())
    assert 400 <= garbage <= 600
    assert {"unknown_id", "bad_length", "bad_crc"} <= gateway.rejected.keys()
    assert gateway.rejected.keys() <= {"unknown_id", "bad_length", "bad_crc"}
    assert sum(per_tick) == expected_frames(50)  # the pack's own frames all still decode
    truth = pack.truth()["cell_voltage_v"]
    latest = {}
    for frame in gateway.decoded:
        latest.update(values_of(frame))
    assert abs(latest[(ArrayField.CELL_VOLTAGE_V, 0)] - truth[0]) <= 0.0005 + 1e-9
