"""History of the site's and the packs' own values (not the per-cell arrays) for OPC UA HistoryRead.

asyncua's history stores every data change as a DataValue object through an internal 10 ms subscription: at 64
packs that is hundreds of megabytes an hour. Here each historized node keeps a ring of samples in NumPy arrays
(time, value, status): one sample per `interval_s` (the writer records every historized value of the snapshot it
publishes when the interval has passed), for `window_s`. 64 packs x ~45 values, 1 h at 10 s: ~1M samples, ~20 MB.
Reading returns the raw samples between the requested times (ReadRawModifiedDetails), oldest first (newest first
when the start time is later than the end time, or missing), at most `MAX_VALUES_PER_READ` per node with a
continuation point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from asyncua import ua
from asyncua.server.history import HistoryStorageInterface
from asyncua.ua.attribute_ids import AttributeIds

from gateway.adapters.opcua_nodes import VARIANT_TYPES
from gateway.adapters.opcua_tree import AddressSpace
from gateway.adapters.opcua_types import Server, StatusCodes, status, ua_time
from gateway.codec.node_model import DataType, NodeVariable, pack_path, site_path

MAX_VALUES_PER_READ = 10_000
_HISTORY_ACCESS = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.HistoryRead.mask
_NUMERIC = frozenset({DataType.DOUBLE, DataType.INT32, DataType.UINT32, DataType.BOOLEAN})


@dataclass
class _Ring:
    variable: NodeVariable
    times: np.ndarray[Any, np.dtype[np.float64]]
    values: np.ndarray[Any, np.dtype[np.float64]]
    codes: np.ndarray[Any, np.dtype[np.uint32]]
    count: int = 0  # samples ever stored

    def store(self, moment: float, value: float, code: int) -> None:
        slot = self.count % len(self.times)
        self.times[slot], self.values[slot], self.codes[slot] = moment, value, code
        self.count += 1

    def ordered(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        size = len(self.times)
        if self.count <= size:
            return self.times[:self.count], self.values[:self.count], self.codes[:self.count]
        order = np.roll(np.arange(size), -(self.count % size))
        return self.times[order], self.values[order], self.codes[order]


def historizable(variable: NodeVariable) -> bool:
    return variable.data_type in _NUMERIC


class ValueHistory(HistoryStorageInterface):
    def __init__(self, window_s: float, interval_s: float) -> None:
        self.window_s = window_s
        self.interval_s = interval_s
        self._capacity = max(1, math.ceil(window_s / interval_s) + 1)
        self._rings: dict[ua.NodeId, _Ring] = {}
        self._sampled = -math.inf  # when the last sample was taken

    def historize(self, node: ua.NodeId, variable: NodeVariable) -> None:
        self._rings[node] = _Ring(variable, np.zeros(self._capacity), np.zeros(self._capacity),
                                  np.zeros(self._capacity, dtype=np.uint32))

    def historized(self, node: ua.NodeId) -> bool:
        return node in self._rings

    def due(self, moment: float) -> bool:
        """Whether an interval has passed since the last sample: then the writer records every value at `moment`."""
        if moment - self._sampled < self.interval_s:
            return False
        self._sampled = moment
        return True

    def record(self, node: ua.NodeId, moment: float, value: float, code: int) -> None:
        """A value of a historized node as published at `moment` (wall clock)."""
        self._rings[node].store(moment, value, code)

    async def init(self) -> None:
        pass

    async def new_historized_node(self, node_id: ua.NodeId, period: Any, count: int = 0) -> None:
        pass  # nodes are historized by `historize`, with their variable

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        pass  # values are recorded by `record`, from the writer

    async def read_node_history(self, node_id: ua.NodeId, start: datetime | None, end: datetime | None,
                                nb_values: int) -> tuple[list[ua.DataValue], datetime | None]:
        ring = self._rings.get(node_id)
        if ring is None:
            return [], None
        times, values, codes = ring.ordered()
        low, high = _seconds(start), _seconds(end)
        newest_first = low is None or (high is not None and low > high)
        if newest_first:
            low, high = high, low
        keep = np.ones(len(times), dtype=bool)
        if low is not None:
            keep &= times >= low
        if high is not None:
            keep &= times <= high
        indices = np.nonzero(keep)[0]
        if newest_first:
            indices = indices[::-1]
        limit = min(nb_values or MAX_VALUES_PER_READ, MAX_VALUES_PER_READ)
        continuation = None
        if len(indices) > limit:
            if limit == MAX_VALUES_PER_READ:
                continuation = datetime.fromtimestamp(float(times[indices[limit]]), UTC)
            indices = indices[:limit]
        return [_data_value(ring.variable, float(times[i]), float(values[i]), int(codes[i])) for i in indices], \
            continuation

    async def new_historized_event(self, source_id: ua.NodeId, evtypes: Any, period: Any, count: int = 0) -> None:
        pass

    async def save_event(self, event: Any) -> None:
        pass

    async def read_event_history(self, source_id: ua.NodeId, start: Any, end: Any, nb_values: int,
                                 evfilter: Any) -> tuple[list[Any], None]:
        return [], None

    async def stop(self) -> None:
        pass


def _seconds(moment: datetime | None) -> float | None:
    if moment is None or moment <= ua.get_win_epoch():
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _data_value(variable: NodeVariable, moment: float, value: float, code: int) -> ua.DataValue:
    when = ua_time(datetime.fromtimestamp(moment, UTC))
    if code != StatusCodes.Good:
        return ua.DataValue(ua.Variant(), StatusCode=status(code), SourceTimestamp=when, ServerTimestamp=when)
    kind = variable.data_type
    number: float | int | bool = bool(value) if kind is DataType.BOOLEAN else value if kind is DataType.DOUBLE \
        else int(value)
    return ua.DataValue(ua.Variant(number, VARIANT_TYPES[kind]), StatusCode=status(StatusCodes.Good),
                        SourceTimestamp=when, ServerTimestamp=when)


async def historize(server: Server, space: AddressSpace, history: ValueHistory) -> ValueHistory:
    """Historize the site's and the packs' own values (HistoryRead access, Historizing true) into `history`."""
    paths = [site_path(variable.id) for variable in space.node_map.site if historizable(variable)]
    paths += [pack_path(pack_id, variable.id) for pack_id in space.pack_ids for variable in space.node_map.pack
              if historizable(variable)]
    access = ua.DataValue(ua.Variant(_HISTORY_ACCESS, ua.VariantType.Byte))
    historizing = ua.DataValue(ua.Variant(True, ua.VariantType.Boolean))
    for path in paths:
        slot = space.slots[path]
        history.historize(slot.node_id, slot.variable)
        await server.write_attribute_value(slot.node_id, access, AttributeIds.AccessLevel)
        await server.write_attribute_value(slot.node_id, access, AttributeIds.UserAccessLevel)
        await server.write_attribute_value(slot.node_id, historizing, AttributeIds.Historizing)
    server.iserver.history_manager.set_storage(history)
    return history
