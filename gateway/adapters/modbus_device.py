"""One Modbus unit id as a pymodbus device context, served from a precomputed register image.

Input registers (FC4) are slices of the unit's latest image (encoded once per snapshot by the
output, never per request). Holding registers (FC3) are the unit's command block (gateway.adapters.modbus_commands)
and, on the site unit, the SunSpec models from address 40000. Writes (FC6, FC16) go to the command path, which
refuses them with exception 01 unless commands are enabled for the client; coils, discrete inputs and FC22/23 are
refused with 01.
A unit id nobody serves gets exception 0B (gateway target device failed to respond).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray
from pymodbus.constants import ExcCodes
from pymodbus.datastore.context import ModbusBaseDeviceContext

from gateway.adapters.modbus_commands import UnitCommands
from gateway.adapters.modbus_sunspec import SunSpecRegion
from gateway.adapters.modbus_sunspec_commands import SunSpecCommands
from gateway.codec.register_map import ReservedBlock

READ_INPUT_REGISTERS = 4
READ_HOLDING_REGISTERS = 3
WRITE_SINGLE_REGISTER = 6
WRITE_MULTIPLE_REGISTERS = 16
MAX_READ_COUNT = 125  # Modbus application protocol v1.1b3, 6.3 / 6.4

log = logging.getLogger(__name__)


class RegisterImageDevice(ModbusBaseDeviceContext):
    def __init__(self, image: NDArray[np.uint16], holding_reserved: ReservedBlock, commands: UnitCommands,
                 sunspec: SunSpecRegion | None = None, sunspec_commands: SunSpecCommands | None = None) -> None:
        self._image = image
        self._holding_reserved = holding_reserved
        self.commands = commands
        self._sunspec = sunspec
        self._sunspec_commands = sunspec_commands
        self._written: list[int] = []  # FC6 echoes the value it wrote

    @property
    def image(self) -> NDArray[np.uint16]:
        return self._image

    def publish(self, image: NDArray[np.uint16]) -> None:
        """Swap in the image of a newer snapshot (requests already answered keep the old one)."""
        self._image = image

    def reset(self) -> None:
        """Nothing to reset: the image belongs to the snapshot hub."""

    def getValues(self, func_code: int, address: int, count: int = 1) -> list[int] | ExcCodes:  # noqa: N802
        if func_code == WRITE_SINGLE_REGISTER:
            return self._written[:count]
        if func_code not in (READ_INPUT_REGISTERS, READ_HOLDING_REGISTERS):
            return ExcCodes.ILLEGAL_FUNCTION  # coils, discrete inputs, mask write / read-write (FC22/23)
        if not 1 <= count <= MAX_READ_COUNT:
            return ExcCodes.ILLEGAL_VALUE
        if func_code == READ_HOLDING_REGISTERS:
            if self._sunspec is not None and self._sunspec.contains(address, count):
                return self._sunspec.read(address, count)
            reserved = self._holding_reserved.contains(address, count)
            return self.commands.read(address, count) if reserved else ExcCodes.ILLEGAL_ADDRESS
        image = self._image
        if address < 0 or address + count > image.size:
            return ExcCodes.ILLEGAL_ADDRESS
        values: list[int] = image[address : address + count].tolist()
        return values

    def setValues(  # noqa: N802
        self, func_code: int, address: int, values: list[int] | list[bool]
    ) -> ExcCodes | None:
        if func_code not in (WRITE_SINGLE_REGISTER, WRITE_MULTIPLE_REGISTERS):
            return ExcCodes.ILLEGAL_FUNCTION  # coils, mask write (FC22), read/write multiple (FC23)
        registers = [int(v) for v in values]
        self._written = registers
        if self._sunspec is not None and self._sunspec.contains(address, len(registers)):
            if self._sunspec_commands is None:
                return ExcCodes.ILLEGAL_FUNCTION
            return self._sunspec_commands.write(address, registers)
        return self.commands.write(address, registers)


class UnknownUnitDevice(ModbusBaseDeviceContext):
    """Answers any request to a unit id nobody serves with exception 0B, logging each id once."""

    def __init__(self) -> None:
        self._reported: set[int] = set()

    def for_unit(self, unit_id: int) -> UnknownUnitDevice:
        if unit_id not in self._reported:
            self._reported.add(unit_id)
            log.warning("Modbus request for unit id %d, which is not configured: answering exception 0B "
                        "(this is logged once per unit id)", unit_id)
        return self

    def reset(self) -> None:
        """Nothing to reset."""

    def getValues(self, func_code: int, address: int, count: int = 1) -> ExcCodes:  # noqa: N802
        return ExcCodes.GATEWAY_NO_RESPONSE

    def setValues(  # noqa: N802
        self, func_code: int, address: int, values: list[int] | list[bool]
    ) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE
