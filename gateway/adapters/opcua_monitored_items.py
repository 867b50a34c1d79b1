"""A subscription's monitored items, served from the ValueTable when they ask for nothing asyncua does better.

Served from the table: the Value attribute of a node the writer keeps up to date, with a queue of one value
(requested 0 or 1: OPC UA Part 4, 5.12.2; the newest value replaces the queued one) and no filter, or a
DataChangeFilter without deadband whose trigger includes the value (the writer writes a node only when its status
or value changed, so StatusValue and StatusValueTimestamp both report exactly those writes). Each such item is a
row of NumPy arrays (slot, reporting, pending); a write pass marks the rows of the changed slots in one
operation, and the notification is the item's client handle followed by the slot's encoded value.

Every other item (events, other attributes, deadbands, longer queues) is asyncua's own, through the base class,
unchanged; a table item modified into one of those becomes asyncua's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from asyncua import ua
from asyncua.server.address_space import AddressSpace
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemService
from asyncua.ua.attribute_ids import AttributeIds

from gateway.adapters.opcua_value_table import ValueTable

_HANDLE = struct.Struct("<I")
_VALUE_TRIGGERS = (ua.DataChangeTrigger.StatusValue, ua.DataChangeTrigger.StatusValueTimestamp)


@dataclass(slots=True)
class TableItem:
    slot: int
    handle: bytes  # the client handle, encoded
    reporting: bool


@dataclass(slots=True)
class Rows:
    """The table items as arrays, row by row (rebuilt when items come, go or change)."""

    ids: list[int]
    slots: npt.NDArray[np.intp]
    slot_list: list[int]
    handles: list[bytes]
    reporting: npt.NDArray[np.bool_]
    pending: npt.NDArray[np.bool_]


class TableMonitoredItems(MonitoredItemService):
    def __init__(self, isub: InternalSubscription, aspace: AddressSpace, table: ValueTable,
                 minimum_sampling_ms: float) -> None:
        super().__init__(isub, aspace)
        self._table = table
        self._minimum_sampling_ms = minimum_sampling_ms
        self._items: dict[int, TableItem] = {}
        self._fresh: set[int] = set()  # items to report whether or not their value changed (just created/enabled)
        self._rows: Rows | None = None
        table.follow(self)

    @property
    def table_item_count(self) -> int:
        return len(self._items)

    def has_pending(self) -> bool:
        rows = self._rows
        return bool(self._fresh) or (rows is not None and bool(rows.pending.any()))

    async def mark(self, changed: npt.NDArray[np.bool_]) -> None:
        if not self._items:
            return
        rows = self._current_rows()
        hits = changed[rows.slots]
        hits &= rows.reporting
        if hits.any():
            rows.pending |= hits
            await self.isub._trigger_publish()  # only publishes at once for a publishing interval of 0

    def take(self) -> tuple[int, bytes]:
        """The pending notifications, encoded (count, MonitoredItemNotification[] without its length)."""
        rows = self._current_rows()
        pending = np.flatnonzero(rows.pending).tolist()
        rows.pending[:] = False
        encoded, handles, slots = self._table.encoded, rows.handles, rows.slot_list
        return len(pending), b"".join([handles[row] + encoded[slots[row]] for row in pending])

    def delete_all_monitored_items(self) -> None:
        super().delete_all_monitored_items()
        self._table.forget(self)

    async def _create_data_change_monitored_item(
            self, params: ua.MonitoredItemCreateRequest) -> ua.MonitoredItemCreateResult:
        requested = params.RequestedParameters
        slot = self._slot_for(params.ItemToMonitor, requested)
        if slot is None:
            return await super()._create_data_change_monitored_item(params)
        result, data = self._make_monitored_item_common(params)
        result.RevisedQueueSize = data.queue_size = 1
        result.RevisedSamplingInterval = self._sampling_interval(requested.SamplingInterval)
        self._commit_monitored_item(result, data)
        item_id = result.MonitoredItemId
        reporting = params.MonitoringMode == ua.MonitoringMode.Reporting
        self._items[item_id] = TableItem(slot, _HANDLE.pack(requested.ClientHandle), reporting)
        self._rows = None
        if reporting:
            self._fresh.add(item_id)
            await self.isub._trigger_publish()
        return result

    def _modify_monitored_item(self, params: ua.MonitoredItemModifyRequest) -> ua.MonitoredItemModifyResult:
        item = self._items.get(params.MonitoredItemId)
        data = self._monitored_items.get(params.MonitoredItemId)
        if item is None or data is None or data.read_value_id is None:
            return super()._modify_monitored_item(params)
        requested = params.RequestedParameters
        if self._slot_for(data.read_value_id, requested) is None:
            data.client_handle = requested.ClientHandle
            self._hand_over(params.MonitoredItemId, data.read_value_id)
            return super()._modify_monitored_item(params)
        item.handle = _HANDLE.pack(requested.ClientHandle)
        data.client_handle, data.filter = requested.ClientHandle, requested.Filter
        self._rows = None
        result = ua.MonitoredItemModifyResult()
        result.RevisedSamplingInterval = self._sampling_interval(requested.SamplingInterval)
        result.RevisedQueueSize = 1
        return result

    async def _set_monitoring_mode(self, mode: ua.MonitoringMode, mid: int) -> ua.StatusCode:
        status = await super()._set_monitoring_mode(mode, mid)
        item = self._items.get(mid)
        if item is not None:
            reporting = mode == ua.MonitoringMode.Reporting
            if reporting and not item.reporting:
                self._fresh.add(mid)
            elif not reporting:
                self._fresh.discard(mid)
            item.reporting = reporting
            self._rows = None
        return status

    def _delete_monitored_items(self, mid: int) -> ua.StatusCode:
        if self._items.pop(mid, None) is not None:
            self._fresh.discard(mid)
            self._rows = None
        return super()._delete_monitored_items(mid)

    def _slot_for(self, target: ua.ReadValueId, requested: ua.MonitoringParameters) -> int | None:
        """The table slot serving this item, or None when asyncua has to."""
        if target.AttributeId != AttributeIds.Value or target.IndexRange or requested.QueueSize > 1:
            return None
        flt = requested.Filter  # no filter: None, or an ExtensionObject without body (falsy)
        if flt and not (isinstance(flt, ua.DataChangeFilter) and flt.Trigger in _VALUE_TRIGGERS
                                    and flt.DeadbandType == ua.DeadbandType.None_):
            return None
        return self._table.slots.get(target.NodeId)

    def _sampling_interval(self, requested: float) -> float:
        """-1 asks for the publishing interval; anything else is at least how often the writer writes."""
        if requested < 0:
            return float(self.isub.data.RevisedPublishingInterval)
        return max(float(requested), self._minimum_sampling_ms)

    def _hand_over(self, mid: int, target: ua.ReadValueId) -> None:
        """Make a table item asyncua's own (it was modified into something the table does not serve). asyncua's
        filter starts from the current value; a notification still pending goes into asyncua's queue."""
        rows = self._current_rows()
        pending = bool(rows.pending[rows.ids.index(mid)])
        slot = self._items.pop(mid).slot
        self._rows = None
        status, handle = self.aspace.add_datachange_callback(target.NodeId, target.AttributeId,
                                                             self.datachange_callback)
        if not status.is_good():
            return
        data = self._monitored_items[mid]
        data.callback_handle = handle
        self._monitored_datachange[handle] = mid
        current = self._table.data_value(slot)
        data.mvalue.set_current_datavalue(current)
        if pending:
            notification = ua.MonitoredItemNotification(ClientHandle=ua.UInt32(data.client_handle or 0), Value=current)
            self.isub._triggered_datachanges.setdefault(mid, []).append(notification)

    def _current_rows(self) -> Rows:
        rows = self._rows
        if rows is not None and not self._fresh:
            return rows
        pending_ids = set(self._fresh)
        if rows is not None:
            pending_ids.update(rows.ids[row] for row in np.flatnonzero(rows.pending).tolist())
        self._fresh.clear()
        ids = list(self._items)
        items = [self._items[item_id] for item_id in ids]
        slot_list = [item.slot for item in items]
        reporting = [item.reporting for item in items]
        pending = [report and item_id in pending_ids for item_id, report in zip(ids, reporting, strict=True)]
        rows = Rows(ids, np.array(slot_list, dtype=np.intp), slot_list, [item.handle for item in items],
                    np.array(reporting, dtype=np.bool_), np.array(pending, dtype=np.bool_))
        self._rows = rows
        return rows
