"""Settings checks that need the protocols: packs whose protocol carries no address (the common battery CAN
protocol's packs: node 0, alone on their bus, not on the inverter's, two sensors for the coldest and the hottest),
and a pack's own poll periods (only of polls its protocol has)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config_loader import load_settings
from gateway.errors import ConfigError

SITE = """
[[buses]]
name = "pylon"
interface = "virtual"
channel = "p"

[[buses]]
name = "trucks"
interface = "virtual"
channel = "t"

[[packs]]
id = "pylon-1"
bus = "pylon"
node_address = 0
protocol = "battery-can-pack-v1"
temperature_sensors = 2

[[packs]]
id = "truck-1"
bus = "trucks"
node_address = 1
"""
POLLED = ('\n[[packs]]\nid = "slot-1"\nbus = "trucks"\nnode_address = 9\nprotocol = "bmsgw-poll-v1"\n'
          'poll_periods_s = {periods}\n')
SECOND_PYLON = '\n[[packs]]\nid = "pylon-2"\nbus = "{bus}"\nnode_address = {node}\nprotocol = "battery-can-pack-v1"\n'


def loaded(tmp_path: Path, text: str) -> str:
    """The problems of `text` as the error says them ("" when it loads)."""
    path = tmp_path / "site.toml"
    path.write_text(text)
    try:
        load_settings(path)
    except ConfigError as error:
        message = str(error)
        assert str(path) in message
        return message
    return ""


def test_one_such_pack_per_bus_at_node_0_loads(tmp_path: Path) -> None:
    assert loaded(tmp_path, SITE + SECOND_PYLON.format(bus="trucks", node=0)) == ""  # beside another protocol


@pytest.mark.parametrize(("text", "key", "fix"), [
    (SITE.replace("node_address = 0", "node_address = 3"), "packs[0].node_address", "set node_address = 0"),
    (SITE + SECOND_PYLON.format(bus="pylon", node=0), "packs[2].bus", "a [[buses]] entry of its own"),
    (SITE + '\n[inverter_can]\nenabled = true\nbus = "pylon"\n', "packs[0].bus", "put the pack on a bus of its own"),
    (SITE.replace("temperature_sensors = 2", "temperature_sensors = 1"), "packs[0].temperature_sensors",
     "set temperature_sensors = 2 or more"),
    (SITE + '\n[[simulation.packs]]\nbus = "pylon"\nnode_address = 7\nprotocol = "battery-can-pack-v1"\n',
     "simulation.packs[0].node_address", "set node_address = 0"),
    (SITE + POLLED.format(periods="{state = 0.5}"), "packs[2].poll_periods_s.state",
     "use one of ['status', 'temperatures']"),
    (SITE.replace('node_address = 1\n', 'node_address = 1\npoll_periods_s = {status = 0.5}\n'),
     "packs[1].poll_periods_s.status", "remove poll_periods_s: not a polled protocol"),
])
def test_errors_name_the_key_and_the_fix(tmp_path: Path, text: str, key: str, fix: str) -> None:
    message = loaded(tmp_path, text)
    assert key in message
    assert fix in message


def test_a_pack_s_own_period_of_a_poll_its_protocol_has_loads(tmp_path: Path) -> None:
    assert loaded(tmp_path, SITE + POLLED.format(periods="{status = 0.5}")) == ""


def test_the_reference_protocol_keeps_its_node_addresses(tmp_path: Path) -> None:
    two = SITE + '\n[[packs]]\nid = "truck-2"\nbus = "trucks"\nnode_address = 2\n'
    assert loaded(tmp_path, two) == ""
