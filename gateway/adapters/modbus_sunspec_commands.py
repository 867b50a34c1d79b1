"""Writes to SunSpec read-write points, through the same gate as the native command registers.

Supported: 802 AlmRst (1: acknowledge every alarm and reset the cleared trips), CtrlHb (the EMS heartbeat), SetOp
(1 connect, 2 disconnect every pack); 803 StrSetCon and 804 SetCon (1 connect, 2 disconnect that pack). The other
read-write points (DA, SocRsvMax, SoCRsvMin, SetInvState, StrSetEna, SetEna) are not writable here: exception 02.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymodbus.constants import ExcCodes

from gateway.adapters.modbus_commands import SITE, CommandGate
from gateway.codec.command_registers import acknowledge_and_reset, connection_actions
from gateway.codec.sunspec_device import BATTERY, LITHIUM_BANK, LITHIUM_STRING
from gateway.codec.sunspec_layout import ModelBlock, PointSlot, SunSpecLayout


class SunSpecCommands:
    def __init__(self, gate: CommandGate, layout: SunSpecLayout) -> None:
        self.gate = gate
        self._points = layout.writable_points()
        strings = [block for block in layout.blocks if block.model_id == LITHIUM_STRING]
        self._pack_of_block = {id(block): index for index, block in enumerate(strings)}

    def write(self, address: int, values: Sequence[int]) -> ExcCodes | None:
        client = self.gate.client()
        if isinstance(client, ExcCodes):
            return client
        if len(values) != 1 or address not in self._points:
            self.gate.record(SITE, f"sunspec register {address}", client, "refused: not a writable SunSpec point "
                             "(one register per write)")
            return ExcCodes.ILLEGAL_ADDRESS
        block, slot = self._points[address]
        raw = values[0]
        name = f"sunspec {block.model_id}.{slot.name}"
        packs = self._packs(block, slot)
        if block.model_id == BATTERY and slot.name == "CtrlHb":
            self.gate.heartbeat(raw)
            return None
        if packs is None:
            self.gate.record(SITE, name, client, "refused: this point is not writable in this gateway")
            return ExcCodes.ILLEGAL_ADDRESS
        reset = block.model_id == BATTERY and slot.name == "AlmRst"
        if raw not in ((1,) if reset else (1, 2)):
            self.gate.record(SITE, name, client, f"refused: value {raw} not accepted")
            return ExcCodes.ILLEGAL_VALUE
        actions = acknowledge_and_reset(raw) if reset else connection_actions(raw)
        return self.gate.run(client, name, packs, actions, packs[0] if len(packs) == 1 else SITE)

    def _packs(self, block: ModelBlock, slot: PointSlot) -> list[str] | None:
        """The packs a supported point acts on; None: not supported."""
        every = list(self.gate.pack_ids)
        if block.model_id == BATTERY and slot.name in ("AlmRst", "SetOp"):
            return every
        if block.model_id == LITHIUM_BANK and slot.name.endswith(".StrSetCon"):
            index = int(slot.name.split("[")[1].split("]")[0]) - 1
            return [every[index]]
        if block.model_id == LITHIUM_STRING and slot.name == "SetCon":
            return [every[self._pack_of_block[id(block)]]]
        return None
