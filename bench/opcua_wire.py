"""A lean decoder of OPC UA PublishResponses for the benchmark's clients: client handle and SourceTimestamp only.

asyncua decodes a PublishResponse into dataclasses, about 13 µs per monitored-item notification on the benchmark
machine: ten clients of 12,000+ items each would need two cores just to decode, more than the machine has beside
the server under test. The benchmark only needs, per notification, the client handle and the SourceTimestamp, so
this module walks the binary encoding (OPC UA Part 6, 5.2) with `struct` and skips every value, about 1 µs per
notification. It returns None for anything it does not expect (a notification other than data changes, a Variant
type it cannot skip, picoseconds, diagnostics), and the caller then decodes with asyncua as usual.

    PublishResponse   TypeId NodeId, ResponseHeader, PublishResult
    PublishResult     SubscriptionId UInt32, AvailableSequenceNumbers UInt32[], MoreNotifications Boolean,
                      NotificationMessage {SequenceNumber UInt32, PublishTime DateTime, NotificationData
                      ExtensionObject[]}, Results StatusCode[], DiagnosticInfos DiagnosticInfo[]
    DataChangeNotification  MonitoredItems {ClientHandle UInt32, DataValue}[], DiagnosticInfos (empty)
    DataValue         mask Byte, then Value Variant (0x01), Status UInt32 (0x02), SourceTimestamp Int64 (0x04),
                      ServerTimestamp Int64 (0x08); picoseconds (0x10, 0x20) are not expected
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary
from asyncua.ua.uatypes import win_epoch_to_datetime

EPOCH_OFFSET_S = 11_644_473_600  # from 1601-01-01 (OPC UA DateTime) to 1970-01-01 (Unix time)
TICKS_PER_S = 10_000_000  # DateTime counts 100 ns intervals

_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_INT64 = struct.Struct("<q")
_HANDLE = struct.Struct("<IB")  # ClientHandle, DataValue mask
# Variant built-in type id -> encoded size of one element, for the fixed-size types
_FIXED_SIZE = {1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 4, 8: 8, 9: 8, 10: 4, 11: 8, 13: 8, 19: 4}
_LENGTH_PREFIXED = {12, 15, 16}  # String, ByteString, XmlElement
_LOCALIZED_TEXT = 21
_DATA_CHANGE = ObjectIds.DataChangeNotification_Encoding_DefaultBinary


class Unsupported(Exception):  # an outcome: fall back to asyncua's decoder
    """Something this decoder does not handle."""


@dataclass
class DataChanges:
    """What the benchmark keeps of one PublishResponse."""

    response: Any  # ua.PublishResponse with the notifications left out (enough for asyncua's acknowledgements)
    handles: list[int] = field(default_factory=list)
    source_ticks: list[int] = field(default_factory=list)  # DateTime of each notification's SourceTimestamp
    without_timestamp: int = 0


def ticks_to_unix_s(ticks: int) -> float:
    return ticks / TICKS_PER_S - EPOCH_OFFSET_S


def decode_publish_response(buffer: Buffer) -> DataChanges | None:
    """The data changes of a PublishResponse (the buffer starts at its TypeId; it is not consumed), or None."""
    copy = buffer.copy()
    type_id = nodeid_from_binary(copy)
    if type_id != ua.FourByteNodeId(ua.Int32(ObjectIds.PublishResponse_Encoding_DefaultBinary)):
        return None
    header = struct_from_binary(ua.ResponseHeader, copy)
    raw = bytes(copy)
    try:
        return _publish_result(raw, header)
    except (Unsupported, struct.error, IndexError):
        return None


def _publish_result(raw: bytes, header: Any) -> DataChanges:
    subscription_id, = _UINT32.unpack_from(raw, 0)
    count, = _INT32.unpack_from(raw, 4)
    position = 8
    available = list(struct.unpack_from(f"<{max(count, 0)}I", raw, position))
    position += 4 * max(count, 0)
    more = raw[position] != 0
    sequence, = _UINT32.unpack_from(raw, position + 1)
    publish_ticks, = _INT64.unpack_from(raw, position + 5)
    position += 13
    notifications, = _INT32.unpack_from(raw, position)
    position += 4
    changes = DataChanges(None)
    for _ in range(max(notifications, 0)):
        position = _extension_object(raw, position, changes)
    message = ua.NotificationMessage(SequenceNumber=sequence, PublishTime=win_epoch_to_datetime(publish_ticks),
                                     NotificationData=[ua.DataChangeNotification()] if notifications > 0 else [])
    result = ua.PublishResult(SubscriptionId=subscription_id, AvailableSequenceNumbers=available,
                              MoreNotifications=more, NotificationMessage=message)
    changes.response = ua.PublishResponse(ResponseHeader=header, Parameters=result)
    return changes


def _extension_object(raw: bytes, position: int, changes: DataChanges) -> int:
    buffer = Buffer(raw, position)
    type_id = nodeid_from_binary(buffer)
    position = int(buffer.cur_pos)
    if type_id != ua.FourByteNodeId(ua.Int32(_DATA_CHANGE)) or raw[position] != 1:
        raise Unsupported(f"notification {type_id}")
    length, = _INT32.unpack_from(raw, position + 1)
    end = int(position + 5 + length)
    position = _data_changes(raw, position + 5, changes)
    diagnostics, = _INT32.unpack_from(raw, position)
    if diagnostics > 0:
        raise Unsupported("diagnostic infos")
    if position + 4 != end:
        raise Unsupported("trailing bytes in a DataChangeNotification")
    return end


def _data_changes(raw: bytes, position: int, changes: DataChanges) -> int:
    items, = _INT32.unpack_from(raw, position)
    position += 4
    handles, ticks = changes.handles, changes.source_ticks
    unpack_item, unpack_int64 = _HANDLE.unpack_from, _INT64.unpack_from
    for _ in range(max(items, 0)):
        handle, mask = unpack_item(raw, position)
        position += 5
        if mask & 0x30:
            raise Unsupported("picoseconds")
        if mask & 0x01:
            position = _skip_variant(raw, position)
        if mask & 0x02:
            position += 4
        if mask & 0x04:
            handles.append(handle)
            ticks.append(unpack_int64(raw, position)[0])
            position += 8
        else:
            changes.without_timestamp += 1
        if mask & 0x08:
            position += 8
    return position


def _skip_variant(raw: bytes, position: int) -> int:
    encoding = raw[position]
    position += 1
    kind = encoding & 0x3F
    if kind == 0:
        return position
    if encoding & 0x80:
        count, = _INT32.unpack_from(raw, position)
        position += 4
        for _ in range(max(count, 0)):
            position = _skip_scalar(raw, position, kind)
        if encoding & 0x40:
            dimensions, = _INT32.unpack_from(raw, position)
            position += 4 + 4 * max(dimensions, 0)
        return position
    return _skip_scalar(raw, position, kind)


def _skip_scalar(raw: bytes, position: int, kind: int) -> int:
    size = _FIXED_SIZE.get(kind)
    if size is not None:
        return position + size
    if kind in _LENGTH_PREFIXED:
        return _skip_string(raw, position)
    if kind == _LOCALIZED_TEXT:
        mask = raw[position]
        position += 1
        if mask & 0x01:
            position = _skip_string(raw, position)
        if mask & 0x02:
            position = _skip_string(raw, position)
        return position
    raise Unsupported(f"Variant type {kind}")


def _skip_string(raw: bytes, position: int) -> int:
    length, = _INT32.unpack_from(raw, position)
    return int(position + 4 + max(length, 0))
