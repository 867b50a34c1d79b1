"""The protection rules of every pack as OPC UA alarm conditions (Part 9), built on asyncua's event machinery.

asyncua has no alarms and conditions of its own. Each condition is an object `site/packs/<pack>/alarms/<name>`
of LimitAlarmType (a threshold on a reading: HighLimit or LowLimit) or OffNormalAlarmType (a fault flag), with
no components: its state travels in its events, as Part 9 allows. Every transition (raise, clear, latch,
reset, acknowledge, confirm) is one event from the Server object with the condition's full state (ActiveState,
AckedState, ConfirmedState, LatchedState, Severity, Message, Retain, ...), the same as the event log entry it
comes from. asyncua keeps the last event of every retained condition for ConditionRefresh.

The standard methods AcknowledgeableConditionType.Acknowledge / Confirm and AlarmConditionType.Reset are called
with the ConditionId as object; they need the operator role (gateway.adapters.opcua_roles).
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.common.events import get_event_obj_from_type_node

from gateway.adapters.opcua_condition_state import ConditionState
from gateway.adapters.opcua_nodes import NodeBatch
from gateway.adapters.opcua_types import ObjectIds, Server, StatusCodes, node_id, ns0, status
from gateway.codec.node_model import pack_path
from gateway.domain.alarms import Severity
from gateway.domain.snapshot import GatewaySnapshot
from gateway.runtime.condition_catalogue import ConditionSpec
from gateway.runtime.event_feed import EventBatch

log = logging.getLogger(__name__)

# OPC UA severity 1..1000 (Part 9, 5.2: 801-1000 high, 601-800 medium high, 401-600 medium, 201-400 medium low)
UA_SEVERITY = {Severity.WARNING: 400, Severity.ALARM: 700, Severity.TRIP: 900}
ALARMS_FOLDER = "alarms"


def condition_path(pack_id: str, spec: ConditionSpec) -> str:
    return pack_path(pack_id, f"{ALARMS_FOLDER}/{spec.name}")


class ConditionSet:
    def __init__(self, server: Server, namespace: int, specs: Sequence[ConditionSpec], pack_ids: Sequence[str]) -> None:
        self._server = server
        self._namespace = namespace
        self._pack_ids = tuple(pack_ids)
        self._specs = tuple(specs)
        self._states: dict[tuple[str, int], ConditionState] = {
            (pack_id, spec.rule): ConditionState(spec, pack_id) for pack_id in pack_ids for spec in specs}
        self._by_node: dict[ua.NodeId, ConditionState] = {
            self._node_id(state): state for state in self._states.values()}
        self._templates: dict[bool, Any] = {}  # off_normal -> an event object of the type, copied for every event
        self._started = False

    def _node_id(self, state: ConditionState) -> ua.NodeId:
        return node_id(condition_path(state.pack_id, state.spec), self._namespace)

    def state_of(self, condition_id: ua.NodeId) -> ConditionState | None:
        return self._by_node.get(condition_id)

    async def build(self, sampling_interval_s: float) -> None:
        batch = NodeBatch(self._namespace, sampling_interval_s)
        for pack_id in self._pack_ids:
            folder = batch.add_object(batch.node_id(pack_path(pack_id)), pack_path(pack_id, ALARMS_FOLDER), "Alarms",
                                      f"the alarm conditions of {pack_id}: one per protection rule", folder=True,
                                      organized=True)
            for spec in self._specs:
                batch.add_object(folder, condition_path(pack_id, spec), spec.name,
                                 f"{spec.description} ({spec.severity.name.lower()}, {spec.quantity} "
                                 f"{spec.direction} the threshold)", organized=True,
                                 type_definition=ns0(_type_of(spec)))
        await batch.commit(self._server)
        await self._server.iserver.setup_condition_methods()  # ConditionRefresh(2), RefreshStart/End events
        for off_normal in (False, True):
            node = self._server.get_node(ns0(ObjectIds.OffNormalAlarmType if off_normal else ObjectIds.LimitAlarmType))
            template = await get_event_obj_from_type_node(node)
            template.add_property("NodeId", None, ua.VariantType.NodeId)  # the ConditionId
            self._templates[off_normal] = template

    async def follow(self, snapshot: GatewaySnapshot, batch: EventBatch) -> None:
        """The events since the previous pass; at the first pass (or after lost events) the snapshot's state."""
        if not self._started or batch.lost:
            if batch.lost:
                log.warning("OPC UA conditions: %d events were lost, state taken from the snapshot", batch.lost)
            self._started = True
            await self._resume(snapshot)
            return
        for event in batch.events:
            if event.rule is None:
                continue
            state = self._states.get((event.pack_id, event.rule))
            if state is not None:
                state.follow(event)
                await self._emit(state, user=event.operator)

    async def _resume(self, snapshot: GatewaySnapshot) -> None:
        now = time.time()
        for pack in snapshot.packs:
            state_of = self._states.get
            present = {alarm.rule: alarm for alarm in pack.present_rules}
            for spec in self._specs:
                state = state_of((pack.pack_id, spec.rule))
                if state is not None and state.resume(present.get(spec.rule), now):
                    await self._emit(state, user="")

    async def _emit(self, state: ConditionState, user: str) -> None:
        """One event with the condition's whole state (its comment is set by Acknowledge / Confirm)."""
        spec = state.spec
        event = copy.copy(self._templates[spec.off_normal])
        event_id = uuid.uuid4().bytes
        state.event_ids.append(event_id)
        moment = datetime.fromtimestamp(state.time or time.time(), UTC)
        fields: dict[str, Any] = {
            "EventId": event_id, "EventType": ns0(_type_of(spec)),
            "SourceNode": node_id(pack_path(state.pack_id), self._namespace), "SourceName": state.pack_id,
            "Time": moment, "ReceiveTime": datetime.now(UTC), "Message": ua.LocalizedText(state.message),
            "Severity": UA_SEVERITY.get(spec.severity, 1), "LastSeverity": UA_SEVERITY.get(spec.severity, 1),
            "ConditionClassId": ns0(ObjectIds.ProcessConditionClassType),
            "ConditionClassName": ua.LocalizedText("Process"), "ConditionName": spec.name,
            "BranchId": ua.NodeId(), "Retain": state.retain, "NodeId": self._node_id(state),
            "Quality": status(StatusCodes.Good), "ClientUserId": user,
            "Comment": ua.LocalizedText(state.comment),
            "EnabledState": ua.LocalizedText("Enabled"), "EnabledState/Id": True,
            "ActiveState": ua.LocalizedText("Active" if state.active else "Inactive"), "ActiveState/Id": state.active,
            "AckedState": ua.LocalizedText("Acknowledged" if state.acked else "Unacknowledged"),
            "AckedState/Id": state.acked,
            "ConfirmedState": ua.LocalizedText("Confirmed" if state.confirmed else "Unconfirmed"),
            "ConfirmedState/Id": state.confirmed,
            "SuppressedOrShelved": False,
        }
        if spec.latching:
            fields["LatchedState"] = ua.LocalizedText("Latched" if state.latched else "Unlatched")
            fields["LatchedState/Id"] = state.latched
        if spec.off_normal:
            fields["NormalState"] = ua.NodeId()
        else:
            fields["HighLimit" if spec.direction == "above" else "LowLimit"] = state.threshold
        for name, value in fields.items():
            setattr(event, name, value)
        event.emitting_node = ns0(ObjectIds.Server)
        await self._server.iserver.subscription_service.trigger_event(event)


def _type_of(spec: ConditionSpec) -> int:
    return ObjectIds.OffNormalAlarmType if spec.off_normal else ObjectIds.LimitAlarmType
