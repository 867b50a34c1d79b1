"""The gateway's address space laid out from a node map (tree, types and NodeIds: docs/opcua.md).

    Objects
    ├── <site name>                     ns=<ns>;s=site                      SiteType
    │   ├── <site variables>            ns=<ns>;s=site/<id>
    │   └── Packs                       ns=<ns>;s=site/packs
    │       └── <pack id>               ns=<ns>;s=site/packs/<pack id>      PackType
    │           ├── <pack variables>
    │           ├── Cells / Temperatures / TimeAtTemperature / TimeAtSoC (array folders; elements
    │           │   added when a snapshot shows them; a histogram's folder has a BandEdges property)
    │           └── Identity (properties)
    └── BmsGateway                      ns=<ns>;s=gateway                   GatewayType
Types
    types/GatewayType, SiteType, PackType, CellType, and the enumerations (opcua_object_types)

The static part is built before the server listens; array elements (one per cell or sensor) are
added the first time a snapshot of the pack has them, so their count follows the configuration
(`add_elements` adds them from known counts instead, for the NodeSet export).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import ua

from gateway import __version__
from gateway.adapters.opcua_nodes import NodeBatch
from gateway.adapters.opcua_object_types import Members, ModelTypes, add_types
from gateway.adapters.opcua_types import ObjectIds, Server, ns0
from gateway.codec.node_model import GATEWAY_BROWSE_NAME, NodeMap, NodeVariable, gateway_path, pack_path, site_path
from gateway.codec.node_values import element_count
from gateway.domain.snapshot import PackSnapshot

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Slot:
    """A node the writer keeps up to date."""

    node_id: ua.NodeId
    variable: NodeVariable
    text_node_id: ua.NodeId | None  # the ValueAsText property of an enumerated variable


class AddressSpace:
    def __init__(self, node_map: NodeMap, namespace: int, site_name: str, pack_ids: Sequence[str],
                 sampling_interval_s: float) -> None:
        self.node_map = node_map
        self.namespace = namespace
        self.site_name = site_name
        self.pack_ids = tuple(pack_ids)
        self.types = ModelTypes.of(node_map, namespace)
        self.slots: dict[str, Slot] = {}  # by NodeId path
        self._batch = NodeBatch(namespace, sampling_interval_s)
        self._members = Members(self._batch, node_map, self.types, on_value=self._record)
        self._elements: dict[tuple[str, str], int] = {}  # (pack id, array id) → elements built

    async def build(self, server: Server) -> None:
        batch, members, types = self._batch, self._members, self.types
        add_types(batch, self.node_map, types)
        objects = ns0(ObjectIds.ObjectsFolder)
        site = batch.add_object(objects, site_path(), self.site_name, f"battery site {self.site_name}",
                                organized=True, type_definition=types.site)
        packs = members.site(site, site_path())
        for pack_id in self.pack_ids:
            pack = batch.add_object(packs, pack_path(pack_id), pack_id, f"battery pack {pack_id}",
                                    organized=True, type_definition=types.pack)
            members.pack(pack, pack_path(pack_id))
            for group in self.node_map.arrays:
                self._elements[pack_id, group.id] = 0
        gateway = batch.add_object(objects, gateway_path(), GATEWAY_BROWSE_NAME,
                                   f"the bms-gateway serving site {self.site_name}", organized=True,
                                   type_definition=types.gateway)
        members.gateway(gateway, gateway_path(), {
            "software_version": ua.Variant(__version__, ua.VariantType.String),
            "site_name": ua.Variant(self.site_name, ua.VariantType.String),
            "node_map": ua.Variant(self.node_map.name, ua.VariantType.String),
            "start_time": ua.Variant(datetime.now(UTC), ua.VariantType.DateTime),
        })
        await batch.commit(server)

    async def ensure_elements(self, server: Server, pack: PackSnapshot) -> None:
        """Add the array elements (cells, sensors) this pack's snapshot has and the tree lacks."""
        self._grow(pack.pack_id, {group.id: element_count(group, pack) for group in self.node_map.arrays})
        await self._batch.commit(server)

    async def add_elements(self, server: Server, pack_id: str, counts: Mapping[str, int]) -> None:
        """Add array elements up to `counts` (array id → number of elements), e.g. as configured."""
        self._grow(pack_id, counts)
        await self._batch.commit(server)

    def _grow(self, pack_id: str, counts: Mapping[str, int]) -> None:
        for group in self.node_map.arrays:
            built = self._elements.get((pack_id, group.id))
            wanted = counts.get(group.id, 0)
            if built is None or wanted <= built:
                continue
            folder = self._batch.node_id(pack_path(pack_id, group.id))
            for n in range(built + 1, wanted + 1):
                self._members.element(folder, group, n, pack_path(pack_id))
            self._elements[pack_id, group.id] = wanted
            _log.debug("OPC UA: %s has %d %s", pack_id, wanted, group.browse_name)

    def _record(self, path: str, variable: NodeVariable, node_id: ua.NodeId) -> None:
        text_id = self._batch.node_id(f"{path}/value_as_text") if variable.enum is not None else None
        self.slots[path] = Slot(node_id, variable, text_id)
