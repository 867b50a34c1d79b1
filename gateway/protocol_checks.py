"""Settings checks that need the packs' protocols: a pack's own poll periods (docs/polling.md), a pack whose
identifiers carry no address, and one that reports only its extremes (the common battery CAN protocol's packs,
docs/battery-can.md)."""

from __future__ import annotations

from pathlib import Path

from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.codec.protocol_reporting import pack_reporting
from gateway.errors import MappingError, Problem
from gateway.settings import GatewaySettings, PackSettings, SimulatedPack

MIN_SENSORS_FROM_EXTREMES = 2  # the coldest and the hottest


def protocol_problems(settings: GatewaySettings, source: str) -> list[Problem]:
    """A protocol that does not load is left to the loader, which reports it with its own file and key."""
    protocols: dict[str, PackProtocol | None] = {}
    problems: list[Problem] = []
    entries: list[tuple[str, PackSettings | SimulatedPack]] = [
        *((f"packs[{i}]", pack) for i, pack in enumerate(settings.packs)),
        *((f"simulation.packs[{i}]", pack) for i, pack in enumerate(settings.simulation.packs))]
    first_on_bus: dict[tuple[str, str, str], str] = {}  # (pack or simulated, bus, protocol) -> key of its pack
    for key, pack in entries:
        if pack.protocol not in protocols:
            protocols[pack.protocol] = _loaded(settings.mappings_dir, pack.protocol)
        protocol = protocols[pack.protocol]
        if protocol is not None and isinstance(pack, PackSettings):
            problems += _poll_period_problems(source, key, pack, protocol)
        if protocol is None or protocol.addressing != "node_bits" or protocol.node_address_bits:
            continue
        if pack.node_address != 0:
            problems.append(Problem(source, f"{key}.node_address",
                                    f"protocol {pack.protocol} carries no node address in its identifiers: its pack "
                                    f"is node 0, not {pack.node_address}", "set node_address = 0"))
        kind = key.split("[")[0]
        other = first_on_bus.setdefault((kind, pack.bus, pack.protocol), key)
        if other != key:
            problems.append(Problem(source, f"{key}.bus",
                                    f"{other} speaks {pack.protocol} on bus {pack.bus!r} too; its identifiers carry "
                                    "no address, so the two packs' frames could not be told apart",
                                    "give each such pack a [[buses]] entry of its own"))
        inverter = settings.inverter_can
        if kind == "packs" and inverter.enabled and inverter.bus == pack.bus:
            problems.append(Problem(source, f"{key}.bus",
                                    f"bus {pack.bus!r} is inverter_can.bus: the gateway sends frames without an "
                                    f"address there, which a {pack.protocol} pack's could be",
                                    "put the pack on a bus of its own"))
        if pack_reporting(protocol).cells_from_extremes and pack.temperature_sensors < MIN_SENSORS_FROM_EXTREMES:
            problems.append(Problem(source, f"{key}.temperature_sensors",
                                    f"protocol {pack.protocol} reports the lowest and the highest temperature; "
                                    f"{pack.temperature_sensors} sensor cannot hold both",
                                    f"set temperature_sensors = {MIN_SENSORS_FROM_EXTREMES} or more"))
    return problems


def _poll_period_problems(source: str, key: str, pack: PackSettings, protocol: PackProtocol) -> list[Problem]:
    fix = f"use one of {sorted(protocol.polls)}" if protocol.polls else "remove poll_periods_s: not a polled protocol"
    return [Problem(source, f"{key}.poll_periods_s.{name}", f"protocol {pack.protocol} has no poll named {name!r}", fix)
            for name in pack.poll_periods_s if name not in protocol.polls]


def _loaded(mappings_dir: Path, name: str) -> PackProtocol | None:
    try:
        return load_protocol(mappings_dir, name)
    except MappingError:
        return None
