"""The gateway's own OPC UA methods: on every pack AcknowledgeAll, Reset (operator), SetSoC, Admit, Block and
Unblock (engineer); on the site AcknowledgeAll and ResetAll (operator).

Each method node is declared once on its object type (PackType, SiteType; ModellingRule Mandatory) and every
instance references that same node with HasComponent, as OPC UA allows: a client calls it with the pack as the
object, and one callback serves every pack. Each returns the engine's outcome as the output `Outcome` (Good, or
Bad_InvalidState when the engine refused); a caller below the needed role gets Bad_UserAccessDenied and the
refusal is logged. Block is the gateway's disconnect (limits zero, contactor-open request, kept across restarts)
until Unblock; Admit is the operator admission of docs/admission.md.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncua import ua

from gateway.adapters.opcua_calls import arguments_error, call_result, operator_name, refused_caller, run_command
from gateway.adapters.opcua_link import EngineLink
from gateway.adapters.opcua_roles import current_caller
from gateway.adapters.opcua_types import ObjectIds, Server, StatusCodes, node_id, ns0, status
from gateway.adapters.opcua_users import Role
from gateway.codec.node_model import pack_path, site_path
from gateway.domain.operator_actions import OperatorAction
from gateway.runtime.operator_commands import OperatorCommand

OUTCOME = ua.Argument(Name="Outcome", DataType=ns0(ObjectIds.String), ValueRank=ua.ValueRank.Scalar,
                      Description=ua.LocalizedText("what the gateway did: done, or why it refused"))
SOC = ua.Argument(Name="SoC", DataType=ns0(ObjectIds.Double), ValueRank=ua.ValueRank.Scalar,
                  Description=ua.LocalizedText("the state of charge every cell of the pack starts again at, 0..1"))


@dataclass(frozen=True, slots=True)
class PackMethod:
    browse_name: str
    action: OperatorAction
    role: Role
    description: str
    soc_argument: bool = False


PACK_METHODS = (
    PackMethod("AcknowledgeAll", OperatorAction.ACKNOWLEDGE, Role.OPERATOR, "acknowledge every present alarm"),
    PackMethod("Reset", OperatorAction.RESET, Role.OPERATOR,
               "reset the latched trips whose condition has cleared (refused for the others)"),
    PackMethod("SetSoC", OperatorAction.SET_SOC, Role.ENGINEER,
               "recalibrate: every cell starts again at the given SoC", soc_argument=True),
    PackMethod("Admit", OperatorAction.ADMIT, Role.ENGINEER,
               "admit a pack the admission gate refuses (never a blocked pack or one that does not fit the slot)"),
    PackMethod("Block", OperatorAction.DISCONNECT, Role.ENGINEER,
               "take the pack out of service: limits zero and contactor-open request until Unblock"),
    PackMethod("Unblock", OperatorAction.CONNECT, Role.ENGINEER, "lift a Block"),
)
SITE_METHODS = (
    PackMethod("AcknowledgeAll", OperatorAction.ACKNOWLEDGE, Role.OPERATOR, "acknowledge every present alarm of "
               "every pack"),
    PackMethod("ResetAll", OperatorAction.RESET, Role.OPERATOR, "reset the latched trips of every pack whose "
               "condition has cleared"),
)

Callback = Callable[..., Awaitable[Any]]


class PackMethods:
    def __init__(self, link: EngineLink, namespace: int, pack_ids: Sequence[str]) -> None:
        self._link = link
        self._namespace = namespace
        self._packs = {node_id(pack_path(pack_id), namespace): pack_id for pack_id in pack_ids}

    async def build(self, server: Server, pack_type: ua.NodeId, site_type: ua.NodeId) -> None:
        type_path = str(pack_type.Identifier)
        for method in PACK_METHODS:
            await self._declare(server, pack_type, f"{type_path}/{method.browse_name}", method,
                                self._pack_callback(method), tuple(self._packs))
        site_type_path = str(site_type.Identifier)
        for method in SITE_METHODS:
            await self._declare(server, site_type, f"{site_type_path}/{method.browse_name}", method,
                                self._site_callback(method), (node_id(site_path(), self._namespace),))

    async def _declare(self, server: Server, owner: ua.NodeId, path: str, method: PackMethod, callback: Callback,
                       instances: Sequence[ua.NodeId]) -> None:
        """The method node and its argument properties, all with string NodeIds (stable in a NodeSet export)."""
        method_id = node_id(path, self._namespace)
        attributes = ua.MethodAttributes()
        attributes.DisplayName = ua.LocalizedText(method.browse_name)
        attributes.Description = ua.LocalizedText(f"{method.description} (needs the {method.role.label} role)")
        attributes.Executable = attributes.UserExecutable = True
        items = [_node(method_id, owner, ua.QualifiedName(method.browse_name, self._namespace), ua.NodeClass.Method,
                       attributes, ObjectIds.HasComponent, ua.NodeId())]
        arguments = [("InputArguments", [SOC] if method.soc_argument else []), ("OutputArguments", [OUTCOME])]
        for name, values in arguments:
            if values:
                items.append(_node(node_id(f"{path}/{name}", self._namespace), method_id, ua.QualifiedName(name, 0),
                                   ua.NodeClass.Variable, _arguments_attributes(name, values), ObjectIds.HasProperty,
                                   ns0(ObjectIds.PropertyType)))
        for added in await server.iserver.isession.add_nodes(items):
            added.StatusCode.check()
        server.link_method(server.get_node(method_id), callback)
        references = [_reference(method_id, ns0(ObjectIds.ModellingRule_Mandatory), ObjectIds.HasModellingRule,
                                 ua.NodeClass.Object)]
        references += [_reference(instance, method_id, ObjectIds.HasComponent, ua.NodeClass.Method)
                       for instance in instances]
        for result in await server.iserver.isession.add_references(references):
            result.check()

    def _pack_callback(self, method: PackMethod) -> Callback:
        async def call(object_id: ua.NodeId, *arguments: ua.Variant) -> Any:
            pack_id = self._packs.get(object_id)
            if pack_id is None:
                return status(StatusCodes.BadMethodInvalid)
            refused = refused_caller(self._link, method.role, pack_id, method.action.value)
            if refused is not None:
                return refused
            wrong = arguments_error(arguments, [ua.VariantType.Double] if method.soc_argument else [])
            if wrong is not None:
                return wrong
            value = float(arguments[0].Value) if method.soc_argument else math.nan
            if method.soc_argument and not 0.0 <= value <= 1.0:
                return call_result(f"refused: SoC {value!r} is outside 0..1", StatusCodes.BadOutOfRange)
            return await run_command(self._link, OperatorCommand(pack_id, method.action,
                                                                 operator_name(current_caller()), value=value))

        return call

    def _site_callback(self, method: PackMethod) -> Callback:
        async def call(object_id: ua.NodeId, *arguments: ua.Variant) -> Any:
            refused = refused_caller(self._link, method.role, "site", method.action.value)
            if refused is not None:
                return refused
            wrong = arguments_error(arguments, [])
            if wrong is not None:
                return wrong
            operator = operator_name(current_caller())
            pack_ids = list(self._packs.values())  # all in one engine tick, not one tick per pack
            outcomes = await asyncio.gather(*(self._link.execute(OperatorCommand(pack_id, method.action, operator))
                                              for pack_id in pack_ids))
            return call_result("; ".join(f"{pack_id}: {outcome}" for pack_id, outcome in zip(pack_ids, outcomes,
                                                                                             strict=True)),
                               StatusCodes.Good)

        return call


def _reference(source: ua.NodeId, target: ua.NodeId, reference: int,
               target_class: ua.NodeClass) -> ua.AddReferencesItem:
    item = ua.AddReferencesItem()
    item.SourceNodeId = source
    item.TargetNodeId = target
    item.ReferenceTypeId = ns0(reference)
    item.IsForward = True
    item.TargetNodeClass = target_class
    return item


def _node(new_id: ua.NodeId, parent: ua.NodeId, browse_name: ua.QualifiedName, node_class: ua.NodeClass,
          attributes: Any, reference: int, type_definition: ua.NodeId) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = new_id
    item.ParentNodeId = parent
    item.BrowseName = browse_name
    item.NodeClass = node_class
    item.NodeAttributes = attributes
    item.ReferenceTypeId = ns0(reference)
    item.TypeDefinition = type_definition
    return item


def _arguments_attributes(name: str, arguments: list[ua.Argument]) -> ua.VariableAttributes:
    attributes = ua.VariableAttributes()
    attributes.DisplayName = ua.LocalizedText(name)
    attributes.DataType = ns0(ObjectIds.Argument)
    attributes.ValueRank = ua.ValueRank.OneDimension
    attributes.ArrayDimensions = [0]
    attributes.Value = ua.Variant(arguments, ua.VariantType.ExtensionObject)
    attributes.AccessLevel = attributes.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
    return attributes
