"""Load and validate settings once at start; every error names the file (or variable), key and fix."""

from __future__ import annotations

import os
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.errors import ConfigError, Problem
from gateway.protocol_checks import protocol_problems
from gateway.settings import GatewaySettings
from gateway.validation_problems import problems_from_validation_error


def load_settings(path: Path | None, base_values: dict[str, Any] | None = None) -> GatewaySettings:
    """Settings from base values, an optional TOML file and BMSGW_* variables, fully validated."""
    if path is not None:
        _check_toml_syntax(path)
    try:
        settings = GatewaySettings.from_sources(path, base_values)
    except ValidationError as error:
        raise ConfigError(problems_from_validation_error(error, lambda loc: _source_of(loc, path))) from error
    problems = check_references(settings, str(path) if path else "(built-in settings)")
    if problems:
        raise ConfigError(problems)
    return settings


def _check_toml_syntax(path: Path) -> None:
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([Problem(str(path), "(file)", f"cannot be read ({error.strerror})",
                                   "check the path given to --config")]) from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([Problem(str(path), "(syntax)", f"is not valid TOML ({error})",
                                   "fix the TOML syntax at the line shown")]) from error


def _source_of(location: tuple[int | str, ...], path: Path | None) -> str:
    top = str(location[0]).upper() if location else ""
    variables = [name for name in os.environ if name.startswith(f"BMSGW_{top}")]
    if top and variables:
        return f"environment {', '.join(sorted(variables))}"
    return str(path) if path else "(built-in settings)"


def check_references(settings: GatewaySettings, source: str) -> list[Problem]:
    """Cross-entry checks pydantic cannot express field by field."""
    problems: list[Problem] = []
    bus_names = [bus.name for bus in settings.buses]
    for name, count in Counter(bus_names).items():
        if count > 1:
            problems.append(Problem(source, "buses", f"bus name {name!r} is used {count} times",
                                    "give every [[buses]] entry its own name"))
    seen_nodes: dict[tuple[str, int], str] = {}
    for i, pack in enumerate(settings.packs):
        key = f"packs[{i}]"
        if pack.bus not in bus_names:
            problems.append(Problem(source, f"{key}.bus", f"names bus {pack.bus!r}, which is not configured",
                                    f"use one of {bus_names} or add a [[buses]] entry named {pack.bus!r}"))
        node = (pack.bus, pack.node_address)
        if node in seen_nodes:
            problems.append(Problem(source, f"{key}.node_address",
                                    f"node {pack.node_address} on bus {pack.bus!r} is also pack "
                                    f"{seen_nodes[node]!r}", "give each pack on a bus its own node_address"))
        seen_nodes[node] = pack.id
        for kind, name in (("can", pack.protocol), ("cells", pack.cell_model)):
            suffix = ".yaml"
            if not (settings.mappings_dir / kind / f"{name}{suffix}").is_file():
                available = sorted(p.stem for p in (settings.mappings_dir / kind).glob("*.yaml"))
                field = "protocol" if kind == "can" else "cell_model"
                problems.append(Problem(source, f"{key}.{field}", f"no mapping {kind}/{name}{suffix} in "
                                        f"{settings.mappings_dir}", f"use one of {available}"))
    cell_models = sorted(p.stem for p in (settings.mappings_dir / "cells").glob("*.yaml"))
    for direction in ("charge_derating", "discharge_derating"):
        for cell_id in getattr(settings.limits, direction):
            if cell_id not in cell_models:
                problems.append(Problem(source, f"limits.{direction}.{cell_id}",
                                        f"names cell model {cell_id!r}, which has no mapping cells/{cell_id}.yaml",
                                        f"use one of {cell_models}"))
    for name, count in Counter(p.id for p in settings.packs).items():
        if count > 1:
            problems.append(Problem(source, "packs", f"pack id {name!r} is used {count} times",
                                    "give every pack its own id"))
    unit_ids = [settings.unit_id_of(p) for p in settings.packs] + [settings.modbus.site_unit_id]
    for unit, count in Counter(unit_ids).items():
        if count > 1:
            problems.append(Problem(source, "packs[].modbus_unit_id / modbus.site_unit_id",
                                    f"Modbus unit id {unit} is assigned {count} times",
                                    "set distinct modbus_unit_id values (the site has modbus.site_unit_id)"))
    for i, simulated in enumerate(settings.simulation.packs):
        if simulated.bus not in bus_names:
            problems.append(Problem(source, f"simulation.packs[{i}].bus",
                                    f"names bus {simulated.bus!r}, which is not configured",
                                    f"use one of {bus_names}"))
    problems += protocol_problems(settings, source)
    inverter = settings.inverter_can
    if inverter.enabled and inverter.bus not in bus_names:
        problems.append(Problem(source, "inverter_can.bus", f"names bus {inverter.bus!r}, which is not configured",
                                f"use one of {bus_names} or add a [[buses]] entry named {inverter.bus!r}"))
    ports = [(s.host, s.port, name) for name, s, on in (
        ("modbus", settings.modbus, settings.modbus.enabled), ("opcua", settings.opcua, settings.opcua.enabled),
        ("prometheus", settings.prometheus, settings.prometheus.enabled)) if on]
    for j, (host, port, name) in enumerate(ports):
        for other_host, other_port, other in ports[j + 1:]:
            if port == other_port and (host == other_host or "0.0.0.0" in (host, other_host)):
                problems.append(Problem(source, f"{other}.port", f"port {port} is also used by {name}",
                                        "give each output its own port"))
    return problems
