"""Where every SunSpec point sits: the model definitions bundled with pysunspec2, laid out from the base address.

The definitions (point order, types, sizes, scale-factor names, access) come from pysunspec2's model JSON files,
never retyped here. A repeating group (803's strings, 804's modules) is laid out as many times as the device has
instances; its points are named `<group>[<1-based instance>].<point>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sunspec2 import device as sunspec_device

SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
END_MODEL_ID = 0xFFFF
MODBUS_ADDRESS_LIMIT = 0x10000


@dataclass(frozen=True, slots=True)
class PointSlot:
    name: str
    address: int  # absolute 0-based holding register address
    size: int  # registers
    type: str  # SunSpec point type: uint16, int16, enum16, bitfield32, sunssf, string, pad, ...
    scale_factor: str | int | None  # the name of the sunssf point scaling it, a fixed exponent, or none
    writable: bool
    symbols: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ModelBlock:
    model_id: int
    address: int  # of its ID register
    length: int  # the L register: registers after ID and L
    points: Mapping[str, PointSlot]

    @property
    def end(self) -> int:
        return self.address + 2 + self.length

    def point(self, name: str) -> PointSlot:
        return self.points[name]


@dataclass(frozen=True, slots=True)
class SunSpecLayout:
    base_address: int  # of the "SunS" marker
    blocks: tuple[ModelBlock, ...]

    @property
    def end_address(self) -> int:
        """One past the end model (its ID and a zero length)."""
        return (self.blocks[-1].end if self.blocks else self.base_address + 2) + 2

    @property
    def size(self) -> int:
        return self.end_address - self.base_address

    def writable_points(self) -> dict[int, tuple[ModelBlock, PointSlot]]:
        """Every register of a read-write point, by address."""
        found: dict[int, tuple[ModelBlock, PointSlot]] = {}
        for block in self.blocks:
            for slot in block.points.values():
                if slot.writable:
                    for offset in range(slot.size):
                        found[slot.address + offset] = (block, slot)
        return found


def model_definition(model_id: int) -> dict[str, Any]:
    definition: dict[str, Any] = sunspec_device.get_model_def(model_id)
    return definition


def lay_out_model(model_id: int, address: int, counts: Mapping[str, int] | None = None) -> ModelBlock:
    """The model at `address` with `counts[group]` instances of each repeating group (0 when not given)."""
    counts = counts or {}
    points: dict[str, PointSlot] = {}
    top = model_definition(model_id)["group"]
    next_address = _lay_out_group(top, address, "", points, counts, top=True)
    return ModelBlock(model_id, address, next_address - address - 2, points)


def _lay_out_group(group: Mapping[str, Any], address: int, prefix: str, points: dict[str, PointSlot],
                   counts: Mapping[str, int], top: bool = False) -> int:
    for point in group.get("points", []):
        name = prefix + point["name"]
        sf = point.get("sf")
        symbols = {s["name"]: int(s["value"]) for s in point.get("symbols", [])}
        points[name] = PointSlot(name, address, int(point["size"]), point["type"], sf, point.get("access") == "RW",
                                 symbols)
        address += int(point["size"])
    for sub in group.get("groups", []):
        instances = counts.get(sub["name"], 0) if "count" in sub else 1
        for index in range(1, instances + 1):
            inner = f"{prefix}{sub['name']}[{index}]." if "count" in sub else f"{prefix}{sub['name']}."
            address = _lay_out_group(sub, address, inner, points, counts)
    return address


def lay_out_device(base_address: int, models: Sequence[tuple[int, Mapping[str, int]]]) -> SunSpecLayout:
    """The marker, then each (model id, repeating-group counts) in order, then the end model."""
    address = base_address + 2
    blocks: list[ModelBlock] = []
    for model_id, counts in models:
        block = lay_out_model(model_id, address, counts)
        blocks.append(block)
        address = block.end
    layout = SunSpecLayout(base_address, tuple(blocks))
    if layout.end_address > MODBUS_ADDRESS_LIMIT:
        raise ValueError(f"the SunSpec models need {layout.size} registers from {base_address}: more than the "
                         f"Modbus address space holds (too many packs for SunSpec at this base address)")
    return layout
