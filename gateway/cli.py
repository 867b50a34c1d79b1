"""The `bms-gateway` command line: run, simulate, registers, check-config, cell fit, replay, events, ack, reset,
report, health, replay-can and the OPC UA helpers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.adapters.modbus_tls import modbus_security_summary
from gateway.adapters.pack_registry import load_pack_registry
from gateway.config_loader import load_settings
from gateway.demo import demo_settings_overrides
from gateway.errors import GatewayError
from gateway.event_command import add_event_command, run_event_command
from gateway.health_command import HEALTH_COMMAND, add_health_command, run_health_command
from gateway.log_setup import configure_logging
from gateway.offline_commands import add_offline_commands, run_offline_command
from gateway.opcua_nodeset_command import OPCUA_NODESET_COMMAND, add_opcua_nodeset_command, run_opcua_nodeset_command
from gateway.opcua_user_command import OPCUA_USER_COMMAND, add_opcua_user_command, run_opcua_user_command
from gateway.operator_cli import COMMAND_NAMES, add_operator_commands, run_operator_command
from gateway.replay_can_command import REPLAY_CAN_COMMAND, add_replay_can_command, run_replay_can_command
from gateway.report.command import REPORT_COMMAND, add_report_command, run_report_command
from gateway.settings import GatewaySettings

log = logging.getLogger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bms-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"bms-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the gateway (the built-in demo without --config)")
    run.add_argument("--config", type=Path, help="site configuration (TOML)")
    run.add_argument("--record", type=Path, metavar="FILE",
                     help="record every bus's frames, received and sent, into FILE: .log (candump), .asc or .blf")
    simulate = commands.add_parser("simulate", help="play simulated packs on a CAN bus")
    simulate.add_argument("--config", type=Path, help="configuration whose [simulation] section to play "
                          "(default: the demo's packs)")
    simulate.add_argument("--interface", help="python-can interface, overrides the configured bus")
    simulate.add_argument("--channel", help="python-can channel, overrides the configured bus")
    simulate.add_argument("--truth-file", type=Path, help="append the simulator's ground truth as JSON lines")
    registers = commands.add_parser("registers", help="print the Modbus register map")
    registers.add_argument("--format", choices=("md", "csv"), default="md")
    registers.add_argument("--config", type=Path)
    check = commands.add_parser("check-config", help="validate a configuration and print a summary")
    check.add_argument("file", type=Path)
    add_offline_commands(commands)
    add_event_command(commands)
    add_operator_commands(commands)
    add_opcua_user_command(commands)
    add_opcua_nodeset_command(commands)
    add_report_command(commands)
    add_health_command(commands)
    add_replay_can_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.command == "check-config":
            return _check_config(arguments.file)
        if arguments.command in ("cell", "replay"):
            return run_offline_command(arguments)
        if arguments.command == "events":
            return run_event_command(arguments)
        if arguments.command in COMMAND_NAMES:
            return run_operator_command(arguments)
        if arguments.command == OPCUA_USER_COMMAND:
            return run_opcua_user_command(arguments)
        if arguments.command == OPCUA_NODESET_COMMAND:
            return run_opcua_nodeset_command(arguments)
        if arguments.command == REPORT_COMMAND:
            return run_report_command(arguments)
        if arguments.command == HEALTH_COMMAND:
            return run_health_command(arguments)
        if arguments.command == REPLAY_CAN_COMMAND:
            configure_logging("WARNING", "text")
            return run_replay_can_command(arguments)
        settings = _settings_for(arguments)
        configure_logging(settings.log_level, settings.log_format)
        if arguments.command == "registers":
            return _registers(settings, arguments.format)
        if arguments.command == "simulate":
            return run_async(_simulate(_simulation_overrides(settings, arguments)))
        return run_async(_run(settings, arguments.record))
    except GatewayError as error:
        print(f"bms-gateway: {error}", file=sys.stderr)
        return 2


def _settings_for(arguments: argparse.Namespace) -> GatewaySettings:
    if arguments.config is not None:
        return load_settings(arguments.config)
    return load_settings(None, demo_settings_overrides())


def _simulation_overrides(settings: GatewaySettings, arguments: argparse.Namespace) -> GatewaySettings:
    bus_update = {key: value for key, value in (("interface", arguments.interface),
                                                 ("channel", arguments.channel)) if value is not None}
    buses = tuple(bus.model_copy(update=bus_update) for bus in settings.buses)
    simulation = settings.simulation.model_copy(
        update={"enabled": True, "truth_file": arguments.truth_file or settings.simulation.truth_file})
    return settings.model_copy(update={"buses": buses, "simulation": simulation})


def _check_config(path: Path) -> int:
    settings = load_settings(path)
    admission = settings.admission
    registry = load_pack_registry(admission.registry) if admission.enabled and admission.registry else None
    print(f"{path}: valid")
    print(f"  site {settings.site_name}: {len(settings.buses)} bus(es), {len(settings.packs)} pack(s)")
    for bus in settings.buses:
        print(f"  bus {bus.name}: {bus.interface} {bus.channel} bitrate={bus.bitrate}")
    for pack in settings.packs:
        print(f"  pack {pack.id}: bus {pack.bus} node {pack.node_address} {pack.protocol} "
              f"{pack.cell_model} {pack.series_cells}S {pack.temperature_sensors} sensors, "
              f"Modbus unit {settings.unit_id_of(pack)}")
    for name, section in (("modbus", settings.modbus), ("opcua", settings.opcua),
                          ("prometheus", settings.prometheus)):
        state = f"{section.host}:{section.port}" if section.enabled else "disabled"
        print(f"  {name}: {state}")
    if settings.modbus.enabled and settings.modbus.security.enabled:
        print(f"  {modbus_security_summary(settings.modbus)}")
    if settings.opcua.enabled:
        from gateway.adapters.opcua_security import opcua_security_summary  # loads asyncua: only here

        print(f"  {opcua_security_summary(settings.opcua)}")
    print(f"  tick {settings.engine.tick_hz} Hz, stale timeout {settings.engine.stale_timeout_s} s, "
          f"store {settings.store.path}")
    if not admission.enabled:
        print("  admission: off (every pack admitted)")
    elif registry is None:
        print("  admission: on, no registry (a pack that fits its slot is known)")
    else:
        print(f"  admission: on, registry {admission.registry}: {len(registry.known)} known, "
              f"{len(registry.blocked)} blocked, unknown packs: {registry.unknown.value}")
    if settings.simulation.enabled:
        print(f"  simulation: {len(settings.simulation.packs)} simulated pack(s)")
    return 0


def _registers(settings: GatewaySettings, output_format: str) -> int:
    from gateway.codec.register_docs import render_csv, render_markdown
    from gateway.codec.register_map import load_register_map

    register_map = load_register_map(settings.mappings_dir, settings.modbus.map)
    text = render_markdown(register_map, settings) if output_format == "md" else render_csv(register_map)
    sys.stdout.write(text)
    return 0


def run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return int(uvloop.run(coroutine))


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def _run(settings: GatewaySettings, record_path: Path | None = None) -> int:
    from gateway.app import build_gateway, run_gateway

    stop = _stop_on_signals()
    gateway = build_gateway(settings, record_path=record_path)
    await run_gateway(gateway, stop)
    return 0


async def _simulate(settings: GatewaySettings) -> int:
    from gateway.app import simulation_only

    stop = _stop_on_signals()
    await simulation_only(settings, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
