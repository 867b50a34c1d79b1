"""`bms-gateway opcua-nodeset`: the OPC UA information model of a site as a NodeSet2 XML file.

    bms-gateway opcua-nodeset [--config FILE] [--output FILE]

The address space is built by the OPC UA output itself (`OpcUaOutput.prepare`, not listening), with
every pack's cells, temperature sensors and histogram bands as configured (`packs[].series_cells`,
`temperature_sensors`), then exported: types, enumerations, the gateway object and the site. Without
--config the built-in demo's site; without --output the XML goes to standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.codec.node_map import load_node_map
from gateway.config_loader import load_settings
from gateway.demo import demo_settings_overrides
from gateway.log_setup import configure_logging
from gateway.settings import GatewaySettings, OpcUaSecuritySettings

if TYPE_CHECKING:
    from gateway.adapters.opcua_tree import AddressSpace
    from gateway.adapters.opcua_types import Server

OPCUA_NODESET_COMMAND = "opcua-nodeset"


def add_opcua_nodeset_command(commands: Any) -> None:
    """Register the subcommand on the CLI's subparsers."""
    parser = commands.add_parser(OPCUA_NODESET_COMMAND,
                                 help="write the OPC UA information model as a NodeSet2 XML file",
                                 description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, help="site configuration (TOML); default: the built-in demo")
    parser.add_argument("--output", type=Path, help="file to write (default: standard output)")


def run_opcua_nodeset_command(arguments: argparse.Namespace) -> int:
    if arguments.config is not None:
        settings = load_settings(arguments.config)
    else:
        settings = load_settings(None, demo_settings_overrides())
    configure_logging(settings.log_level, settings.log_format)
    if arguments.output is not None and not arguments.output.parent.is_dir():
        print(f"bms-gateway: cannot write {arguments.output} (no directory {arguments.output.parent})",
              file=sys.stderr)
        return 2
    document, nodes = asyncio.run(build_nodeset(settings))
    if arguments.output is None:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
        return 0
    try:
        _write_atomically(arguments.output, document)
    except OSError as error:
        print(f"bms-gateway: cannot write {arguments.output} ({error.strerror or error})", file=sys.stderr)
        return 2
    print(f"bms-gateway: wrote {arguments.output}: {nodes} nodes of {settings.opcua.namespace_uri} "
          f"(site {settings.site_name}, {len(settings.packs)} pack(s), node map {settings.opcua.map})")
    return 0


async def build_nodeset(settings: GatewaySettings) -> tuple[bytes, int]:
    """The NodeSet2 XML of the site `settings` configures, and how many nodes it holds."""
    from gateway.adapters.opcua_nodeset import export_nodeset, namespace_node_ids  # asyncua: loaded only here

    server, space = await prepare_configured(settings)
    document = await export_nodeset(server, space.namespace)
    return document, len(namespace_node_ids(server, space.namespace))


async def prepare_configured(settings: GatewaySettings) -> tuple[Server, AddressSpace]:
    """The OPC UA output's server for `settings`, prepared (not listening), with every pack's array
    elements as configured. No signed endpoint: the model does not depend on it, and an export should
    not create the server's certificate and key."""
    from gateway.adapters.opcua_server import OpcUaOutput
    from gateway.app import site_rules
    from gateway.runtime.condition_catalogue import condition_catalogue
    from gateway.runtime.hub import SnapshotHub

    node_map = load_node_map(settings.mappings_dir, settings.opcua.map)
    security = OpcUaSecuritySettings(none_endpoint=True, signed_endpoints=False, users_file=None, anonymous=True)
    output = OpcUaOutput(settings.opcua.model_copy(update={"security": security}), SnapshotHub(), node_map,
                         [pack.id for pack in settings.packs], settings.site_name,
                         conditions=condition_catalogue(site_rules(settings)))
    server, space = await output.prepare()
    for pack in settings.packs:
        counts = {group.id: group.configured_count(pack.series_cells, pack.temperature_sensors) or 0
                  for group in node_map.arrays}
        await space.add_elements(server, pack.id, counts)
    return server, space


def _write_atomically(path: Path, document: bytes) -> None:
    """Write beside `path`, then rename: a reader never sees half a file. Mode as for any new file (umask)."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(document)
        Path(temporary).chmod(0o666 & ~umask)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
