"""The faults only a J1939 pack has: `dtc` (a trouble code in its DM1) and `readdress` (it claims another address).

Both follow the schedule's start_s/duration_s in simulated time. Integrity faults (bad_crc, bad_counter) do not
apply to J1939 packs: their frames carry no CRC or counter.
"""

from __future__ import annotations

from gateway.codec.j1939.dm1 import Dtc, Lamp, Lamps, LampStatus
from gateway.codec.j1939.identifier import NULL_ADDRESS
from gateway.codec.protocol import PackProtocol
from gateway.errors import Problem
from gateway.settings import SimulatedPack
from gateway.sim.faults import FaultSchedule

J1939_ONLY_FAULTS = frozenset({"dtc", "readdress"})
INTEGRITY_FAULTS = frozenset({"bad_crc", "bad_counter"})
_ON = Lamp(LampStatus.ON)


def active_dm1(schedule: FaultSchedule, time_s: float) -> tuple[Lamps, tuple[Dtc, ...]]:
    """The lamps and trouble codes of the `dtc` faults active at `time_s` (one code per SPN and FMI)."""
    active = schedule.active("dtc", time_s)
    codes: dict[tuple[int, int], Dtc] = {}
    for fault in active:
        if fault.spn is not None and fault.fmi is not None:
            codes.setdefault((fault.spn, fault.fmi), Dtc(spn=fault.spn, fmi=fault.fmi))
    lamps = {fault.lamp or "amber_warning" for fault in active}
    return Lamps(red_stop=_ON if "red_stop" in lamps else Lamp(),
                 amber_warning=_ON if "amber_warning" in lamps else Lamp()), tuple(codes.values())


def address_at(schedule: FaultSchedule, configured: int, time_s: float) -> int:
    """The address the pack wants at `time_s`: that of the latest-starting active `readdress` fault, else its own."""
    moves = [(fault.start_s, fault.address) for fault in schedule.active("readdress", time_s)
             if fault.address is not None]
    return max(moves)[1] if moves else configured


def j1939_fault_problems(pack: SimulatedPack, protocol: PackProtocol, key: str) -> list[Problem]:
    """Faults that do not fit the pack's protocol, and re-addressing to an address no pack may take."""
    j1939 = protocol.addressing == "j1939"
    problems = []
    for number, fault in enumerate(pack.faults):
        where = f"{key}.faults[{number}]"
        if fault.kind in J1939_ONLY_FAULTS and not j1939:
            problems.append(Problem("simulation", f"{where}.kind",
                                    f"a {fault.kind} fault needs a J1939 protocol, {pack.protocol} is not one",
                                    "use it on a pack whose protocol has addressing: j1939"))
        elif fault.kind in INTEGRITY_FAULTS and j1939:
            problems.append(Problem("simulation", f"{where}.kind",
                                    f"J1939 frames carry no CRC or counter for a {fault.kind} fault to break",
                                    "use garbage_frames or silent on a J1939 pack"))
        elif fault.kind == "readdress" and fault.address in (pack.node_address, protocol.gateway_address):
            problems.append(Problem("simulation", f"{where}.address",
                                    f"address {fault.address} is the pack's own or the gateway's",
                                    f"use another address from 0 to {NULL_ADDRESS - 1}"))
    return problems
