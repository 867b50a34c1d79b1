"""The file format of a register map (mappings/modbus/<name>.yaml), validated with pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.codec.register_encoding import RegisterType, WordOrder


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EntrySpec(_Spec):
    """One published value (or `count` consecutive values of an array source)."""

    address: int = Field(ge=0, le=0xFFFF, description="0-based protocol address of its first register")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    source: str = Field(min_length=1)
    type: RegisterType
    scale: float = Field(default=1.0, gt=0.0, allow_inf_nan=False, description="value = raw * scale")
    unit: str = ""
    count: int | None = Field(default=None, ge=1, le=0xFFFF)
    description: str = Field(min_length=1)


class ReservedSpec(_Spec):
    """Holding registers kept for future commands: read as zeros, every write refused."""

    address: int = Field(default=0, ge=0, le=0xFFFF)
    count: int = Field(ge=1, le=0x10000)
    description: str = "reserved for commands"


class UnitSpec(_Spec):
    input_registers: list[EntrySpec] = Field(min_length=1)
    holding_registers_reserved: ReservedSpec


class MapSpec(_Spec):
    version: int = Field(ge=1, le=0xFFFE, description="published in the map_version register")
    word_order: WordOrder = "big"
    description: str = ""
    site: UnitSpec
    pack: UnitSpec
