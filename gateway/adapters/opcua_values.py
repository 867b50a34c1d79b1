"""Writing snapshot values into the address space: only what changed, with an honest status.

    Quality.GOOD              Good
    Quality.NO_COMMUNICATION  Bad_NoCommunication       (NaN, or a live value of an offline pack)
    Quality.WAITING_FOR_DATA  Bad_WaitingForInitialData (nothing known yet)

A Bad value carries no number (OPC UA Part 4, 7.7.1: the value is null), so a client can never
mistake a stale reading for a current one. SourceTimestamp is the snapshot's wall time.

Values go into the ValueTable encoded (opcua_encoding), not through asyncua's write: the table serves Reads and
the subscriptions' notifications from the same bytes, and is told once per pass which slots changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.adapters.opcua_encoding import Stamps, encode_bad, encode_good, encode_text
from gateway.adapters.opcua_history import ValueHistory
from gateway.adapters.opcua_tree import AddressSpace, Slot
from gateway.adapters.opcua_types import Server, StatusCodes
from gateway.adapters.opcua_value_table import ValueTable
from gateway.codec.node_model import pack_path, site_path
from gateway.codec.node_values import NodeValue, Quality, pack_values, site_values
from gateway.domain.snapshot import GatewaySnapshot

_STATUS: dict[Quality, int] = {
    Quality.GOOD: StatusCodes.Good,
    Quality.NO_COMMUNICATION: StatusCodes.BadNoCommunication,
    Quality.WAITING_FOR_DATA: StatusCodes.BadWaitingForInitialData,
}


class ValueWriter:
    def __init__(self, server: Server, space: AddressSpace, table: ValueTable,
                 history: ValueHistory | None = None) -> None:
        self._server = server
        self._space = space
        self._table = table
        self._history = history
        self._packs = frozenset(space.pack_ids)
        self._last: dict[str, NodeValue] = {}
        self._seen: set[str] = set()  # packs that have been in a snapshot
        self._table_slots: dict[str, tuple[int, int | None]] = {}  # NodeId path -> table slots of value and text
        self._take_over_slots()

    async def apply(self, snapshot: GatewaySnapshot) -> int:
        """Write the values that changed since the last snapshot; returns how many were written. When the history
        is due for a sample, every historized value is recorded too, changed or not."""
        stamps = Stamps.of(datetime.fromtimestamp(snapshot.wall_time, UTC), datetime.now(UTC))
        history = self._history
        sample = Sample(history, snapshot.wall_time) if history is not None and history.due(snapshot.wall_time) \
            else None
        node_map = self._space.node_map
        written = self._write(site_path(), site_values(node_map, snapshot.site), stamps, sample)
        present = set()
        for pack in snapshot.packs:
            if pack.pack_id not in self._packs:
                continue
            present.add(pack.pack_id)
            await self._space.ensure_elements(self._server, pack)
            self._take_over_slots()
            written += self._write(pack_path(pack.pack_id), pack_values(node_map, pack), stamps, sample)
        for pack_id in self._seen - present:
            written += self._write(pack_path(pack_id), self._absent(pack_id), stamps, sample)
        self._seen |= present
        await self._table.publish()
        return written

    def _take_over_slots(self) -> None:
        """Hand the nodes the tree added since the last call to the table."""
        slots = self._space.slots
        if len(slots) == len(self._table_slots):
            return
        table, known = self._table, self._table_slots
        new = [(path, slot) for path, slot in slots.items() if path not in known]
        table.add(node for _, slot in new for node in (slot.node_id, slot.text_node_id) if node is not None)
        for path, slot in new:
            known[path] = (table.slots[slot.node_id],
                           table.slots[slot.text_node_id] if slot.text_node_id is not None else None)

    def _absent(self, pack_id: str) -> dict[str, NodeValue]:
        """A configured pack missing from the snapshot: everything it had is Bad_NoCommunication."""
        prefix = pack_path(pack_id) + "/"
        gone = NodeValue(0, Quality.NO_COMMUNICATION)
        return {path.removeprefix(prefix): gone for path in self._last if path.startswith(prefix)}

    def _write(self, prefix: str, values: dict[str, NodeValue], stamps: Stamps, sample: Sample | None) -> int:
        slots, table_slots, last, table = self._space.slots, self._table_slots, self._last, self._table
        written = 0
        for key, value in values.items():
            path = f"{prefix}/{key}"
            slot = slots.get(path)
            if slot is None:
                continue
            if sample is not None and sample.history.historized(slot.node_id):
                sample.history.record(slot.node_id, sample.moment, float(value.value), _STATUS[value.quality])
            if value.same_as(last.get(path)):
                continue
            value_cell, text_cell = table_slots[path]
            table.set(value_cell, _encoded(slot, value, stamps))
            if text_cell is not None and slot.variable.enum is not None:
                good = value.quality is Quality.GOOD
                table.set(text_cell, encode_text(slot.variable.enum.text_of(int(value.value)), stamps) if good
                          else encode_bad(_STATUS[value.quality], stamps))
            last[path] = value
            written += 1
        return written


@dataclass(frozen=True, slots=True)
class Sample:
    """A history sample being taken in this pass: the values of the historized nodes at `moment`."""

    history: ValueHistory
    moment: float


def _encoded(slot: Slot, value: NodeValue, stamps: Stamps) -> bytes:
    if value.quality is Quality.GOOD:
        return encode_good(slot.variable.data_type, value.value, stamps)
    return encode_bad(_STATUS[value.quality], stamps)
