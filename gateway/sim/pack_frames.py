"""What a simulated pack says, as protected frames of its protocol (built with FrameEncoder).

Protocol-agnostic: values are keyed by measurement field, so any mapping that binds the fields works;
a field the protocol does not carry is left out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from gateway.codec.can_encoder import EncodedFrame, FrameEncoder
from gateway.domain.measurement import ArrayField, BoundField, IdentityField, ScalarField
from gateway.domain.pack_reporting import SAFETY_REPORTS
from gateway.sim.pack_bms import PackReport

FieldKey = tuple[BoundField, int]

FIRMWARE_VERSION = (1, 4, 2)


@dataclass(frozen=True)
class SimulatedIdentity:
    serial_number: int
    chemistry: int
    cell_count: int
    sensor_count: int
    nominal_capacity_ah: float
    firmware: tuple[int, int, int] = FIRMWARE_VERSION


def carried_fields(encoder: FrameEncoder, messages: Collection[str] | None = None) -> frozenset[FieldKey]:
    """Every (field, index) the protocol carries from the pack (in `messages`, if given)."""
    return frozenset(
        (bound.field, bound.index)
        for binding in encoder.protocol.messages.values()
        if binding.direction == "from_pack" and (messages is None or binding.name in messages)
        for bound in binding.bindings.values()
    )


def array_capacity(encoder: FrameEncoder, field: ArrayField) -> int:
    """How many consecutive entries (from index 0) of an array field the protocol carries."""
    carried = carried_fields(encoder)
    count = 0
    while (field, count) in carried:
        count += 1
    return count


class PackFrames:
    """The frames of the pack's messages (of `messages` only, if given: a polled pack's answer to one request)."""

    def __init__(self, encoder: FrameEncoder, node_address: int, messages: Collection[str] | None = None) -> None:
        self._encoder = encoder
        self._node = node_address
        self._carried = carried_fields(encoder, messages)

    def _encode(self, values: dict[FieldKey, float]) -> list[EncodedFrame]:
        carried = {key: value for key, value in values.items() if key in self._carried}
        return self._encoder.encode_fields(self._node, carried) if carried else []

    @property
    def carries_report(self) -> bool:
        """The protocol carries what a pack's own BMS reports (`PackReport`: extremes, own limits, alarm bits)."""
        return any((field, -1) in self._carried for field in SAFETY_REPORTS)

    def status(self, *, pack_voltage_v: float, pack_current_a: float, contactor_state: int,
               balancing_active: bool, fault_flags: int,
               cell_voltage_v: Sequence[float], report: PackReport | None = None) -> list[EncodedFrame]:
        """The status frame(s) first, then every cell-voltage page in cell order; with the pack BMS's `report`,
        its fields too (in the same frames as the status where they share one, as 0x356 does)."""
        values: dict[FieldKey, float] = {
            (ScalarField.PACK_VOLTAGE_V, -1): pack_voltage_v,
            (ScalarField.PACK_CURRENT_A, -1): pack_current_a,
            (ScalarField.CONTACTOR_STATE, -1): contactor_state,
            (ScalarField.BALANCING_ACTIVE, -1): int(balancing_active),
            (ScalarField.PACK_FAULT_FLAGS, -1): fault_flags,
        }
        if report is not None:
            values |= {(field, -1): value for field, value in report.values().items()}
        for index, voltage in enumerate(cell_voltage_v):
            values[(ArrayField.CELL_VOLTAGE_V, index)] = round(voltage, 3)
        return self._encode(values)

    def temperatures(self, temperature_c: Sequence[float]) -> list[EncodedFrame]:
        return self._encode({(ArrayField.TEMPERATURE_C, i): round(t, 1) for i, t in enumerate(temperature_c)})

    def identity(self, identity: SimulatedIdentity) -> list[EncodedFrame]:
        major, minor, patch = identity.firmware
        return self._encode({
            (IdentityField.SERIAL_NUMBER, -1): identity.serial_number,
            (IdentityField.CHEMISTRY, -1): identity.chemistry,
            (IdentityField.FIRMWARE_MAJOR, -1): major,
            (IdentityField.FIRMWARE_MINOR, -1): minor,
            (IdentityField.FIRMWARE_PATCH, -1): patch,
            (IdentityField.CELL_COUNT, -1): identity.cell_count,
            (IdentityField.SENSOR_COUNT, -1): identity.sensor_count,
            (IdentityField.NOMINAL_CAPACITY_AH, -1): identity.nominal_capacity_ah,
        })
