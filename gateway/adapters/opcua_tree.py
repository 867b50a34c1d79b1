"""The gateway's address space laid out from a node map (tree and NodeIds: docs/opcua.md).

    Objects
    └── <site name>                     ns=<ns>;s=site
        ├── <site variables>            ns=<ns>;s=site/<id>
        └── Packs                       ns=<ns>;s=site/packs
            └── <pack id>               ns=<ns>;s=site/packs/<pack id>
                ├── <pack variables>
                ├── Cells / Temperatures / TimeAtTemperature / TimeAtSoC (array folders; elements
                │   added when a snapshot shows them; a histogram's folder has a BandEdges property)
                └── Identity (properties)

The static part is built before the server listens; array elements (one per cell or sensor) are
added the first time a snapshot of the pack has them, so their count follows the configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from asyncua import ua

from gateway.adapters.opcua_nodes import NodeBatch
from gateway.adapters.opcua_types import ObjectIds, Server, ns0
from gateway.codec.node_model import ArrayGroup, Bands, NodeMap, NodeVariable, pack_path, site_path
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
        self.slots: dict[str, Slot] = {}  # by NodeId path
        self._batch = NodeBatch(namespace, sampling_interval_s)
        self._elements: dict[tuple[str, str], int] = {}  # (pack id, array id) → elements built

    async def build(self, server: Server) -> None:
        batch, node_map = self._batch, self.node_map
        objects = ns0(ObjectIds.ObjectsFolder)
        site = batch.add_object(objects, site_path(), self.site_name, f"battery site {self.site_name}",
                                organized=True)
        for variable in node_map.site:
            self._variable(site, site_path(variable.id), variable)
        packs = batch.add_object(site, site_path("packs"), "Packs", "one object per configured pack",
                                 folder=True, organized=True)
        for pack_id in self.pack_ids:
            pack = batch.add_object(packs, pack_path(pack_id), pack_id, f"battery pack {pack_id}",
                                    organized=True)
            for variable in node_map.pack:
                self._variable(pack, pack_path(pack_id, variable.id), variable)
            for group in node_map.arrays:
                folder = batch.add_object(pack, pack_path(pack_id, group.id), group.browse_name,
                                          group.description, folder=True, organized=True)
                if group.bands is not None:
                    batch.add_constant_property(folder, pack_path(pack_id, group.band_edges_key), "BandEdges",
                                                _band_edges_description(group, group.bands),
                                                group.bands.edges)
                self._elements[pack_id, group.id] = 0
            identity = node_map.identity
            identity_id = batch.add_object(pack, pack_path(pack_id, identity.id), identity.browse_name,
                                           identity.description)
            for prop in identity.properties:
                path = pack_path(pack_id, identity.property_key(prop))
                self.slots[path] = Slot(batch.add_property(identity_id, path, prop), prop, None)
        await batch.commit(server)

    async def ensure_elements(self, server: Server, pack: PackSnapshot) -> None:
        """Add the array elements (cells, sensors) this pack's snapshot has and the tree lacks."""
        batch = self._batch
        for group in self.node_map.arrays:
            built = self._elements.get((pack.pack_id, group.id))
            wanted = element_count(group, pack)
            if built is None or wanted <= built:
                continue
            folder = batch.node_id(pack_path(pack.pack_id, group.id))
            for n in range(built + 1, wanted + 1):
                description = group.element_text(n)
                if group.flat:
                    path = pack_path(pack.pack_id, group.element_key(n))
                    self._variable(folder, path, group.variables[0], group.element_name(n), description,
                                   organized=True)
                    continue
                element = batch.add_object(folder, pack_path(pack.pack_id, group.element_key(n)),
                                           group.element_name(n), description, organized=True)
                for variable in group.variables:
                    path = pack_path(pack.pack_id, group.variable_key(n, variable))
                    self._variable(element, path, variable)
            self._elements[pack.pack_id, group.id] = wanted
            _log.debug("OPC UA: %s has %d %s", pack.pack_id, wanted, group.browse_name)
        await batch.commit(server)

    def _variable(self, parent: ua.NodeId, path: str, variable: NodeVariable, browse_name: str = "",
                  description: str = "", *, organized: bool = False) -> None:
        node_id = self._batch.add_variable(parent, path, variable,
                                           browse_name=browse_name or variable.browse_name,
                                           description=description or variable.description,
                                           organized=organized)
        text_id = self._batch.node_id(f"{path}/value_as_text") if variable.enum is not None else None
        self.slots[path] = Slot(node_id, variable, text_id)


def _band_edges_description(group: ArrayGroup, bands: Bands) -> str:
    last = bands.count
    return (f"edges of the {bands.quantity} bands, {bands.unit_text}: "
            f"{group.element_name(1)} is under the first edge, {group.element_name(2)} from the first "
            f"(included) to under the second, ..., {group.element_name(last)} at or above the last")
