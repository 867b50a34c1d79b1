"""AddNodes requests for the gateway's address space, collected and committed in one call per subtree.

Built directly (not through asyncua's instantiate) so each node gets its stable string NodeId, its
description and the Part 8 type with exactly the properties it needs:

    Double with a unit   AnalogItemType              + EURange, EngineeringUnits
    Int32 with an enum   MultiStateValueDiscreteType + EnumValues, ValueAsText
    anything else        BaseDataVariableType (identity entries: PropertyType)
    a histogram's edges  PropertyType, Double array, constant (written when added)
    an object type       ObjectType, HasSubtype of BaseObjectType
    an enumeration       DataType, HasSubtype of Enumeration, with its EnumDefinition and EnumValues

The same calls add an instance's nodes and a type's InstanceDeclarations: given a modelling `rule`,
a node is a declaration (it gets HasModellingRule, its standard properties Mandatory, and no
Bad_WaitingForInitialData status, as it never carries a value of its own).
"""

from __future__ import annotations

from typing import Any

from asyncua import ua

from gateway.adapters.opcua_types import ObjectIds, Server, StatusCodes, node_id, ns0, status
from gateway.codec.node_model import UNECE_NAMESPACE_URI, DataType, EnumDescription, NodeVariable
from gateway.errors import AdapterError

VARIANT_TYPES: dict[DataType, ua.VariantType] = {
    DataType.DOUBLE: ua.VariantType.Double,
    DataType.BOOLEAN: ua.VariantType.Boolean,
    DataType.INT32: ua.VariantType.Int32,
    DataType.UINT32: ua.VariantType.UInt32,
    DataType.STRING: ua.VariantType.String,
}
_DATA_TYPE_IDS: dict[DataType, int] = {
    DataType.DOUBLE: ObjectIds.Double,
    DataType.BOOLEAN: ObjectIds.Boolean,
    DataType.INT32: ObjectIds.Int32,
    DataType.UINT32: ObjectIds.UInt32,
    DataType.STRING: ObjectIds.String,
}
WAITING = ua.DataValue(StatusCode=status(StatusCodes.BadWaitingForInitialData))
MANDATORY = ObjectIds.ModellingRule_Mandatory
OPTIONAL_PLACEHOLDER = ObjectIds.ModellingRule_OptionalPlaceholder


class NodeBatch:
    """Nodes to add; `commit` adds them all and marks every value node as waiting for data."""

    def __init__(self, namespace: int, sampling_interval_s: float) -> None:
        self.namespace = namespace
        self._sampling_ms = sampling_interval_s * 1000.0
        self._items: list[ua.AddNodesItem] = []
        self._references: list[ua.AddReferencesItem] = []
        self._value_nodes: list[ua.NodeId] = []

    def node_id(self, path: str) -> ua.NodeId:
        return node_id(path, self.namespace)

    def add_object(self, parent: ua.NodeId, path: str, browse_name: str, description: str, *,
                   folder: bool = False, organized: bool = False, type_definition: ua.NodeId | None = None,
                   rule: int | None = None) -> ua.NodeId:
        """An object of `type_definition` (default BaseObjectType, or FolderType with `folder`)."""
        attributes = ua.ObjectAttributes()
        attributes.DisplayName = ua.LocalizedText(browse_name)
        attributes.Description = ua.LocalizedText(description)
        attributes.EventNotifier = 0
        if type_definition is None:
            type_definition = ns0(ObjectIds.FolderType if folder else ObjectIds.BaseObjectType)
        reference = ObjectIds.Organizes if organized else ObjectIds.HasComponent
        new_id = self._add(parent, path, ua.QualifiedName(browse_name, self.namespace), ua.NodeClass.Object,
                           attributes, type_definition, reference)
        self._add_rule(new_id, rule)
        return new_id

    def add_object_type(self, path: str, browse_name: str, description: str) -> ua.NodeId:
        """A concrete subtype of BaseObjectType; its InstanceDeclarations are added with a `rule`."""
        attributes = ua.ObjectTypeAttributes()
        attributes.DisplayName = ua.LocalizedText(browse_name)
        attributes.Description = ua.LocalizedText(description)
        attributes.IsAbstract = False
        return self._add(ns0(ObjectIds.BaseObjectType), path, ua.QualifiedName(browse_name, self.namespace),
                         ua.NodeClass.ObjectType, attributes, None, ObjectIds.HasSubtype)

    def add_enumeration(self, path: str, enum: EnumDescription, description: str) -> ua.NodeId:
        """An Enumeration DataType with its EnumDefinition (DataTypeDefinition attribute) and the
        EnumValues property (the values need not be contiguous, so not EnumStrings)."""
        attributes = ua.DataTypeAttributes()
        attributes.DisplayName = ua.LocalizedText(enum.name)
        attributes.Description = ua.LocalizedText(description)
        attributes.IsAbstract = False
        # asyncua's own DataTypeAttributes (uaprotocol_hand) has the 1.04 attribute its generated stub lacks
        attributes.DataTypeDefinition = ua.EnumDefinition(Fields=[  # type: ignore[attr-defined]
            ua.EnumField(Value=value, DisplayName=ua.LocalizedText(name), Description=ua.LocalizedText(name),
                         Name=name) for value, name in enum.members])
        new_id = self._add(ns0(ObjectIds.Enumeration), path, ua.QualifiedName(enum.name, self.namespace),
                           ua.NodeClass.DataType, attributes, None, ObjectIds.HasSubtype)
        self._add_standard_property(new_id, f"{path}/enum_values", "EnumValues", _enum_values(enum),
                                    ObjectIds.EnumValueType, array=True)
        return new_id

    def add_variable(self, parent: ua.NodeId, path: str, variable: NodeVariable, *, browse_name: str,
                     description: str, organized: bool = False, rule: int | None = None) -> ua.NodeId:
        if variable.unit is not None:
            type_id = ObjectIds.AnalogItemType
        elif variable.enum is not None:
            type_id = ObjectIds.MultiStateValueDiscreteType
        else:
            type_id = ObjectIds.BaseDataVariableType
        reference = ObjectIds.Organizes if organized else ObjectIds.HasComponent
        attributes = self._variable_attributes(browse_name, description, variable.data_type)
        new_id = self._add(parent, path, ua.QualifiedName(browse_name, self.namespace), ua.NodeClass.Variable,
                           attributes, ns0(type_id), reference)
        self._add_value_node(new_id, rule)
        member_rule = None if rule is None else MANDATORY
        if variable.unit is not None and variable.eu_range is not None:
            unit = variable.unit
            information = ua.EUInformation(NamespaceUri=UNECE_NAMESPACE_URI, UnitId=unit.unit_id,
                                           DisplayName=ua.LocalizedText(unit.symbol),
                                           Description=ua.LocalizedText(unit.name))
            low, high = variable.eu_range
            self._add_standard_property(new_id, f"{path}/eu_range", "EURange",
                                        ua.Variant(ua.Range(low, high)), ObjectIds.Range, rule=member_rule)
            self._add_standard_property(new_id, f"{path}/engineering_units", "EngineeringUnits",
                                        ua.Variant(information), ObjectIds.EUInformation, rule=member_rule)
        if variable.enum is not None:
            self._add_standard_property(new_id, f"{path}/enum_values", "EnumValues", _enum_values(variable.enum),
                                        ObjectIds.EnumValueType, array=True, rule=member_rule)
            text_id = self._add_standard_property(new_id, f"{path}/value_as_text", "ValueAsText",
                                                  ua.Variant(), ObjectIds.LocalizedText, rule=member_rule)
            self._add_value_node(text_id, rule)
        return new_id

    def add_property(self, parent: ua.NodeId, path: str, prop: NodeVariable, *, rule: int | None = None,
                     ) -> ua.NodeId:
        attributes = self._variable_attributes(prop.browse_name, prop.description, prop.data_type)
        new_id = self._add(parent, path, ua.QualifiedName(prop.browse_name, self.namespace),
                           ua.NodeClass.Variable, attributes, ns0(ObjectIds.PropertyType), ObjectIds.HasProperty)
        self._add_value_node(new_id, rule)
        return new_id

    def add_constant_property(self, parent: ua.NodeId, path: str, browse_name: str, description: str,
                              data_type: int, value: ua.Variant, *, rule: int | None = None) -> ua.NodeId:
        """A property of the gateway's namespace holding a fixed value (e.g. BandEdges, the gateway's
        software version), Good from the start: it is part of the node map or the configuration, not of a
        snapshot. An array value makes a one-dimensional property."""
        attributes = ua.VariableAttributes()
        attributes.DisplayName = ua.LocalizedText(browse_name)
        attributes.Description = ua.LocalizedText(description)
        attributes.DataType = ns0(data_type)
        attributes.Value = value
        if value.is_array:
            attributes.ValueRank = ua.ValueRank.OneDimension
            attributes.ArrayDimensions = [len(value.Value)]
        else:
            attributes.ValueRank = ua.ValueRank.Scalar
        attributes.AccessLevel = attributes.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        new_id = self._add(parent, path, ua.QualifiedName(browse_name, self.namespace), ua.NodeClass.Variable,
                           attributes, ns0(ObjectIds.PropertyType), ObjectIds.HasProperty)
        self._add_rule(new_id, rule)
        return new_id

    async def commit(self, server: Server) -> None:
        if not self._items:
            return
        items, self._items = self._items, []
        results = await server.iserver.isession.add_nodes(items)
        for item, result in zip(items, results, strict=True):
            if not result.StatusCode.is_good():
                raise AdapterError(f"OPC UA node {item.RequestedNewNodeId.to_string()} cannot be added "
                                   f"({result.StatusCode.name})")
        references, self._references = self._references, []
        if references:
            statuses = await server.iserver.isession.add_references(references)
            for reference, code in zip(references, statuses, strict=True):
                if not code.is_good():
                    raise AdapterError(f"OPC UA reference from {reference.SourceNodeId.to_string()} cannot be "
                                       f"added ({code.name})")
        value_nodes, self._value_nodes = self._value_nodes, []
        for value_id in value_nodes:
            await server.write_attribute_value(value_id, WAITING)

    def _add_value_node(self, node: ua.NodeId, rule: int | None) -> None:
        """An instance's value node waits for its first value; a declaration gets its modelling rule."""
        if rule is None:
            self._value_nodes.append(node)
        else:
            self._add_rule(node, rule)

    def _add_rule(self, node: ua.NodeId, rule: int | None) -> None:
        if rule is None:
            return
        reference = ua.AddReferencesItem()
        reference.SourceNodeId = node
        reference.ReferenceTypeId = ns0(ObjectIds.HasModellingRule)
        reference.IsForward = True
        reference.TargetNodeId = ns0(rule)
        reference.TargetNodeClass = ua.NodeClass.Object
        self._references.append(reference)

    def _add_standard_property(self, parent: ua.NodeId, path: str, name: str, value: ua.Variant,
                               data_type: int, *, array: bool = False, rule: int | None = None) -> ua.NodeId:
        attributes = ua.VariableAttributes()
        attributes.DisplayName = ua.LocalizedText(name)
        attributes.Description = ua.LocalizedText(name)
        attributes.DataType = ns0(data_type)
        attributes.Value = value
        attributes.ValueRank = ua.ValueRank.OneDimension if array else ua.ValueRank.Scalar
        if array:
            attributes.ArrayDimensions = [0]
        attributes.AccessLevel = attributes.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        new_id = self._add(parent, path, ua.QualifiedName(name, 0), ua.NodeClass.Variable, attributes,
                           ns0(ObjectIds.PropertyType), ObjectIds.HasProperty)
        self._add_rule(new_id, rule)
        return new_id

    def _variable_attributes(self, browse_name: str, description: str, data_type: DataType,
                             ) -> ua.VariableAttributes:
        attributes = ua.VariableAttributes()
        attributes.DisplayName = ua.LocalizedText(browse_name)
        attributes.Description = ua.LocalizedText(description)
        attributes.DataType = ns0(_DATA_TYPE_IDS[data_type])
        attributes.Value = ua.Variant()  # null until the first snapshot (status: waiting for data)
        attributes.ValueRank = ua.ValueRank.Scalar
        attributes.AccessLevel = attributes.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        attributes.MinimumSamplingInterval = self._sampling_ms
        return attributes

    def _add(self, parent: ua.NodeId, path: str, browse_name: ua.QualifiedName, node_class: ua.NodeClass,
             attributes: Any, type_definition: ua.NodeId | None, reference: int) -> ua.NodeId:
        new_id = self.node_id(path)
        item = ua.AddNodesItem()
        item.RequestedNewNodeId = new_id
        item.BrowseName = browse_name
        item.NodeClass = node_class
        item.ParentNodeId = parent
        item.ReferenceTypeId = ns0(reference)
        item.TypeDefinition = ua.NodeId() if type_definition is None else type_definition
        item.NodeAttributes = attributes
        self._items.append(item)
        return new_id


def _enum_values(enum: EnumDescription) -> ua.Variant:
    values = [ua.EnumValueType(Value=value, DisplayName=ua.LocalizedText(name), Description=ua.LocalizedText(name))
              for value, name in enum.members]
    return ua.Variant(values, ua.VariantType.ExtensionObject)
