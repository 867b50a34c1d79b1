"""Writing snapshot values into the address space: only what changed, with an honest status.

    Quality.GOOD              Good
    Quality.NO_COMMUNICATION  Bad_NoCommunication       (NaN, or a live value of an offline pack)
    Quality.WAITING_FOR_DATA  Bad_WaitingForInitialData (nothing known yet)

A Bad value carries no number (OPC UA Part 4, 7.7.1: the value is null), so a client can never
mistake a stale reading for a current one. SourceTimestamp is the snapshot's wall time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from asyncua import Server, ua

from gateway.adapters.opcua_nodes import VARIANT_TYPES
from gateway.adapters.opcua_tree import AddressSpace, Slot
from gateway.codec.node_model import pack_path, site_path
from gateway.codec.node_values import NodeValue, Quality, pack_values, site_values
from gateway.domain.snapshot import GatewaySnapshot

_STATUS: dict[Quality, ua.StatusCode] = {
    Quality.GOOD: ua.StatusCode(ua.StatusCodes.Good),
    Quality.NO_COMMUNICATION: ua.StatusCode(ua.StatusCodes.BadNoCommunication),
    Quality.WAITING_FOR_DATA: ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData),
}


class ValueWriter:
    def __init__(self, server: Server, space: AddressSpace) -> None:
        self._server = server
        self._space = space
        self._packs = frozenset(space.pack_ids)
        self._last: dict[str, NodeValue] = {}

    async def apply(self, snapshot: GatewaySnapshot) -> int:
        """Write the values that changed since the last snapshot; returns how many were written."""
        source_time = datetime.fromtimestamp(snapshot.wall_time, UTC)
        node_map = self._space.node_map
        written = await self._write(site_path(), site_values(node_map, snapshot.site), source_time)
        for pack in snapshot.packs:
            if pack.pack_id not in self._packs:
                continue
            await self._space.ensure_elements(self._server, pack)
            written += await self._write(pack_path(pack.pack_id), pack_values(node_map, pack), source_time)
        return written

    async def _write(self, prefix: str, values: dict[str, NodeValue], source_time: datetime) -> int:
        slots, last = self._space.slots, self._last
        server_time = datetime.now(UTC)
        written = 0
        for key, value in values.items():
            path = f"{prefix}/{key}"
            if value.same_as(last.get(path)):
                continue
            slot = slots.get(path)
            if slot is None:
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


def _data_value(slot: Slot, value: NodeValue, source_time: datetime, server_time: datetime) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value.value, VARIANT_TYPES[slot.variable.data_type]),
                        StatusCode=_STATUS[value.quality], SourceTimestamp=source_time,
                        ServerTimestamp=server_time)
