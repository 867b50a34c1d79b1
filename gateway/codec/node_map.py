"""Loading an OPC UA node map: YAML → pydantic (shape) → checks against the snapshot model → NodeMap.

Every problem names the file, the key and the fix; all of them are reported at once.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from enum import IntEnum
from itertools import pairwise
from pathlib import Path
from string import Formatter

from gateway.codec.node_model import (
    ArrayGroup,
    Bands,
    DataType,
    EngineeringUnit,
    EnumDescription,
    IdentityGroup,
    NodeMap,
    NodeVariable,
)
from gateway.codec.node_sources import Kind, Level, sources
from gateway.codec.node_spec import (
    ArraySpec,
    BandsSpec,
    NodeMapSpec,
    PackVariableSpec,
    PropertySpec,
    SiteVariableSpec,
    ValueSpec,
)
from gateway.codec.yaml_source import load_validated_mapping
from gateway.domain.alarms import Severity
from gateway.domain.states import AdmissionStatus, BalancingStatus, Chemistry, ContactorState, PackState
from gateway.errors import MappingError, Problem

ENUMS: dict[str, type[IntEnum]] = {
    cls.__name__: cls for cls in (PackState, ContactorState, Severity, Chemistry, BalancingStatus, AdmissionStatus)
}

_FITS: dict[Kind, tuple[DataType, ...]] = {
    "float": (DataType.DOUBLE,),
    "floats": (DataType.DOUBLE,),
    "bool": (DataType.BOOLEAN,),
    "int": (DataType.INT32, DataType.UINT32),
    "str": (DataType.STRING,),
    "enum": (DataType.INT32, DataType.UINT32, DataType.STRING),
}
_BROWSE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def load_node_map(mappings_dir: Path, name: str) -> NodeMap:
    """Load `<mappings_dir>/opcua/<name>.yaml`; raises MappingError naming file, key and fix."""
    return load_node_map_file(mappings_dir / "opcua" / f"{name}.yaml")


def load_node_map_file(path: Path) -> NodeMap:
    spec = load_validated_mapping(path, NodeMapSpec)
    return _Compiler(str(path), spec).compile()


class _Compiler:
    def __init__(self, source: str, spec: NodeMapSpec) -> None:
        self.source = source
        self.spec = spec
        self.problems: list[Problem] = []
        self.units = {code: EngineeringUnit(code, u.symbol, u.name) for code, u in spec.units.items()}

    def problem(self, key: str, message: str, fix: str) -> None:
        self.problems.append(Problem(self.source, key, message, fix))

    def compile(self) -> NodeMap:
        site_spec, pack_spec = self.spec.site, self.spec.pack
        site = self.named(site_spec.variables, "site.variables", "site")
        pack = self.named(pack_spec.variables, "pack.variables", "pack")
        arrays = tuple(self.array(group, f"pack.arrays[{i}]") for i, group in enumerate(pack_spec.arrays))
        identity_spec = pack_spec.identity
        properties = self.properties(identity_spec.properties, "pack.identity.properties")
        self.unique("site.variables", [(v.id, v.browse_name) for v in site_spec.variables])
        pack_children = [(v.id, v.browse_name) for v in pack_spec.variables]
        pack_children += [(a.id, a.browse_name) for a in pack_spec.arrays]
        pack_children.append((identity_spec.id, identity_spec.browse_name))
        self.unique("pack", pack_children)
        if self.problems:
            raise MappingError(self.problems)
        identity = IdentityGroup(identity_spec.id, identity_spec.browse_name, identity_spec.description,
                                 properties)
        return NodeMap(self.spec.name, self.source, site, pack, arrays, identity)

    def named(self, specs: Sequence[SiteVariableSpec], key: str, level: Level) -> tuple[NodeVariable, ...]:
        found = []
        for index, spec in enumerate(specs):
            live = spec.live if isinstance(spec, PackVariableSpec) else False
            variable = self.variable(spec, f"{key}[{index}]", level, ident=spec.id,
                                     browse_name=spec.browse_name, description=spec.description, live=live)
            if variable is not None:
                found.append(variable)
        return tuple(found)

    def array(self, spec: ArraySpec, key: str) -> ArrayGroup:
        for field_name in ("element", "element_description"):
            self.check_pattern(getattr(spec, field_name), f"{key}.{field_name}")
        bands = self.bands(spec.bands, key) if spec.bands is not None else None
        has_band = "band" in _field_names(spec.element_description)
        if spec.bands is not None and not has_band:
            self.problem(f"{key}.element_description", "does not name the band of the element",
                         "add {band} (it reads e.g. 'from 10 °C to under 20 °C')")
        elif spec.bands is None and has_band:
            self.problem(f"{key}.element_description", "uses {band}, but the array has no bands",
                         "add bands: {edges, unit, quantity}, or remove {band}")
        if spec.variable is not None:
            flat = self.variable(spec.variable, f"{key}.variable", "array", ident="value",
                                 browse_name="Value", description=spec.element_description,
                                 live=spec.variable.live)
            variables: tuple[NodeVariable, ...] = (flat,) if flat is not None else ()
        else:
            variables = self.named(spec.variables or [], f"{key}.variables", "array")
            self.unique(f"{key}.variables", [(v.id, v.browse_name) for v in spec.variables or []])
        return ArrayGroup(spec.id, spec.browse_name, spec.description, spec.element, spec.element_description,
                          variables, flat=spec.variable is not None, bands=bands)

    def bands(self, spec: BandsSpec, key: str) -> Bands | None:
        edges = tuple(spec.edges)
        if not all(math.isfinite(edge) for edge in edges) or any(b <= a for a, b in pairwise(edges)):
            self.problem(f"{key}.bands.edges", f"{list(edges)} is not a strictly increasing list of numbers",
                         "list the finite band edges in increasing order (the open bands below the first "
                         "and above the last edge are added)")
        unit = self.unit(spec.unit, f"{key}.bands.unit")
        return Bands(edges, unit, spec.quantity) if unit is not None else None

    def unit(self, name: str, key: str) -> EngineeringUnit | None:
        unit = self.units.get(name)
        if unit is None:
            self.problem(key, f"unit {name!r} is not defined under units:",
                         f"add it under units: (symbol, name), or use one of {sorted(self.units)}")
        return unit

    def check_pattern(self, pattern: str, key: str) -> None:
        fix = "use a str.format pattern with the element number {n}, e.g. Cell{n:02d}"
        described = key.endswith(".element_description")  # may tell the elements apart by {band} instead
        try:
            if described:
                first, second = pattern.format(n=1, band="band 1"), pattern.format(n=2, band="band 2")
            else:
                first, second = pattern.format(n=1), pattern.format(n=2)
        except (KeyError, IndexError, ValueError) as error:
            self.problem(key, f"is not a valid pattern ({error})", fix)
            return
        if first == second:
            self.problem(key, "does not contain the element number {n}", fix)
        elif key.endswith(".element") and not _BROWSE_NAME.fullmatch(first):
            self.problem(key, f"gives {first!r}, not a valid browse name",
                         "use letters, digits and '_' only, starting with a letter")

    def properties(self, specs: Sequence[PropertySpec], key: str) -> tuple[NodeVariable, ...]:
        found = []
        for index, spec in enumerate(specs):
            prop = self.typed(spec.source, spec.data_type, f"{key}[{index}]", "identity", spec.id,
                              spec.browse_name, spec.description)
            if prop is not None:
                found.append(prop)
        self.unique(key, [(p.id, p.browse_name) for p in specs])
        return tuple(found)

    def variable(self, spec: ValueSpec, key: str, level: Level, *, ident: str, browse_name: str,
                 description: str, live: bool) -> NodeVariable | None:
        variable = self.typed(spec.source, spec.data_type, key, level, ident, browse_name, description)
        if variable is None:
            return None
        unit = self.analog(spec, key)
        enum = self.enum(spec, key, level)
        return dataclasses.replace(variable, unit=unit, eu_range=spec.range if unit is not None else None,
                                   enum=enum, live=live)

    def typed(self, source_name: str, data_type: DataType, key: str, level: Level, ident: str,
              browse_name: str, description: str) -> NodeVariable | None:
        available = sources(level)
        source = available.get(source_name)
        if source is None:
            self.problem(f"{key}.source", f"{source_name!r} is not a {level} source",
                         f"use one of: {', '.join(available)}")
            return None
        fits = _FITS[source.kind]
        if data_type not in fits:
            self.problem(f"{key}.data_type", f"{data_type} cannot hold {source_name} ({source.kind})",
                         f"use data_type {' or '.join(fits)}")
            return None
        return NodeVariable(ident, browse_name, source_name, data_type, description, source.read)

    def analog(self, spec: ValueSpec, key: str) -> EngineeringUnit | None:
        if spec.data_type is not DataType.DOUBLE:
            for name in ("unit", "range"):
                if getattr(spec, name) is not None:
                    self.problem(f"{key}.{name}", "is only allowed on Double (AnalogItemType) variables",
                                 f"remove {name}, or use data_type Double")
            return None
        if spec.unit is None or spec.range is None:
            missing = "unit" if spec.unit is None else "range"
            self.problem(f"{key}.{missing}", "is required on a Double (AnalogItemType) variable",
                         "add unit: <UNECE code> and range: [low, high]")
            return None
        if spec.range[0] >= spec.range[1]:
            self.problem(f"{key}.range", f"low {spec.range[0]} is not below high {spec.range[1]}",
                         "give [low, high] with low < high")
        return self.unit(spec.unit, f"{key}.unit")

    def enum(self, spec: ValueSpec, key: str, level: Level) -> EnumDescription | None:
        if spec.enum is None:
            return None
        cls = ENUMS.get(spec.enum)
        expected = sources(level)[spec.source].enum
        if spec.data_type not in (DataType.INT32, DataType.UINT32):
            self.problem(f"{key}.enum", "is only allowed on Int32 / UInt32 variables",
                         "remove enum, or use data_type Int32")
        elif cls is None:
            self.problem(f"{key}.enum", f"unknown enumeration {spec.enum!r}", f"use one of {sorted(ENUMS)}")
        elif expected is not None and expected is not cls:
            self.problem(f"{key}.enum", f"{spec.source} is a {expected.__name__}, not a {cls.__name__}",
                         f"use enum: {expected.__name__}")
        else:
            return EnumDescription(cls.__name__, tuple((int(m), m.name) for m in cls))
        return None

    def unique(self, key: str, entries: list[tuple[str, str]]) -> None:
        for position, kind in ((0, "id"), (1, "browse_name")):
            seen: set[str] = set()
            for entry in entries:
                name = entry[position]
                if name in seen:
                    self.problem(key, f"{kind} {name!r} is used twice",
                                 f"give each node under {key} its own {kind}")
                seen.add(name)


def _field_names(pattern: str) -> set[str]:
    """The replacement fields of a str.format pattern ({n:02d} -> "n"); none if it does not parse."""
    try:
        return {name for _, name, _, _ in Formatter().parse(pattern) if name}
    except ValueError:
        return set()
