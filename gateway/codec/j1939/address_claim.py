"""Address claim (J1939-81): the 64-bit NAME, who holds which address, Address Claimed and its Request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.codec.j1939.identifier import GLOBAL_ADDRESS, NULL_ADDRESS, J1939Id, Pgn, RawFrame
from gateway.codec.j1939.request import build_request
from gateway.errors import FrameRejected

ADDRESS_CLAIM_PRIORITY = 6
NAME_BYTES = 8

# (field, lowest bit, width) of the NAME as a 64-bit little-endian integer; bit 48 is reserved
_LAYOUT = (
    ("identity_number", 0, 21),
    ("manufacturer_code", 21, 11),
    ("ecu_instance", 32, 3),
    ("function_instance", 35, 5),
    ("function", 40, 8),
    ("vehicle_system", 49, 7),
    ("vehicle_system_instance", 56, 4),
    ("industry_group", 60, 3),
    ("arbitrary_address_capable", 63, 1),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class J1939Name:
    arbitrary_address_capable: bool
    industry_group: int
    vehicle_system_instance: int
    vehicle_system: int
    function: int
    function_instance: int
    ecu_instance: int
    manufacturer_code: int
    identity_number: int

    def __post_init__(self) -> None:
        for name, _, width in _LAYOUT:
            value = int(getattr(self, name))
            if not 0 <= value < (1 << width):
                raise ValueError(f"NAME {name} {value} does not fit in {width} bits")

    @property
    def value(self) -> int:
        """The NAME as one integer; in address arbitration the lower value wins."""
        return sum(int(getattr(self, name)) << shift for name, shift, _ in _LAYOUT)

    @classmethod
    def from_value(cls, value: int) -> J1939Name:
        if not 0 <= value < (1 << 64):
            raise ValueError(f"NAME {value} does not fit in 64 bits")
        fields = {name: (value >> shift) & ((1 << width) - 1) for name, shift, width in _LAYOUT}
        return cls(
            arbitrary_address_capable=bool(fields.pop("arbitrary_address_capable")),
            industry_group=fields["industry_group"],
            vehicle_system_instance=fields["vehicle_system_instance"],
            vehicle_system=fields["vehicle_system"],
            function=fields["function"],
            function_instance=fields["function_instance"],
            ecu_instance=fields["ecu_instance"],
            manufacturer_code=fields["manufacturer_code"],
            identity_number=fields["identity_number"],
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> J1939Name:
        if len(data) != NAME_BYTES:
            raise ValueError(f"a NAME is {NAME_BYTES} bytes, not {len(data)}")
        return cls.from_value(int.from_bytes(data, "little"))

    def to_bytes(self) -> bytes:
        return self.value.to_bytes(NAME_BYTES, "little")


def address_claimed_frame(name: J1939Name, source: int, priority: int = ADDRESS_CLAIM_PRIORITY) -> RawFrame:
    """Address Claimed from `source`; from NULL_ADDRESS (254) it is Cannot Claim."""
    return J1939Id.for_pgn(Pgn.ADDRESS_CLAIMED, source, GLOBAL_ADDRESS, priority).arbitration_id, name.to_bytes()


def address_claim_request_frame(source: int, destination: int = GLOBAL_ADDRESS) -> RawFrame:
    return build_request(Pgn.ADDRESS_CLAIMED, source, destination)


class ClaimChange(StrEnum):
    CLAIMED = "claimed"
    MOVED = "moved"
    DISPLACED = "displaced"
    LOST_ARBITRATION = "lost_arbitration"
    CANNOT_CLAIM = "cannot_claim"


@dataclass(frozen=True, slots=True)
class AddressChange:
    """`name` went from `old_address` to `new_address` (None: holds none); `rival` is the other NAME involved."""

    name: J1939Name
    kind: ClaimChange
    old_address: int | None
    new_address: int | None
    rival: J1939Name | None = None


class AddressClaimTracker:
    """Which NAME holds which address, from the Address Claimed and Cannot Claim frames seen on one bus."""

    def __init__(self) -> None:
        self._address_of: dict[J1939Name, int | None] = {}
        self._name_at: dict[int, J1939Name] = {}

    @property
    def addresses(self) -> Mapping[J1939Name, int]:
        return {name: address for name, address in self._address_of.items() if address is not None}

    def address_of(self, name: J1939Name) -> int | None:
        return self._address_of.get(name)

    def name_at(self, address: int) -> J1939Name | None:
        return self._name_at.get(address)

    def on_frame(self, frame_id: J1939Id, data: bytes) -> list[AddressChange]:
        """The changes an Address Claimed frame makes; other PGNs and repeated claims change nothing."""
        if frame_id.pgn != Pgn.ADDRESS_CLAIMED:
            return []
        if len(data) != NAME_BYTES:
            raise FrameRejected("address_claim_length", f"{len(data)} bytes")
        name = J1939Name.from_bytes(data)
        if frame_id.source == GLOBAL_ADDRESS:
            raise FrameRejected("address_claim_source", "Address Claimed from the global address")
        if frame_id.source == NULL_ADDRESS:
            return self._cannot_claim(name)
        return self._claim(name, frame_id.source)

    def _cannot_claim(self, name: J1939Name) -> list[AddressChange]:
        if name in self._address_of and self._address_of[name] is None:
            return []
        old = self._release(name)
        return [AddressChange(name, ClaimChange.CANNOT_CLAIM, old, None)]

    def _claim(self, name: J1939Name, address: int) -> list[AddressChange]:
        holder = self._name_at.get(address)
        old = self._address_of.get(name)
        if holder == name:
            return []
        if holder is not None and holder.value < name.value:
            self._release(name)
            return [AddressChange(name, ClaimChange.LOST_ARBITRATION, old, None, holder)]
        changes = []
        if holder is not None:
            self._release(holder)
            changes.append(AddressChange(holder, ClaimChange.DISPLACED, address, None, name))
        self._release(name)
        self._address_of[name] = address
        self._name_at[address] = name
        kind = ClaimChange.CLAIMED if old is None else ClaimChange.MOVED
        changes.insert(0, AddressChange(name, kind, old, address, holder))
        return changes

    def _release(self, name: J1939Name) -> int | None:
        old = self._address_of.get(name)
        if old is not None:
            del self._name_at[old]
        self._address_of[name] = None
        return old
