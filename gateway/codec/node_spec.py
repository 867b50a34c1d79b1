"""The file format of an OPC UA node map (mappings/opcua/<name>.yaml), validated with pydantic.

Shape only; the checks that need the snapshot model (sources, types, units) are in `node_map`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.codec.node_model import DataType

NodeIdSegment = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]{0,63}$")]
BrowseName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
UnitCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}$")]
Description = Annotated[str, Field(min_length=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnitSpec(_Spec):
    symbol: str = Field(min_length=1, description="EUInformation.displayName")
    name: str = Field(min_length=1, description="EUInformation.description")


class ValueSpec(_Spec):
    source: str = Field(min_length=1)
    data_type: DataType
    unit: UnitCode | None = None
    range: tuple[float, float] | None = None
    enum: str | None = None


class SiteVariableSpec(ValueSpec):
    id: NodeIdSegment
    browse_name: BrowseName
    description: Description


class PackVariableSpec(SiteVariableSpec):
    live: bool = True


class FlatElementSpec(ValueSpec):
    live: bool = True


class BandsSpec(_Spec):
    """The elements are the bands of a histogram: below edges[0], [edges[i-1], edges[i]), at or above edges[-1]."""

    edges: list[float] = Field(min_length=1)
    unit: UnitCode = Field(description="unit of the edges, a code under units:")
    quantity: Description = Field(description="what the edges measure, e.g. 'hottest sensor temperature'")


class ArraySpec(_Spec):
    id: NodeIdSegment
    browse_name: BrowseName
    description: Description
    element: str = Field(min_length=1, description="str.format pattern with {n}, e.g. Cell{n:02d}")
    element_description: str = Field(min_length=1, description="str.format pattern with {n} (and {band})")
    variables: list[PackVariableSpec] | None = Field(default=None, min_length=1)
    variable: FlatElementSpec | None = None
    bands: BandsSpec | None = None

    @model_validator(mode="after")
    def _one_layout(self) -> ArraySpec:
        if (self.variables is None) == (self.variable is None):
            raise ValueError("give either `variables` (an object per element) or `variable` (flat), not both")
        return self


class PropertySpec(_Spec):
    id: NodeIdSegment
    browse_name: BrowseName
    source: str = Field(min_length=1)
    data_type: DataType
    description: Description


class IdentitySpec(_Spec):
    id: NodeIdSegment = "identity"
    browse_name: BrowseName = "Identity"
    description: Description = "what the pack reports about itself"
    properties: list[PropertySpec] = Field(min_length=1)


class SiteSpec(_Spec):
    variables: list[SiteVariableSpec] = Field(min_length=1)


class PackSpec(_Spec):
    variables: list[PackVariableSpec] = Field(min_length=1)
    arrays: list[ArraySpec] = Field(default_factory=list)
    identity: IdentitySpec


class NodeMapSpec(_Spec):
    name: str = Field(min_length=1)
    units: dict[UnitCode, UnitSpec] = Field(default_factory=dict)
    site: SiteSpec
    pack: PackSpec
