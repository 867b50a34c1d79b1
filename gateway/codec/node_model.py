"""The OPC UA node map model: which variables the address space has and which value each reads.

`node_map.load_node_map` builds it from `mappings/opcua/<name>.yaml`; `node_values` computes each
node's value from a snapshot. Pure: no asyncua here. The NodeId path of every node is defined here
too (see docs/opcua.md):

    site                                   the site object (browse name: the site name)
    site/<variable id>                     site variables
    site/packs                             the Packs folder
    site/packs/<pack id>                   one pack object
    site/packs/<pack id>/<variable id>     pack variables
    site/packs/<pack id>/<array id>/<element id>[/<variable id>]   Cells/Cell01/Voltage, ...
    site/packs/<pack id>/<array id>/band_edges                     the edges of a histogram's bands
    site/packs/<pack id>/<identity id>/<property id>               Identity/SerialNumber, ...
    gateway                                the gateway object (browse name BmsGateway)
    types/<type name>[/<member path>]      the object types, their InstanceDeclarations, the enumerations
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from string import Formatter
from typing import Any

SITE_PATH = "site"
PACKS_PATH = "site/packs"
GATEWAY_PATH = "gateway"
TYPES_PATH = "types"
GATEWAY_TYPE = "GatewayType"  # the object types (ObjectType nodes at types/<name>)
SITE_TYPE = "SiteType"
PACK_TYPE = "PackType"
GATEWAY_BROWSE_NAME = "BmsGateway"
UNECE_NAMESPACE_URI = "http://www.opcfoundation.org/UA/units/un/cefact"


class DataType(StrEnum):
    DOUBLE = "Double"
    BOOLEAN = "Boolean"
    INT32 = "Int32"
    UINT32 = "UInt32"
    STRING = "String"


def unece_unit_id(code: str) -> int:
    """EUInformation.unitId of a UNECE common code (OPC UA Part 8: the code's ASCII bytes, big-endian)."""
    unit_id = 0
    for char in code.encode("ascii"):
        unit_id = (unit_id << 8) | char
    return unit_id


@dataclass(frozen=True, slots=True)
class EngineeringUnit:
    code: str  # UNECE Recommendation 20 common code, e.g. "VLT"
    symbol: str  # EUInformation.displayName, e.g. "V"
    name: str  # EUInformation.description, e.g. "volt"

    @property
    def unit_id(self) -> int:
        return unece_unit_id(self.code)


@dataclass(frozen=True, slots=True)
class EnumDescription:
    name: str
    members: tuple[tuple[int, str], ...]  # (value, name) in value order

    def text_of(self, value: int) -> str:
        for member_value, member_name in self.members:
            if member_value == value:
                return member_name
        return str(value)


@dataclass(frozen=True, slots=True)
class NodeVariable:
    """One variable (or property): its node, its type and where its value comes from."""

    id: str
    browse_name: str
    source: str
    data_type: DataType
    description: str
    read: Callable[[Any], object] = field(repr=False, compare=False)
    unit: EngineeringUnit | None = None
    eu_range: tuple[float, float] | None = None
    enum: EnumDescription | None = None
    live: bool = False  # Bad_NoCommunication while the pack is offline

    @property
    def is_analog(self) -> bool:
        return self.unit is not None


@dataclass(frozen=True, slots=True)
class Bands:
    """The bands of a histogram: band 1 is below edges[0], band n covers [edges[n-2], edges[n-1]) (lower
    edge included), the last band is at or above edges[-1]; so there is one band more than edges."""

    edges: tuple[float, ...]  # increasing
    unit: EngineeringUnit
    quantity: str  # what the edges measure, e.g. "hottest sensor temperature"

    @property
    def count(self) -> int:
        return len(self.edges) + 1

    def bounds(self, n: int) -> tuple[float, float]:
        """(low, high) of band n (1-based): low included, high excluded, -inf / inf at the open ends."""
        if not 1 <= n <= self.count:
            raise IndexError(f"band {n} of {self.count}")
        low = self.edges[n - 2] if n > 1 else -math.inf
        high = self.edges[n - 1] if n <= len(self.edges) else math.inf
        return low, high

    def text(self, n: int) -> str:
        """Band n in words, e.g. "under -20 °C", "from 10 °C to under 20 °C", "at or above 60 °C"."""
        low, high = self.bounds(n)
        if math.isinf(low):
            return f"under {self.quantity_text(high)}"
        if math.isinf(high):
            return f"at or above {self.quantity_text(low)}"
        return f"from {self.quantity_text(low)} to under {self.quantity_text(high)}"

    def quantity_text(self, value: float) -> str:
        number = f"{value:g}"
        return number if self.unit.symbol == "1" else f"{number} {self.unit.symbol}"

    @property
    def unit_text(self) -> str:
        """How the edges are expressed, e.g. "in °C (CEL)", "as ratios (unit 1, C62)"."""
        if self.unit.symbol == "1":
            return f"as ratios (unit 1, {self.unit.code})"
        return f"in {self.unit.symbol} ({self.unit.code})"


@dataclass(frozen=True, slots=True)
class ArrayGroup:
    """A folder with one element per array entry: an object of variables, or (flat) one variable.

    With `bands`, the entries are the bands of a histogram: there are exactly `bands.count` elements,
    and the folder has a `BandEdges` property (Double array, NodeId path `<array id>/band_edges`).
    """

    id: str
    browse_name: str
    description: str
    element: str  # str.format pattern with {n} (1-based), e.g. "Cell{n:02d}"
    element_description: str  # str.format pattern with {n} and, for bands, {band} (Bands.text)
    variables: tuple[NodeVariable, ...]
    flat: bool  # True: each element is the single variable itself (id / browse name unused)
    bands: Bands | None = None

    def element_name(self, n: int) -> str:
        return self.element.format(n=n)

    def element_text(self, n: int) -> str:
        """The description of element n."""
        band = self.bands.text(n) if self.bands is not None and n <= self.bands.count else ""
        return self.element_description.format(n=n, band=band)

    @property
    def band_edges_key(self) -> str:
        return f"{self.id}/band_edges"

    def element_key(self, n: int) -> str:
        return f"{self.id}/{self.element_name(n).lower()}"

    def variable_key(self, n: int, variable: NodeVariable) -> str:
        return self.element_key(n) if self.flat else f"{self.element_key(n)}/{variable.id}"

    @property
    def element_stem(self) -> str:
        """The element pattern without its number, e.g. "Cell" for Cell{n:02d}."""
        return "".join(literal for literal, _, _, _ in Formatter().parse(self.element))

    @property
    def element_type_name(self) -> str:
        """The object type of an object array's elements, e.g. CellType for Cell{n:02d}."""
        return f"{self.element_stem}Type"

    @property
    def placeholder_name(self) -> str:
        """Browse name of the elements' placeholder in an object type, e.g. "<Cell>" (OPC UA Part 3)."""
        return f"<{self.element_stem}>"

    @property
    def placeholder_key(self) -> str:
        return f"{self.id}/<{self.element_stem.lower()}>"

    def configured_count(self, series_cells: int, temperature_sensors: int) -> int | None:
        """How many elements a pack configured with `series_cells` and `temperature_sensors` gets: one per
        band, per series cell (the snapshot's cell_* tuples) or per sensor (temperature_c); None when
        the sources say neither (such an array is sized by the snapshots alone)."""
        if self.bands is not None:
            return self.bands.count
        sources = {variable.source for variable in self.variables}
        if sources and all(source.startswith("cell_") for source in sources):
            return series_cells
        if sources == {"temperature_c"}:
            return temperature_sensors
        return None


@dataclass(frozen=True, slots=True)
class IdentityGroup:
    id: str
    browse_name: str
    description: str
    properties: tuple[NodeVariable, ...]

    def property_key(self, prop: NodeVariable) -> str:
        return f"{self.id}/{prop.id}"


@dataclass(frozen=True, slots=True)
class NodeMap:
    name: str
    path: str  # the file it was loaded from, for messages
    site: tuple[NodeVariable, ...]
    pack: tuple[NodeVariable, ...]
    arrays: tuple[ArrayGroup, ...]
    identity: IdentityGroup


@dataclass(frozen=True, slots=True)
class GatewayProperty:
    """A property of the gateway object (ns=<ns>;s=gateway/<id>), fixed while the server runs."""

    id: str
    browse_name: str
    data_type: str  # an OPC UA DataType name of namespace 0
    description: str


GATEWAY_PROPERTIES = (
    GatewayProperty("software_version", "SoftwareVersion", "String",
                    "version of the bms-gateway software serving this address space"),
    GatewayProperty("site_name", "SiteName", "String",
                    "the site this gateway serves (setting site_name), also the browse name of the site object"),
    GatewayProperty("node_map", "NodeMap", "String",
                    "the node map laying out this address space (setting [opcua] map, a file in mappings/opcua)"),
    GatewayProperty("start_time", "StartTime", "UtcTime", "when the OPC UA output started (built this address space)"),
)


def site_path(key: str = "") -> str:
    return f"{SITE_PATH}/{key}" if key else SITE_PATH


def pack_path(pack_id: str, key: str = "") -> str:
    return f"{PACKS_PATH}/{pack_id}/{key}" if key else f"{PACKS_PATH}/{pack_id}"


def gateway_path(key: str = "") -> str:
    return f"{GATEWAY_PATH}/{key}" if key else GATEWAY_PATH


def type_path(type_name: str, key: str = "") -> str:
    """An object type or enumeration (types/PackType) or one of its InstanceDeclarations (types/PackType/soc)."""
    return f"{TYPES_PATH}/{type_name}/{key}" if key else f"{TYPES_PATH}/{type_name}"

