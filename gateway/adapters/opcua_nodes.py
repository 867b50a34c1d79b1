"""AddNodes requests for the gateway's address space, collected and committed in one call per subtree.

Built directly (not through asyncua's instantiate) so each node gets its stable string NodeId, its
description and the Part 8 type with exactly the properties it needs:

    Double with a unit   AnalogItemType              + EURange, EngineeringUnits
    Int32 with an enum   MultiStateValueDiscreteType + EnumValues, ValueAsText
    anything else        BaseDataVariableType (identity entries: PropertyType)
    a histogram's edges  PropertyType, Double array, constant (written when added)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asyncua import ua

from gateway.adapters.opcua_types import ObjectIds, Server, StatusCodes, node_id, ns0, status
from gateway.codec.node_model import UNECE_NAMESPACE_URI, DataType, NodeVariable
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


class NodeBatch:
    """Nodes to add; `commit` adds them all and marks every value node as waiting for data."""

    def __init__(self, namespace: int, sampling_interval_s: float) -> None:
        self.namespace = namespace
        self._sampling_ms = sampling_interval_s * 1000.0
        self._items: list[ua.AddNodesItem] = []
        self._value_nodes: list[ua.NodeId] = []

    def node_id(self, path: str) -> ua.NodeId:
        return node_id(path, self.namespace)

    def add_object(self, parent: ua.NodeId, path: str, browse_name: str, description: str, *,
                   folder: bool = False, organized: bool = False) -> ua.NodeId:
        attributes = ua.ObjectAttributes()
        attributes.DisplayName = ua.LocalizedText(browse_name)
        attributes.Description = ua.LocalizedText(description)
        attributes.EventNotifier = 0
        type_id = ObjectIds.FolderType if folder else ObjectIds.BaseObjectType
        reference = ObjectIds.Organizes if organized else ObjectIds.HasComponent
        return self._add(parent, path, ua.QualifiedName(browse_name, self.namespace), ua.NodeClass.Object,
                         attributes, type_id, reference)

    def add_variable(self, parent: ua.NodeId, path: str, variable: NodeVariable, *, browse_name: str,
                     description: str, organized: bool = False) -> ua.NodeId:
        if variable.unit is not None:
            type_id = ObjectIds.AnalogItemType
        elif variable.enum is not None:
            type_id = ObjectIds.MultiStateValueDiscreteType
        else:
            type_id = ObjectIds.BaseDataVariableType
        reference = ObjectIds.Organizes if organized else ObjectIds.HasComponent
        attributes = self._variable_attributes(browse_name, description, variable.data_type)
        new_id = self._add(parent, path, ua.QualifiedName(browse_name, self.namespace), ua.NodeClass.Variable,
                           attributes, type_id, reference)
        self._value_nodes.append(new_id)
        if variable.unit is not None and variable.eu_range is not None:
            unit = variable.unit
            information = ua.EUInformation(NamespaceUri=UNECE_NAMESPACE_URI, UnitId=unit.unit_id,
                                           DisplayName=ua.LocalizedText(unit.symbol),
                                           Description=ua.LocalizedText(unit.name))
            low, high = variable.eu_range
            self._add_standard_property(new_id, f"{path}/eu_range", "EURange",
                                        ua.Variant(ua.Range(low, high)), ObjectIds.Range)
            self._add_standard_property(new_id, f"{path}/engineering_units", "EngineeringUnits",
                                        ua.Variant(information), ObjectIds.EUInformation)
        if variable.enum is not None:
            values = [ua.EnumValueType(Value=value, DisplayName=ua.LocalizedText(name),
                                       Description=ua.LocalizedText(name))
                      for value, name in variable.enum.members]
            self._add_standard_property(new_id, f"{path}/enum_values", "EnumValues",
                                        ua.Variant(values, ua.VariantType.ExtensionObject),
                                        ObjectIds.EnumValueType, array=True)
            text_id = self._add_standard_property(new_id, f"{path}/value_as_text", "ValueAsText",
                                                  ua.Variant(), ObjectIds.LocalizedText)
            self._value_nodes.append(text_id)
        return new_id

    def add_property(self, parent: ua.NodeId, path: str, prop: NodeVariable) -> ua.NodeId:
        attributes = self._variable_attributes(prop.browse_name, prop.description, prop.data_type)
        new_id = self._add(parent, path, ua.QualifiedName(prop.browse_name, self.namespace),
                            ua.NodeClass.Variable, attributes, ObjectIds.PropertyType,
                            ObjectIds.HasProperty)
        self._value_nodes.append(new_id)
        return new_id

    def add_constant_property(self, parent: ua.NodeId, path: str, browse_name: str, description: str,
                              values: Sequence[float]) -> ua.NodeId:
        """A property of the gateway's namespace holding a fixed Double array (e.g. BandEdges), Good from
        the start: it is part of the node map, not of a snapshot."""
        attributes = ua.VariableAttributes()
        attributes.DisplayName = ua.LocalizedText(browse_name)
        attributes.Description = ua.LocalizedText(description)
        attributes.DataType = ns0(ObjectIds.Double)
        attributes.Value = ua.Variant([float(v) for v in values], ua.VariantType.Double)
        attributes.ValueRank = ua.ValueRank.OneDimension
        attributes.ArrayDimensions = [len(values)]
        attributes.AccessLevel = attributes.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        return self._add(parent, path, ua.QualifiedName(browse_name, self.namespace), ua.NodeClass.Variable,
                         attributes, ObjectIds.PropertyType, ObjectIds.HasProperty)

    async def commit(self, server: Server) -> None:
        if not self._items:
            return
        items, self._items = self._items, []
        results = await server.iserver.isession.add_nodes(items)
        for item, result in zip(items, results, strict=True):
            if not result.StatusCode.is_good():
                raise AdapterError(f"OPC UA node {item.RequestedNewNodeId.to_string()} cannot be added "
                                   f"({result.StatusCode.name})")
        value_nodes, self._value_nodes = self._value_nodes, []
        for value_id in value_nodes:
            await server.write_attribute_value(value_id, WAITING)

    def _add_standard_property(self, parent: ua.NodeId, path: str, name: str, value: ua.Variant,
                               data_type: int, *, array: bool = False) -> ua.NodeId:
        attributes = ua.VariableAttributes()
        attributes.DisplayName = ua.LocalizedText(name)
        attributes.Description = ua.LocalizedText(name)
        attributes.DataType = ns0(data_type)
        attributes.Value = value
        attributes.ValueRank = ua.ValueRank.OneDimension if array else ua.ValueRank.Scalar
        if array:
            attributes.ArrayDimensions = [0]
        attributes.AccessLevel = attributes.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        return self._add(parent, path, ua.QualifiedName(name, 0), ua.NodeClass.Variable, attributes,
                         ObjectIds.PropertyType, ObjectIds.HasProperty)

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
             attributes: Any, type_id: int, reference: int) -> ua.NodeId:
        new_id = self.node_id(path)
        item = ua.AddNodesItem()
        item.RequestedNewNodeId = new_id
        item.BrowseName = browse_name
        item.NodeClass = node_class
        item.ParentNodeId = parent
        item.ReferenceTypeId = ns0(reference)
        item.TypeDefinition = ns0(type_id)
        item.NodeAttributes = attributes
        self._items.append(item)
        return new_id
