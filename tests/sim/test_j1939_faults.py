"""The J1939 faults' settings: `dtc` needs spn and fmi, `readdress` an address, other kinds take neither; J1939-only
faults on a non-J1939 pack, and CRC/counter faults on a J1939 pack, are refused with the key to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import can
import pytest
from pydantic import ValidationError

from gateway.codec.j1939.dm1 import LampStatus
from gateway.config_loader import load_settings
from gateway.errors import ConfigError
from gateway.settings import SimulatedFault
from gateway.sim.faults import FaultSchedule
from gateway.sim.j1939_faults import active_dm1, address_at
from gateway.sim.pack_simulator import PackSimulator
from tests.sim.helpers import make_pack, make_settings


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "dtc", "spn": 5920}, "a dtc fault needs fmi"),
    ({"kind": "dtc"}, "a dtc fault needs fmi and spn"),
    ({"kind": "dtc", "spn": 5920, "fmi": 32}, "less than or equal to 31"),
    ({"kind": "dtc", "spn": 1 << 19, "fmi": 3}, "less than or equal to 524287"),
    ({"kind": "dtc", "spn": 5920, "fmi": 3, "address": 34}, "a dtc fault has no address"),
    ({"kind": "readdress"}, "a readdress fault needs address"),
    ({"kind": "readdress", "address": 254}, "less than or equal to 253"),
    ({"kind": "readdress", "address": 34, "lamp": "red_stop"}, "a readdress fault has no lamp"),
    ({"kind": "silent", "spn": 5920}, "a silent fault has no spn"),
    ({"kind": "hot_cell", "address": 7}, "a hot_cell fault has no address"),
])
def test_a_fault_takes_the_fields_of_its_kind_only(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SimulatedFault(**fields)


def test_a_fault_error_in_a_site_file_names_the_fault(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[[buses]]\nname = "b"\ninterface = "virtual"\n[simulation]\nenabled = true\n'
                    '[[simulation.packs]]\nnode_address = 3\nbus = "b"\nfaults = [{kind = "dtc", spn = 4}]\n')
    with pytest.raises(ConfigError, match=r"simulation\.packs\[0\]\.faults\[0\]: .*a dtc fault needs fmi"):
        load_settings(site)


@pytest.mark.parametrize(("protocol", "fault", "key", "message"), [
    ("bmsgw-ref-v1", SimulatedFault(kind="dtc", spn=5920, fmi=3), "faults[0].kind", "needs a J1939 protocol"),
    ("bmsgw-ref-v1", SimulatedFault(kind="readdress", address=34), "faults[0].kind", "needs a J1939 protocol"),
    ("j1939-hvess-v1", SimulatedFault(kind="bad_crc"), "faults[0].kind", "no CRC or counter"),
    ("j1939-hvess-v1", SimulatedFault(kind="bad_counter"), "faults[0].kind", "no CRC or counter"),
    ("j1939-hvess-v1", SimulatedFault(kind="readdress", address=33), "faults[0].address", "the pack's own"),
    ("j1939-hvess-v1", SimulatedFault(kind="readdress", address=249), "faults[0].address", "or the gateway's"),
])
def test_a_fault_that_does_not_fit_the_protocol_is_refused(protocol: str, fault: SimulatedFault, key: str,
                                                           message: str, mappings_dir: Path) -> None:
    settings = make_settings(make_pack(33, fault, protocol=protocol))
    bus = can.Bus(interface="virtual", channel="j1939-faults-unused")
    try:
        with pytest.raises(ConfigError) as raised:
            PackSimulator.from_settings(settings, 0, bus, mappings_dir)
    finally:
        bus.shutdown()
    [problem] = raised.value.problems
    assert problem.key == f"simulation.packs[0].{key}"
    assert message in problem.message


def test_dtc_and_readdress_follow_their_schedule() -> None:
    schedule = FaultSchedule([
        SimulatedFault(kind="dtc", spn=5920, fmi=3, start_s=1.0, duration_s=2.0),
        SimulatedFault(kind="dtc", spn=5920, fmi=3, start_s=2.0, lamp="red_stop"),  # the same code again
        SimulatedFault(kind="readdress", address=34, start_s=1.0),
        SimulatedFault(kind="readdress", address=40, start_s=2.0, duration_s=1.0),
    ])
    lamps, dtcs = active_dm1(schedule, 0.5)
    assert dtcs == ()
    lamps, dtcs = active_dm1(schedule, 2.5)
    assert [(d.spn, d.fmi) for d in dtcs] == [(5920, 3)]
    assert lamps.red_stop.status is LampStatus.ON
    assert lamps.amber_warning.status is LampStatus.ON
    assert [address_at(schedule, 33, t) for t in (0.5, 1.5, 2.5, 3.5)] == [33, 34, 40, 34]
