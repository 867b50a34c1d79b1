"""The value of every node of a node map, computed from a snapshot (pure; the adapter writes them).

Keys are NodeId paths relative to the site object (`site_values`) or to a pack object
(`pack_values`), e.g. "soc", "cells/cell01/voltage", "identity/serial_number".

Quality, never a stale value dressed up as current:
    NaN (unknown)                                   → NO_COMMUNICATION
    live pack variable while the pack is offline    → NO_COMMUNICATION
    nothing known yet (identity never received)     → WAITING_FOR_DATA
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from gateway.codec.node_model import ArrayGroup, DataType, NodeMap, NodeVariable
from gateway.domain.snapshot import PackSnapshot, SiteSnapshot

Scalar = float | int | bool | str

_INT_RANGE: dict[DataType, tuple[int, int]] = {
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}
_EMPTY: dict[DataType, Scalar] = {
    DataType.DOUBLE: math.nan, DataType.BOOLEAN: False, DataType.INT32: 0, DataType.UINT32: 0,
    DataType.STRING: "",
}


class Quality(Enum):
    GOOD = "good"
    NO_COMMUNICATION = "no_communication"
    WAITING_FOR_DATA = "waiting_for_data"


@dataclass(frozen=True, slots=True)
class NodeValue:
    value: Scalar
    quality: Quality

    def same_as(self, other: NodeValue | None) -> bool:
        """Publishes the same: equal, or both of the same bad quality (a bad value carries no number)."""
        if other is None or other.quality is not self.quality:
            return False
        if self.quality is not Quality.GOOD:
            return True
        if isinstance(self.value, float) and isinstance(other.value, float):
            both_nan = math.isnan(self.value) and math.isnan(other.value)
            return both_nan or self.value == other.value
        return type(self.value) is type(other.value) and self.value == other.value


def convert(variable: NodeVariable, raw: object, *, offline: bool = False) -> NodeValue:
    """The published value of `raw` (what the variable's source read) as the variable's data type."""
    data_type = variable.data_type
    if raw is None:
        return NodeValue(_EMPTY[data_type], Quality.WAITING_FOR_DATA)
    value = _as(data_type, raw)
    unknown = isinstance(value, float) and math.isnan(value)
    bad = unknown or (offline and variable.live)
    return NodeValue(value, Quality.NO_COMMUNICATION if bad else Quality.GOOD)


def site_values(node_map: NodeMap, site: SiteSnapshot) -> dict[str, NodeValue]:
    return {variable.id: convert(variable, variable.read(site)) for variable in node_map.site}


def pack_values(node_map: NodeMap, pack: PackSnapshot) -> dict[str, NodeValue]:
    offline = not pack.online
    values = {v.id: convert(v, v.read(pack), offline=offline) for v in node_map.pack}
    for group in node_map.arrays:
        columns = [(variable, _entries(variable.read(pack))) for variable in group.variables]
        length = _count(group, max((len(entries) for _, entries in columns), default=0))
        for variable, entries in columns:
            for index in range(length):
                raw = entries[index] if index < len(entries) else math.nan
                values[group.variable_key(index + 1, variable)] = convert(variable, raw, offline=offline)
    identity = node_map.identity
    for prop in identity.properties:
        values[identity.property_key(prop)] = convert(prop, prop.read(pack))
    return values


def element_count(group: ArrayGroup, pack: PackSnapshot) -> int:
    """How many elements a pack's array group has: the longest of its sources (at most one per band)."""
    return _count(group, max((len(_entries(variable.read(pack))) for variable in group.variables), default=0))


def _count(group: ArrayGroup, longest: int) -> int:
    return longest if group.bands is None else min(longest, group.bands.count)


def _entries(raw: object) -> tuple[object, ...]:
    if not isinstance(raw, tuple):
        raise TypeError(f"array source gave {raw!r}, not a tuple")
    return raw


def _as(data_type: DataType, raw: object) -> Scalar:
    if data_type is DataType.STRING:
        return raw.name if isinstance(raw, Enum) else str(raw)
    if data_type is DataType.BOOLEAN:
        return bool(raw)
    if not isinstance(raw, int | float):
        raise TypeError(f"{data_type} node cannot publish {raw!r}")
    if data_type is DataType.DOUBLE:
        return float(raw)
    low, high = _INT_RANGE[data_type]
    return min(max(int(raw), low), high)
