"""A written value encoded once, in OPC UA binary (Part 6, 5.2.2.17 DataValue), for every subscription to reuse.

asyncua builds and encodes a MonitoredItemNotification per monitored item and write (~20-50 us each): ten clients
of a 64-pack site asked for 160,000 of them a second. The writer encodes each changed value here once (~1 us);
each subscription's notification is then the client handle followed by these bytes (opcua_monitored_items).

The layout is asyncua's own, byte for byte (tests compare every data type): encoding mask 0x0F (Value,
StatusCode, SourceTimestamp, ServerTimestamp), the Variant (a null Variant for a Bad value, which carries no
number), the StatusCode, then both timestamps as 100 ns ticks since 1601.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from asyncua import ua

from gateway.codec.node_model import DataType

_MASK = 0x0F
_FIXED: dict[DataType, struct.Struct] = {
    DataType.DOUBLE: struct.Struct("<BBdIqq"),
    DataType.BOOLEAN: struct.Struct("<BB?Iqq"),
    DataType.INT32: struct.Struct("<BBiIqq"),
    DataType.UINT32: struct.Struct("<BBIIqq"),
}
_VARIANT_TYPE: dict[DataType, int] = {
    DataType.DOUBLE: ua.VariantType.Double.value,
    DataType.BOOLEAN: ua.VariantType.Boolean.value,
    DataType.INT32: ua.VariantType.Int32.value,
    DataType.UINT32: ua.VariantType.UInt32.value,
    DataType.STRING: ua.VariantType.String.value,
}
_HEAD = struct.Struct("<BBi")  # mask, variant type, length of the string that follows
_TEXT_HEAD = struct.Struct("<BBBi")  # mask, LocalizedText, its mask (text only), length
_TAIL = struct.Struct("<Iqq")  # status, source and server timestamps
_NULL = struct.Struct("<BBIqq")  # mask, null Variant, status, timestamps
_LOCALIZED_TEXT = ua.VariantType.LocalizedText.value
_TEXT_ONLY = 0x02


@dataclass(frozen=True, slots=True)
class Stamps:
    """The timestamps of one write pass: SourceTimestamp (the snapshot's time) and ServerTimestamp, as ticks."""

    source: int
    server: int

    @classmethod
    def of(cls, source: datetime, server: datetime) -> Stamps:
        return cls(ua.datetime_to_win_epoch(source), ua.datetime_to_win_epoch(server))


def encode_good(data_type: DataType, value: float | int | bool | str, stamps: Stamps) -> bytes:
    """A Good value of the node's data type (the caller has converted it: float for Double, ...)."""
    fixed = _FIXED.get(data_type)
    if fixed is not None:
        return fixed.pack(_MASK, _VARIANT_TYPE[data_type], value, 0, stamps.source, stamps.server)
    text = str(value).encode()
    return _HEAD.pack(_MASK, _VARIANT_TYPE[data_type], len(text)) + text + _TAIL.pack(0, stamps.source,
                                                                                      stamps.server)


def encode_text(text: str, stamps: Stamps) -> bytes:
    """A Good LocalizedText value without locale (the ValueAsText of an enumerated variable)."""
    raw = text.encode()
    return _TEXT_HEAD.pack(_MASK, _LOCALIZED_TEXT, _TEXT_ONLY, len(raw)) + raw + _TAIL.pack(0, stamps.source,
                                                                                            stamps.server)


def encode_bad(status_code: int, stamps: Stamps) -> bytes:
    """A Bad value: the status and the timestamps, no value (OPC UA Part 4, 7.7.1)."""
    return _NULL.pack(_MASK, 0, status_code, stamps.source, stamps.server)
