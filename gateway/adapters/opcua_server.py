"""The OPC UA output: an asyncua server publishing the latest snapshot through a node map.

Endpoint opc.tcp://{host}:{port}/bms-gateway/, its security policies, certificates and users set by
gateway.adapters.opcua_security. The address space: the node map's tree (opcua_tree), one alarm condition per
protection rule and pack (opcua_conditions), the methods (opcua_condition_methods, opcua_pack_methods) and
the history of the site and pack values (opcua_history). Nodes live in the namespace
`settings.namespace_uri`, registered right after asyncua's own two
(0: OPC UA, 1: this server's application URI), so its index is 2; clients should still look the
index up by URI. A background loop waits for a newer snapshot and writes only the values that changed into the
ValueTable, which serves Reads and the subscriptions' data changes (opcua_value_table, opcua_subscriptions). In
the gateway's process the loop then sleeps out the rest of `update_interval_s`, so a fast engine never costs more
than one pass per interval; in the OPC UA child (`paced=False`) the gateway already sends at most one snapshot per
interval, and the child writes each as soon as it arrives. Address space and NodeIds: docs/opcua.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import gateway
from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.opcua_condition_methods import ConditionMethods
from gateway.adapters.opcua_conditions import ConditionSet
from gateway.adapters.opcua_history import ValueHistory, historize
from gateway.adapters.opcua_link import EngineLink, NoLink
from gateway.adapters.opcua_pack_methods import PackMethods
from gateway.adapters.opcua_security import apply_security
from gateway.adapters.opcua_subscriptions import serve_from_table
from gateway.adapters.opcua_traffic import count_traffic, traffic_now
from gateway.adapters.opcua_tree import AddressSpace
from gateway.adapters.opcua_types import Server, UaError
from gateway.adapters.opcua_value_table import ValueTable
from gateway.adapters.opcua_values import ValueWriter
from gateway.codec.node_model import NodeMap
from gateway.errors import AdapterError
from gateway.runtime.condition_catalogue import ConditionSpec
from gateway.runtime.event_feed import EventFeed
from gateway.runtime.hub import SnapshotHub
from gateway.settings import OpcUaSettings

log = logging.getLogger(__name__)

ENDPOINT_PATH = "/bms-gateway/"


def endpoint_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"opc.tcp://{shown}:{port}{ENDPOINT_PATH}"


class OpcUaOutput:
    """Service: serve the site and every pack over OPC UA until cancelled."""

    name = "opcua"

    def __init__(self, settings: OpcUaSettings, hub: SnapshotHub, node_map: NodeMap, pack_ids: Sequence[str],
                 site_name: str, *, conditions: Sequence[ConditionSpec] = (), feed: EventFeed | None = None,
                 link: EngineLink | None = None, paced: bool = True) -> None:
        """`conditions`: the protection rules, one alarm condition each per pack; `feed`: the engine's events that
        move them; `link`: where methods send their commands (none: every method is refused); `paced`: at most one
        write pass per `update_interval_s` (False: one per snapshot, when the sender paces them)."""
        self.ready = asyncio.Event()
        self.endpoint = endpoint_url(settings.host, settings.port)
        self.namespace_index: int | None = None  # known once serving
        self._settings = settings
        self._hub = hub
        self._node_map = node_map
        self._pack_ids = tuple(pack_ids)
        self._site_name = site_name
        self._specs = tuple(conditions)
        self._feed = feed or EventFeed()
        self._link = link or NoLink()
        self._conditions: ConditionSet | None = None
        self._history: ValueHistory | None = None
        self._table: ValueTable | None = None
        self._asyncua_server: Server | None = None
        self._paced = paced

    @property
    def table(self) -> ValueTable | None:
        """The values the subscriptions are served from (once prepared)."""
        return self._table

    async def prepare(self) -> tuple[Server, AddressSpace]:
        """The server with the whole address space built, not yet listening (also what the NodeSet export reads)."""
        server, namespace = await self._server()
        space = AddressSpace(self._node_map, namespace, self._site_name, self._pack_ids,
                             self._settings.update_interval_s)
        await space.build(server)
        self._conditions = ConditionSet(server, namespace, self._specs, self._pack_ids)
        await self._conditions.build(self._settings.update_interval_s)
        ConditionMethods(self._conditions, self._link).bind(server)
        await PackMethods(self._link, namespace, self._pack_ids).build(server, space.types.pack, space.types.site)
        if self._settings.history_window_s > 0:
            self._history = await historize(server, space, ValueHistory(self._settings.history_window_s,
                                                                         self._settings.history_interval_s))
        self._table = ValueTable(server)
        serve_from_table(server, self._table, self._settings.update_interval_s * 1000.0)
        return server, space

    async def run(self) -> None:
        try:
            server, space = await self.prepare()
            namespace = space.namespace
            await self._listen(server)
        except UaError as error:
            raise AdapterError(f"OPC UA server cannot be set up ({error})") from error
        log.info("OPC UA serving on %s (namespace %s = ns=%d, %d pack(s), node map %s)", self.endpoint,
                 self._settings.namespace_uri, namespace, len(self._pack_ids), self._node_map.name)
        try:
            self.ready.set()
            assert self._table is not None
            await self._publish(ValueWriter(server, space, self._table, self._history))
        except UaError as error:
            raise AdapterError(f"OPC UA server failed while publishing ({error})") from error
        finally:
            self.ready.clear()
            await server.stop()

    def traffic(self) -> ClientTraffic:
        """The clients' connections, sessions and responses (opcua_traffic), for the metrics."""
        return traffic_now(self._asyncua_server)

    async def _server(self) -> tuple[Server, int]:
        count_traffic()
        server = Server()
        self._asyncua_server = server
        await server.init()
        server.set_endpoint(self.endpoint)
        name, application_uri = f"bms-gateway {self._site_name}", f"urn:bms-gateway:{self._site_name}:server"
        server.set_server_name(name)
        await apply_security(server, self._settings.security, application_uri, self._settings.host, name)
        await server.set_application_uri(application_uri)
        await server.set_build_info("urn:bms-gateway", "bms-gateway", "bms-gateway OPC UA output",
                                    gateway.__version__, "0", _build_date())
        self.namespace_index = await server.register_namespace(self._settings.namespace_uri)
        return server, self.namespace_index

    async def _listen(self, server: Server) -> None:
        host, port = self._settings.host, self._settings.port
        asyncua_log = logging.getLogger("asyncua.server.server")
        asyncua_log.addFilter(_drop_start_traceback)  # the AdapterError below says it better
        try:
            await server.start()
        except OSError as error:
            raise AdapterError(
                f"OPC UA server cannot listen on {host}:{port} ({error.strerror or error}). Choose a free "
                "port with BMSGW_OPCUA__PORT or `port` in the [opcua] section of the settings file (or "
                "`host` / BMSGW_OPCUA__HOST for another address), or stop the process that holds the port"
            ) from error
        finally:
            asyncua_log.removeFilter(_drop_start_traceback)

    async def _publish(self, writer: ValueWriter) -> None:
        loop = asyncio.get_running_loop()
        sequence = -1
        while True:
            snapshot = await self._hub.wait_newer(sequence)
            started = loop.time()
            sequence = snapshot.sequence
            await writer.apply(snapshot)
            if self._conditions is not None:
                await self._conditions.follow(snapshot, self._feed.take())
            if self._paced:
                await asyncio.sleep(max(0.0, self._settings.update_interval_s - (loop.time() - started)))


def _drop_start_traceback(record: logging.LogRecord) -> bool:
    return not record.getMessage().endswith("error starting server")


def _build_date() -> datetime:
    """When the installed gateway package was written (OPC UA BuildInfo wants a date)."""
    return datetime.fromtimestamp(Path(gateway.__file__).stat().st_mtime, UTC)
