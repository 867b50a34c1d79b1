"""What a node map may publish: the snapshot attributes a node can read, with their types.

Derived from the snapshot dataclasses themselves (fields and properties, via their annotations), so
a renamed attribute makes the node map fail to load instead of silently publishing nothing.

    site      SiteSnapshot scalars, plus alarm_mask.<warning|alarm|trip>
    pack      PackSnapshot scalars, plus alarm_mask.<warning|alarm|trip>
    array     PackSnapshot tuples of floats (one node per element)
    identity  identity.<PackIdentity field> (None until the pack has answered)
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from typing import Any, Literal, get_args, get_origin, get_type_hints

from gateway.domain.alarms import Severity
from gateway.domain.identity import PackIdentity
from gateway.domain.snapshot import PackSnapshot, SiteSnapshot

Kind = Literal["float", "bool", "int", "str", "enum", "floats"]
Level = Literal["site", "pack", "array", "identity"]


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    kind: Kind
    enum: type[IntEnum] | None
    read: Callable[[Any], object]


def sources(level: Level) -> dict[str, Source]:
    """Every source a node at `level` may name."""
    return dict(_sources(level))


@cache
def _sources(level: Level) -> tuple[tuple[str, Source], ...]:
    if level == "site":
        found = _scalars(_attributes(SiteSnapshot)) | _alarm_masks(site=True)
    elif level == "pack":
        found = _scalars(_attributes(PackSnapshot)) | _alarm_masks(site=False)
    elif level == "array":
        found = {name: s for name, s in _attributes(PackSnapshot).items() if s.kind == "floats"}
    else:
        identity = _attributes(PackIdentity)
        found = {f"identity.{name}": _identity_source(name, s) for name, s in identity.items()}
    return tuple(sorted(found.items()))


def _attributes(cls: type) -> dict[str, Source]:
    field_hints = get_type_hints(cls)
    hints: dict[str, Any] = {f.name: field_hints[f.name] for f in dataclasses.fields(cls)}
    for name, member in vars(cls).items():
        if isinstance(member, property) and member.fget is not None and not name.startswith("_"):
            hints[name] = get_type_hints(member.fget)["return"]
    found = {}
    for name, hint in hints.items():
        typed = _kind_of(hint)
        if typed is not None:
            found[name] = Source(name, typed[0], typed[1], operator.attrgetter(name))
    return found


def _scalars(found: dict[str, Source]) -> dict[str, Source]:
    return {name: source for name, source in found.items() if source.kind != "floats"}


def _kind_of(hint: Any) -> tuple[Kind, type[IntEnum] | None] | None:
    if hint is bool:
        return "bool", None
    if hint is float:
        return "float", None
    if hint is int:
        return "int", None
    if hint is str:
        return "str", None
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return "enum", hint
    if get_origin(hint) is tuple and get_args(hint) == (float, Ellipsis):
        return "floats", None
    return None


def _alarm_masks(*, site: bool) -> dict[str, Source]:
    found = {}
    for severity in Severity:
        if severity is Severity.NONE:
            continue
        name = f"alarm_mask.{severity.name.lower()}"
        read = _site_mask(severity) if site else _pack_mask(severity)
        found[name] = Source(name, "int", None, read)
    return found


def _site_mask(severity: Severity) -> Callable[[Any], object]:
    def read(site: SiteSnapshot) -> int:
        return site.alarm_masks.get(severity, 0)

    return read


def _pack_mask(severity: Severity) -> Callable[[Any], object]:
    def read(pack: PackSnapshot) -> int:
        return pack.alarm_mask(severity)

    return read


def _identity_source(name: str, source: Source) -> Source:
    def read(pack: PackSnapshot) -> object:
        return None if pack.identity is None else getattr(pack.identity, name)

    return Source(f"identity.{name}", source.kind, source.enum, read)
