"""The gateway's information model: object types with their InstanceDeclarations, and enumerations.

    types/GatewayType    BmsGateway (ns=<ns>;s=gateway): SoftwareVersion, SiteName, NodeMap, StartTime
    types/SiteType       the site: its variables; Packs (FolderType) holding <Pack> (PackType) placeholders
    types/PackType       a pack: its variables; one folder per array with its element placeholder
                         (<Cell> of CellType, <Temperature>, <Band>) and, for a histogram, BandEdges;
                         Identity with its properties
    types/CellType       an element of an object array (one type per array of the node map: Cell -> CellType)
    types/<enumeration>  PackState, ContactorState, ... : Enumeration DataTypes with their values

Every declaration is Mandatory, except the placeholders (OptionalPlaceholder): array elements appear
when a snapshot shows them. `Members` lays out a type's declarations and an instance's members with
the same code (declarations carry a modelling rule, instance members do not), so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from asyncua import ua

from gateway.adapters.opcua_nodes import MANDATORY, OPTIONAL_PLACEHOLDER, NodeBatch
from gateway.adapters.opcua_types import ObjectIds, node_id
from gateway.codec.node_model import (
    GATEWAY_PROPERTIES,
    GATEWAY_TYPE,
    PACK_TYPE,
    SITE_TYPE,
    ArrayGroup,
    Bands,
    EnumDescription,
    NodeMap,
    NodeVariable,
    type_path,
)


def enumerations(node_map: NodeMap) -> dict[str, EnumDescription]:
    """The enumerations the node map's variables use, by name, sorted."""
    found = {variable.enum.name: variable.enum for variable in _variables(node_map) if variable.enum is not None}
    return dict(sorted(found.items()))


@dataclass(frozen=True, slots=True)
class ModelTypes:
    """The NodeIds of the information model's types (they follow from the node map and the namespace)."""

    gateway: ua.NodeId
    site: ua.NodeId
    pack: ua.NodeId
    elements: Mapping[str, ua.NodeId]  # array id -> the ObjectType of its elements (object arrays only)
    enumerations: Mapping[str, ua.NodeId]  # enumeration name -> its DataType

    @classmethod
    def of(cls, node_map: NodeMap, namespace: int) -> ModelTypes:
        def type_id(name: str) -> ua.NodeId:
            return node_id(type_path(name), namespace)

        return cls(type_id(GATEWAY_TYPE), type_id(SITE_TYPE), type_id(PACK_TYPE),
                   {group.id: type_id(group.element_type_name) for group in node_map.arrays if not group.flat},
                   {name: type_id(name) for name in enumerations(node_map)})


def add_types(batch: NodeBatch, node_map: NodeMap, types: ModelTypes) -> None:
    """Add the enumerations and the object types with their InstanceDeclarations to `batch` (a type
    comes before the declarations that use it as their type definition)."""
    users: dict[str, list[str]] = {}
    for variable in _variables(node_map):
        if variable.enum is not None:
            users.setdefault(variable.enum.name, []).append(variable.browse_name)
    for name, enum in enumerations(node_map).items():
        variables = ", ".join(dict.fromkeys(users[name]))
        batch.add_enumeration(type_path(name), enum,
                              f"enumeration of {variables} (Int32 MultiStateValueDiscreteType variables with these "
                              "EnumValues: OPC UA Part 8 wants a number there)")
    declarations = Members(batch, node_map, types, rule=MANDATORY)
    for group in node_map.arrays:
        if group.flat:
            continue
        name = group.element_type_name
        description = f"{group.element_name(1)}, ... in {group.browse_name}: {group.description}"
        element_type = batch.add_object_type(type_path(name), name, description)
        declarations.element_members(element_type, group, type_path(name))
    pack = batch.add_object_type(type_path(PACK_TYPE), PACK_TYPE,
                                 "a battery pack: its readings, limits, alarms, estimates, arrays and identity")
    declarations.pack(pack, type_path(PACK_TYPE))
    site = batch.add_object_type(type_path(SITE_TYPE), SITE_TYPE,
                                 "a battery site: its aggregate values and, in Packs, one PackType object per pack")
    declarations.site(site, type_path(SITE_TYPE))
    gateway = batch.add_object_type(type_path(GATEWAY_TYPE), GATEWAY_TYPE,
                                    "the bms-gateway serving this address space: software and configuration")
    declarations.gateway(gateway, type_path(GATEWAY_TYPE), {})


ValueHook = Callable[[str, NodeVariable, ua.NodeId], None]  # (NodeId path, variable, node) of a value node


class Members:
    """The members of the gateway's objects, added to a batch under a parent at the NodeId path `prefix`.

    With a modelling `rule` they are a type's InstanceDeclarations; without, an instance's members, and
    `on_value` hears of every variable and property that takes snapshot values.
    """

    def __init__(self, batch: NodeBatch, node_map: NodeMap, types: ModelTypes, *, rule: int | None = None,
                 on_value: ValueHook | None = None) -> None:
        self._batch = batch
        self._node_map = node_map
        self._types = types
        self._rule = rule
        self._on_value = on_value

    def gateway(self, gateway: ua.NodeId, prefix: str, values: Mapping[str, ua.Variant]) -> None:
        for prop in GATEWAY_PROPERTIES:
            self._batch.add_constant_property(gateway, f"{prefix}/{prop.id}", prop.browse_name, prop.description,
                                              getattr(ObjectIds, prop.data_type), values.get(prop.id, ua.Variant()),
                                              rule=self._rule)

    def site(self, site: ua.NodeId, prefix: str) -> ua.NodeId:
        """The site's variables and its Packs folder (returned; a type gets a <Pack> placeholder in it)."""
        batch = self._batch
        for variable in self._node_map.site:
            self.variable(site, f"{prefix}/{variable.id}", variable)
        packs = batch.add_object(site, f"{prefix}/packs", "Packs", "one object per configured pack", folder=True,
                                 organized=True, rule=self._rule)
        if self._rule is not None:
            batch.add_object(packs, f"{prefix}/packs/<pack>", "<Pack>",
                             "one per configured pack, named by its pack id (packs[].id)", organized=True,
                             type_definition=self._types.pack, rule=OPTIONAL_PLACEHOLDER)
        return packs

    def pack(self, pack: ua.NodeId, prefix: str) -> None:
        """The pack's variables, array folders (a type: with their placeholders) and Identity."""
        batch, node_map = self._batch, self._node_map
        for variable in node_map.pack:
            self.variable(pack, f"{prefix}/{variable.id}", variable)
        for group in node_map.arrays:
            folder = batch.add_object(pack, f"{prefix}/{group.id}", group.browse_name, group.description,
                                      folder=True, organized=True, rule=self._rule)
            if group.bands is not None:
                edges = ua.Variant([float(edge) for edge in group.bands.edges], ua.VariantType.Double)
                batch.add_constant_property(folder, f"{prefix}/{group.band_edges_key}", "BandEdges",
                                            _band_edges_description(group, group.bands), ObjectIds.Double, edges,
                                            rule=self._rule)
            if self._rule is not None:
                self._placeholder(folder, group, prefix)
        identity = node_map.identity
        identity_id = batch.add_object(pack, f"{prefix}/{identity.id}", identity.browse_name, identity.description,
                                       rule=self._rule)
        for prop in identity.properties:
            path = f"{prefix}/{identity.property_key(prop)}"
            node = batch.add_property(identity_id, path, prop, rule=self._rule)
            if self._on_value is not None:
                self._on_value(path, prop, node)

    def element(self, folder: ua.NodeId, group: ArrayGroup, n: int, prefix: str) -> None:
        """Element n of an array of the pack at `prefix`: a variable (flat) or an object with its variables."""
        path, name, description = f"{prefix}/{group.element_key(n)}", group.element_name(n), group.element_text(n)
        if group.flat:
            self.variable(folder, path, group.variables[0], name, description, organized=True)
            return
        element = self._batch.add_object(folder, path, name, description, organized=True,
                                         type_definition=self._types.elements[group.id])
        self.element_members(element, group, path)

    def element_members(self, element: ua.NodeId, group: ArrayGroup, prefix: str) -> None:
        for variable in group.variables:
            self.variable(element, f"{prefix}/{variable.id}", variable)

    def variable(self, parent: ua.NodeId, path: str, variable: NodeVariable, browse_name: str = "",
                 description: str = "", *, organized: bool = False, rule: int | None = None) -> None:
        node = self._batch.add_variable(parent, path, variable, browse_name=browse_name or variable.browse_name,
                                        description=description or variable.description, organized=organized,
                                        rule=rule if rule is not None else self._rule)
        if self._on_value is not None:
            self._on_value(path, variable, node)

    def _placeholder(self, folder: ua.NodeId, group: ArrayGroup, prefix: str) -> None:
        path = f"{prefix}/{group.placeholder_key}"
        description = f"{group.element_name(1)}, {group.element_name(2)}, ...: {group.description}"
        if group.flat:
            self.variable(folder, path, group.variables[0], group.placeholder_name, description, organized=True,
                          rule=OPTIONAL_PLACEHOLDER)
        else:
            self._batch.add_object(folder, path, group.placeholder_name, description, organized=True,
                                   type_definition=self._types.elements[group.id], rule=OPTIONAL_PLACEHOLDER)


def _band_edges_description(group: ArrayGroup, bands: Bands) -> str:
    last = bands.count
    return (f"edges of the {bands.quantity} bands, {bands.unit_text}: "
            f"{group.element_name(1)} is under the first edge, {group.element_name(2)} from the first "
            f"(included) to under the second, ..., {group.element_name(last)} at or above the last")


def _variables(node_map: NodeMap) -> list[NodeVariable]:
    return [*node_map.site, *node_map.pack, *(v for group in node_map.arrays for v in group.variables)]
