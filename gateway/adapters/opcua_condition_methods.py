"""Acknowledge, Confirm and Reset of the gateway's alarm conditions (the standard methods of
AcknowledgeableConditionType and AlarmConditionType, called with the ConditionId as object).

Acknowledge of a present condition asks the engine to acknowledge that rule of that pack; of a condition that has
already cleared, it only logs the acknowledgement (the engine has nothing left to acknowledge). Confirm needs an
acknowledged condition and is logged. Reset asks the engine to reset the pack's latched trips (the engine resets
per pack, and refuses while a condition is still present). Each needs the operator role; the resulting event comes
back through the event feed and moves the condition, so the client sees it as an event like any other.
"""

from __future__ import annotations

import time
from typing import Any

from asyncua import ua

from gateway.adapters.opcua_calls import arguments_error, operator_name, refused_caller, run_command
from gateway.adapters.opcua_condition_state import ConditionState
from gateway.adapters.opcua_conditions import ConditionSet
from gateway.adapters.opcua_link import EngineLink
from gateway.adapters.opcua_roles import current_caller
from gateway.adapters.opcua_types import ObjectIds, Server, StatusCodes, ns0, status
from gateway.adapters.opcua_users import Role
from gateway.domain.events import BmsEvent, EventKind
from gateway.domain.operator_actions import OperatorAction
from gateway.runtime.operator_commands import OperatorCommand

_EVENT_ARGUMENTS = (ua.VariantType.ByteString, ua.VariantType.LocalizedText)


class ConditionMethods:
    def __init__(self, conditions: ConditionSet, link: EngineLink) -> None:
        self._conditions = conditions
        self._link = link

    def bind(self, server: Server) -> None:
        session = server.iserver.isession
        session.add_method_callback(ns0(ObjectIds.AcknowledgeableConditionType_Acknowledge), self.acknowledge)
        session.add_method_callback(ns0(ObjectIds.AcknowledgeableConditionType_Confirm), self.confirm)
        session.add_method_callback(ns0(ObjectIds.AlarmConditionType_Reset), self.reset)

    async def acknowledge(self, condition_id: ua.NodeId, *arguments: ua.Variant) -> Any:
        found = self._checked(condition_id, arguments, "acknowledge")
        if not isinstance(found, ConditionState):
            return found
        if found.acked:
            return status(StatusCodes.BadConditionBranchAlreadyAcked)
        caller = operator_name(current_caller())
        found.comment = _comment(arguments)
        spec = found.spec
        if found.present:
            return _no_outputs(await run_command(self._link, OperatorCommand(found.pack_id, OperatorAction.ACKNOWLEDGE,
                                                                             caller, rule=spec.rule)))
        self._link.record(BmsEvent(time.time(), found.pack_id, EventKind.ACKNOWLEDGED, spec.code.label, spec.severity,
                                   found.cell, found.value, found.threshold, caller,
                                   "acknowledged after it cleared (OPC UA)", spec.rule))
        return []

    async def confirm(self, condition_id: ua.NodeId, *arguments: ua.Variant) -> Any:
        found = self._checked(condition_id, arguments, "confirm")
        if not isinstance(found, ConditionState):
            return found
        if found.confirmed:
            return status(StatusCodes.BadConditionBranchAlreadyConfirmed)
        if not found.acked:
            return status(StatusCodes.BadInvalidState)  # acknowledge the condition before confirming it
        spec = found.spec
        found.comment = _comment(arguments)
        self._link.record(BmsEvent(time.time(), found.pack_id, EventKind.CONFIRMED, spec.code.label, spec.severity,
                                   found.cell, found.value, found.threshold, operator_name(current_caller()),
                                   f"confirmed (OPC UA){': ' + found.comment if found.comment else ''}", spec.rule))
        return []

    async def reset(self, condition_id: ua.NodeId, *arguments: ua.Variant) -> Any:
        state = self._allowed(condition_id, "reset")
        if not isinstance(state, ConditionState):
            return state
        return _no_outputs(await run_command(self._link, OperatorCommand(state.pack_id, OperatorAction.RESET,
                                                                         operator_name(current_caller()))))

    def _allowed(self, condition_id: ua.NodeId, action: str) -> ConditionState | ua.StatusCode:
        """The condition, when it exists and the caller may act on it (operator)."""
        state = self._conditions.state_of(condition_id)
        if state is None:
            return status(StatusCodes.BadNodeIdUnknown)
        refused = refused_caller(self._link, Role.OPERATOR, state.pack_id, action)
        return refused if refused is not None else state

    def _checked(self, condition_id: ua.NodeId, arguments: tuple[ua.Variant, ...],
                 action: str) -> ConditionState | ua.StatusCode:
        """The condition for Acknowledge / Confirm: allowed, with (EventId, Comment) naming one of its events."""
        state = self._allowed(condition_id, action)
        if not isinstance(state, ConditionState):
            return state
        wrong = arguments_error(arguments, _EVENT_ARGUMENTS)
        if wrong is not None:
            return wrong
        if bytes(arguments[0].Value or b"") not in state.event_ids:
            return status(StatusCodes.BadEventIdUnknown)
        return state


def _comment(arguments: tuple[ua.Variant, ...]) -> str:
    text = arguments[1].Value
    return str(text.Text or "") if isinstance(text, ua.LocalizedText) else ""


def _no_outputs(result: ua.CallMethodResult) -> ua.CallMethodResult:
    """The standard condition methods declare no output arguments (Part 9): the status alone answers."""
    result.OutputArguments = []
    return result
