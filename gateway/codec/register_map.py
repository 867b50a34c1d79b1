"""A Modbus register map: loaded once from mappings/modbus/<name>.yaml, validated, compiled.

The map has two units: `site` (one unit id for the whole site) and `pack` (one unit id per pack,
all with the same layout). Each unit publishes input registers (FC4) computed from the latest
snapshot and a block of holding registers (FC3) reserved for future commands. Encoding a unit
yields its whole input-register image as a numpy uint16 array; protocol adapters serve slices of
it and never encode per request.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from gateway.codec.register_encoding import REGISTER_TYPES, ImageEncoder, RegisterType, Slot, WordOrder
from gateway.codec.register_sources import (
    ArrayGetter,
    ArraySource,
    ScalarGetter,
    ScalarSource,
    Source,
    Subject,
    UnitKind,
    sources_for,
)
from gateway.codec.register_spec import EntrySpec, MapSpec, UnitSpec
from gateway.codec.yaml_source import load_yaml_mapping
from gateway.domain.snapshot import GatewaySnapshot, PackSnapshot
from gateway.errors import MappingError, Problem
from gateway.validation_problems import problems_from_validation_error

ADDRESS_SPACE = 0x10000

# (unit of the source, unit published) -> factor; equal units need no entry.
UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("ratio", "%"): 100.0,
    ("V", "mV"): 1_000.0,
    ("A", "mA"): 1_000.0,
    ("s", "ms"): 1_000.0,
    ("W", "kW"): 0.001,
    ("Wh", "kWh"): 0.001,
    ("Ah", "mAh"): 1_000.0,
}


@dataclass(frozen=True, slots=True)
class RegisterEntry:
    """One published value, or `count` consecutive values of an array source."""

    address: int  # 0-based protocol address of the first register
    name: str
    source: str
    type: RegisterType
    scale: float  # value (in `unit`) = raw * scale
    unit: str
    description: str
    count: int | None = None  # None: a scalar; n: an array of n values

    @property
    def values(self) -> int:
        return 1 if self.count is None else self.count

    @property
    def words_per_value(self) -> int:
        return REGISTER_TYPES[self.type].words

    @property
    def words(self) -> int:
        return self.values * self.words_per_value

    @property
    def end(self) -> int:
        """The address just after the entry's last register."""
        return self.address + self.words


@dataclass(frozen=True, slots=True)
class ReservedBlock:
    """Holding registers kept for future commands: readable as zeros, writes refused."""

    address: int
    count: int
    description: str

    def contains(self, address: int, count: int) -> bool:
        return count >= 1 and self.address <= address and address + count <= self.address + self.count


@dataclass(frozen=True)
class UnitMap:
    """The layout of one kind of unit and its compiled encoder."""

    kind: UnitKind
    entries: tuple[RegisterEntry, ...]
    holding_reserved: ReservedBlock
    _encoder: ImageEncoder = field(repr=False, compare=False)
    _scalars: tuple[ScalarGetter, ...] = field(repr=False, compare=False)
    _arrays: tuple[tuple[ArrayGetter, int], ...] = field(repr=False, compare=False)

    @property
    def size(self) -> int:
        """Number of readable input registers (addresses 0 .. size-1; gaps read as 0)."""
        return self._encoder.size

    def entry(self, name: str) -> RegisterEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def not_implemented_image(self) -> NDArray[np.uint16]:
        """The image of a unit nothing is known about (every entry not-implemented)."""
        return self._encoder.not_implemented_image.copy()

    def encode(self, subject: Subject | None, snapshot: GatewaySnapshot | None) -> NDArray[np.uint16]:
        values = np.empty(len(self._scalars) + sum(count for _, count in self._arrays), dtype=np.float64)
        values[: len(self._scalars)] = [get(subject, snapshot) for get in self._scalars]
        offset = len(self._scalars)
        for get, count in self._arrays:
            data = np.asarray(get(subject), dtype=np.float64)[:count]
            values[offset : offset + data.size] = data
            values[offset + data.size : offset + count] = np.nan
            offset += count
        return self._encoder.encode(values)


@dataclass(frozen=True)
class RegisterMap:
    name: str
    source: str  # the file it was loaded from
    version: int
    word_order: WordOrder
    description: str
    site: UnitMap
    pack: UnitMap

    def encode_site(self, snapshot: GatewaySnapshot | None) -> NDArray[np.uint16]:
        return self.site.encode(None if snapshot is None else snapshot.site, snapshot)

    def encode_pack(self, pack: PackSnapshot | None, snapshot: GatewaySnapshot | None) -> NDArray[np.uint16]:
        """A pack's image; `pack=None` (configured but absent) reads as not-implemented values."""
        return self.pack.encode(pack, snapshot)


def load_register_map(mappings_dir: Path, name: str) -> RegisterMap:
    """Load mappings/modbus/<name>.yaml (the `modbus.map` setting names it)."""
    path = mappings_dir / "modbus" / f"{name}.yaml"
    return parse_register_map(load_yaml_mapping(path), name=name, source=str(path))


def parse_register_map(raw: Mapping[str, Any], *, name: str, source: str) -> RegisterMap:
    try:
        spec = MapSpec.model_validate(raw)
    except ValidationError as error:
        raise MappingError(problems_from_validation_error(error, lambda _: source)) from error
    problems: list[Problem] = []
    site = _compile_unit("site", spec.site, spec, source, problems)
    pack = _compile_unit("pack", spec.pack, spec, source, problems)
    if problems or site is None or pack is None:
        raise MappingError(problems)
    return RegisterMap(name, source, spec.version, spec.word_order, spec.description, site, pack)


def _compile_unit(kind: UnitKind, unit: UnitSpec, spec: MapSpec, source: str,
                  problems: list[Problem]) -> UnitMap | None:
    sources = sources_for(kind, spec.version)
    found = len(problems)
    entries: list[tuple[int, RegisterEntry]] = []
    scalar_slots: list[Slot] = []
    scalar_getters: list[ScalarGetter] = []
    array_slots: list[Slot] = []
    arrays: list[tuple[ArrayGetter, int]] = []
    for index, entry_spec in enumerate(unit.input_registers):
        key = f"{kind}.input_registers[{index}]"
        resolved = _check_entry(entry_spec, sources, kind, key, source, problems)
        if resolved is None:
            continue
        entry, published, factor = resolved
        entries.append((index, entry))
        multiplier = factor / entry.scale
        if isinstance(published, ScalarSource):
            scalar_slots.append(Slot(entry.address, entry.type, multiplier, published.counter))
            scalar_getters.append(published.get)
        else:
            array_slots.extend(Slot(entry.address + i * entry.words_per_value, entry.type, multiplier)
                               for i in range(entry.values))
            arrays.append((published.get, entry.values))
    _check_layout(kind, entries, source, problems)
    if len(problems) > found:
        return None
    reserved = unit.holding_registers_reserved
    if reserved.address + reserved.count > ADDRESS_SPACE:
        problems.append(Problem(source, f"{kind}.holding_registers_reserved", "runs past address 65535",
                                "lower its address or count"))
        return None
    size = max(entry.end for _, entry in entries)
    encoder = ImageEncoder(size, scalar_slots + array_slots, spec.word_order)
    return UnitMap(kind, tuple(sorted((entry for _, entry in entries), key=lambda e: e.address)),
                   ReservedBlock(reserved.address, reserved.count, reserved.description),
                   encoder, tuple(scalar_getters), tuple(arrays))


def _check_entry(entry: EntrySpec, sources: Mapping[str, Source], kind: UnitKind, key: str, path: str,
                 problems: list[Problem]) -> tuple[RegisterEntry, Source, float] | None:
    published = sources.get(entry.source)
    if published is None:
        close = difflib.get_close_matches(entry.source, list(sources), n=3)
        hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                else f"use one of: {', '.join(sorted(sources))}")
        problems.append(Problem(path, f"{key}.source", f"unknown {kind} source {entry.source!r}", hint))
        return None
    found = len(problems)
    if isinstance(published, ArraySource) and entry.count is None:
        problems.append(Problem(path, f"{key}.count",
                                f"{entry.source!r} is an array (one value per cell or sensor)",
                                "add `count:` with the number of values to publish"))
    if isinstance(published, ScalarSource) and entry.count is not None:
        problems.append(Problem(path, f"{key}.count", f"{entry.source!r} is a single value",
                                "remove `count:` or publish an array source"))
    if isinstance(published, ScalarSource) and published.counter and REGISTER_TYPES[entry.type].signed:
        problems.append(Problem(path, f"{key}.type", f"the counter {entry.source!r} needs an unsigned type",
                                "use uint16 or uint32"))
    factor = 1.0 if entry.unit == published.unit else UNIT_FACTORS.get((published.unit, entry.unit))
    if factor is None:
        allowed = [published.unit, *(to for (frm, to) in UNIT_FACTORS if frm == published.unit)]
        native = published.unit or "no unit"
        problems.append(Problem(path, f"{key}.unit",
                                f"{entry.unit!r} does not fit {entry.source!r} (in {native})",
                                f"use one of {allowed} and set scale to the size of one raw step"))
    if factor is None or len(problems) > found:
        return None
    return RegisterEntry(entry.address, entry.name, entry.source, entry.type, entry.scale, entry.unit,
                         entry.description, entry.count), published, factor


def _check_layout(kind: UnitKind, entries: Sequence[tuple[int, RegisterEntry]], path: str,
                  problems: list[Problem]) -> None:
    names: dict[str, int] = {}
    for index, entry in entries:
        key = f"{kind}.input_registers[{index}]"
        if entry.name in names:
            first = f"{kind}.input_registers[{names[entry.name]}]"
            problems.append(Problem(path, f"{key}.name", f"{entry.name!r} is already used by {first}",
                                    "give every entry its own name"))
        names.setdefault(entry.name, index)
        if entry.end > ADDRESS_SPACE:
            problems.append(Problem(path, f"{key}.address", f"registers {entry.address}..{entry.end - 1} run "
                                    "past address 65535", "move the entry to a lower address"))
    widest: tuple[int, RegisterEntry] | None = None
    for index, entry in sorted(entries, key=lambda pair: pair[1].address):
        if widest is not None and entry.address < widest[1].end:
            other_index, other = widest
            problems.append(Problem(
                path, f"{kind}.input_registers[{index}].address",
                f"registers {entry.address}..{entry.end - 1} ({entry.name!r}) overlap registers "
                f"{other.address}..{other.end - 1} ({other.name!r}, {kind}.input_registers[{other_index}])",
                f"move one of them to a free address (the first after {other.name!r} is {other.end})"))
        if widest is None or entry.end > widest[1].end:
            widest = (index, entry)
