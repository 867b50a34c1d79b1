"""Writing snapshot values into the address space: only what changed, with an honest status.

    Quality.GOOD              Good
    Quality.NO_COMMUNICATION  Bad_NoCommunication       (NaN, or a live value of an offline pack)
    Quality.WAITING_FOR_DATA  Bad_WaitingForInitialData (nothing known yet)

A Bad value carries no number (OPC UA Part 4, 7.7.1: the value is null), so a client can never
mistake a stale reading for a current one. SourceTimestamp is the snapshot's wall time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import ua

from gateway.adapters.opcua_history import ValueHistory
from gateway.adapters.opcua_nodes import VARIANT_TYPES
from gateway.adapters.opcua_tree import AddressSpace, Slot
from gateway.adapters.opcua_types import Server, StatusCodes, status, ua_time
from gateway.codec.node_model import pack_path, site_path
from gateway.codec.node_values import NodeValue, Quality, pack_values, site_values
from gateway.domain.snapshot import GatewaySnapshot

_STATUS: dict[Quality, ua.StatusCode] = {
    Quality.GOOD: status(StatusCodes.Good),
    Quality.NO_COMMUNICATION: status(StatusCodes.BadNoCommunication),
    Quality.WAITING_FOR_DATA: status(StatusCodes.BadWaitingForInitialData),
}


class ValueWriter:
    def __init__(self, server: Server, space: AddressSpace, history: ValueHistory | None = None) -> None:
        self._server = server
        self._space = space
        self._history = history
        self._packs = frozenset(space.pack_ids)
        self._last: dict[str, NodeValue] = {}
        self._seen: set[str] = set()  # packs that have been in a snapshot

    async def apply(self, snapshot: GatewaySnapshot) -> int:
        """Write the values that changed since the last snapshot; returns how many were written. When the history
        is due for a sample, every historized value is recorded too, changed or not."""
        source_time = ua_time(datetime.fromtimestamp(snapshot.wall_time, UTC))
        history = self._history
        sample = Sample(history, snapshot.wall_time) if history is not None and history.due(snapshot.wall_time) \
            else None
        node_map = self._space.node_map
        written = await self._write(site_path(), site_values(node_map, snapshot.site), source_time, sample)
        present = set()
        for pack in snapshot.packs:
            if pack.pack_id not in self._packs:
                continue
            present.add(pack.pack_id)
            await self._space.ensure_elements(self._server, pack)
            written += await self._write(pack_path(pack.pack_id), pack_values(node_map, pack), source_time, sample)
        for pack_id in self._seen - present:
            written += await self._write(pack_path(pack_id), self._absent(pack_id), source_time, sample)
        self._seen |= present
        return written

    def _absent(self, pack_id: str) -> dict[str, NodeValue]:
        """A configured pack missing from the snapshot: everything it had is Bad_NoCommunication."""
        prefix = pack_path(pack_id) + "/"
        gone = NodeValue(0, Quality.NO_COMMUNICATION)
        return {path.removeprefix(prefix): gone for path in self._last if path.startswith(prefix)}

    async def _write(self, prefix: str, values: dict[str, NodeValue], source_time: ua.DateTime,
                     sample: Sample | None) -> int:
        slots, last = self._space.slots, self._last
        server_time = ua_time(datetime.now(UTC))
        written = 0
        for key, value in values.items():
            path = f"{prefix}/{key}"
            slot = slots.get(path)
            if slot is None:
                continue
            if sample is not None and sample.history.historized(slot.node_id):
                sample.history.record(slot.node_id, sample.moment, float(value.value), _STATUS[value.quality].value)
            if value.same_as(last.get(path)):
                continue
            await self._server.write_attribute_value(slot.node_id, _data_value(slot, value, source_time,
                                                                               server_time))
            if slot.text_node_id is not None and slot.variable.enum is not None:
                text = ua.LocalizedText(slot.variable.enum.text_of(int(value.value)))
                text_value = ua.DataValue(ua.Variant(text, ua.VariantType.LocalizedText),
                                          StatusCode=_STATUS[value.quality], SourceTimestamp=source_time,
                                          ServerTimestamp=server_time)
                await self._server.write_attribute_value(slot.text_node_id, text_value)
            last[path] = value
            written += 1
        return written


@dataclass(frozen=True, slots=True)
class Sample:
    """A history sample being taken in this pass: the values of the historized nodes at `moment`."""

    history: ValueHistory
    moment: float


def _data_value(slot: Slot, value: NodeValue, source_time: ua.DateTime,
                server_time: ua.DateTime) -> ua.DataValue:
    good = value.quality is Quality.GOOD
    variant = ua.Variant(value.value, VARIANT_TYPES[slot.variable.data_type]) if good else ua.Variant()
    return ua.DataValue(variant, StatusCode=_STATUS[value.quality], SourceTimestamp=source_time,
                        ServerTimestamp=server_time)
