"""The offline commands: `cell fit` (characterization tests -> cell model) and `replay` (log -> states)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.bms.cell_model import CellModel, CellModelSpec, load_cell_model
from gateway.codec.yaml_source import load_validated_mapping
from gateway.settings import DEFAULT_MAPPINGS_DIR, GatewaySettings

if TYPE_CHECKING:
    from gateway.replay.runner import ReplaySite


def add_offline_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cell = commands.add_parser("cell", help="cell models").add_subparsers(dest="cell_command", required=True)
    fit = cell.add_parser("fit", help="fit a cell model from OCV and HPPC tests (measurement-log format v1)")
    fit.add_argument("--datasheet", type=Path, required=True, help="datasheet YAML (limits, nominal values)")
    fit.add_argument("--ocv", type=Path, nargs="+", required=True, help="OCV test logs, one per temperature")
    fit.add_argument("--hppc", type=Path, nargs="+", required=True, help="HPPC test logs, one per temperature")
    fit.add_argument("--output", type=Path, required=True, help="cell model YAML to write")
    fit.add_argument("--ocv-start-soc", type=float, default=0.5, help="true SoC at the start of the OCV tests")
    fit.add_argument("--hppc-start-soc", type=float, default=1.0, help="true SoC at the start of the HPPC tests")
    replay = commands.add_parser("replay", help="run a measurement log through the BMS step; write the states")
    replay.add_argument("--cell", required=True, help="cell model id (mappings/cells/<id>.yaml) or a YAML path")
    replay.add_argument("--input", type=Path, required=True, help="measurement log (.csv or .csv.gz)")
    replay.add_argument("--output", type=Path, required=True, help="states CSV to write")
    replay.add_argument("--initial-soc", type=float, help="start every cell here instead of from the voltage")
    replay.add_argument("--capacity-ah", type=float,
                        help="measured capacity to learn from (SoH stays relative to the nominal)")
    replay.add_argument("--mappings", type=Path, default=DEFAULT_MAPPINGS_DIR)
    replay.add_argument("--config", type=Path, help="site file: its [protection] table, [limits], [balancing] and "
                        "[admission] apply (default: a fresh site's)")
    replay.add_argument("--serial", help="the logged pack's serial number: run the admission gate as for a pack "
                        "reporting it (the log carries no identity; without it every sample is admitted)")


def resolve_cell_model(cell: str, mappings_dir: Path) -> CellModel:
    if cell.endswith((".yaml", ".yml")):
        return CellModel(load_validated_mapping(Path(cell), CellModelSpec))
    return load_cell_model(mappings_dir, cell)


def run_offline_command(arguments: argparse.Namespace) -> int:
    if arguments.command == "cell":
        from gateway.cellfit.command import FitRequest, fit_cell

        _, report = fit_cell(FitRequest(arguments.datasheet, arguments.ocv, arguments.hppc, arguments.output,
                                        arguments.ocv_start_soc, arguments.hppc_start_soc))
        print("\n".join(report))
        print(f"wrote {arguments.output}")
        return 0
    from gateway.logs.measurement_log import read_measurement_log
    from gateway.replay.runner import replay, write_states

    model = resolve_cell_model(arguments.cell, arguments.mappings)
    site = replay_site(arguments.config, arguments.serial)
    started = time.perf_counter()
    log = read_measurement_log(arguments.input)
    result = replay(model, log, arguments.initial_soc, arguments.capacity_ah, site)
    write_states(result, arguments.output)
    print(f"replayed {log.rows} samples of {log.series_cells} cell(s) in {time.perf_counter() - started:.1f} s "
          f"-> {arguments.output}", file=sys.stderr)
    return 0


def replay_site(config: Path | None, serial: str | None) -> ReplaySite:
    """The safety settings of the site file (a fresh site's without one), and admission when a serial is given."""
    from gateway.adapters.pack_registry import load_pack_registry
    from gateway.bms.protection_rules import load_protection_table
    from gateway.config_loader import load_settings
    from gateway.replay.runner import ReplayAdmission, ReplaySite

    if config is None:
        settings = GatewaySettings()
        table = None
    else:
        settings = load_settings(config)
        table = load_protection_table(settings.mappings_dir, settings.protection.table)
    section = settings.admission
    admission = None
    if serial is not None:
        registry = load_pack_registry(section.registry) if section.registry is not None else None
        admission = ReplayAdmission(serial, section.resolved(), registry)
    return ReplaySite(table, settings.limits.resolved(), settings.balancing, admission)
