"""Writes to SunSpec read-write points, through the same gate as the native command registers.

Supported: 802 AlmRst (1: acknowledge every alarm and reset the cleared trips), CtrlHb (the EMS heartbeat), SetOp
(1 connect, 2 disconnect every pack); 803 StrSetCon and 804 SetCon (1 connect, 2 disconnect that pack). The other
read-write points (DA, SocRsvMax, SoCRsvMin, SetInvState, StrSetEna, SetEna) are not writable here: exception 02.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pymodbus.constants import ExcCodes

from gateway.adapters.modbus_commands import SITE, CommandGate
from gateway.codec.command_registers import acknowledge_and_reset, connection_actions
from gateway.codec.sunspec_device import BATTERY, LITHIUM_BANK, LITHIUM_STRING
from gateway.codec.sunspec_layout import ModelBlock, SunSpecLayout
from gateway.domain.operator_actions import OperatorAction


@dataclass(frozen=True, slots=True)
class _Target:
    name: str  # for the event log: `sunspec <model>.<point>`
    packs: tuple[str, ...]  # what the command acts on; empty for the heartbeat
    accepted: tuple[int, ...]
    actions: Callable[[int], list[tuple[OperatorAction, float]]] | None  # None: the EMS heartbeat


class SunSpecCommands:
    def __init__(self, gate: CommandGate, layout: SunSpecLayout) -> None:
        self.gate = gate
        self._writable = layout.writable_points()
        self._targets = _supported(layout, gate.pack_ids)

    def write(self, address: int, values: Sequence[int]) -> ExcCodes | None:
        client = self.gate.client()
        if isinstance(client, ExcCodes):
            return client
        if len(values) != 1 or address not in self._writable:
            self.gate.record(SITE, f"sunspec register {address}", client, "refused: not a writable SunSpec point "
                             "(one register per write)")
            return ExcCodes.ILLEGAL_ADDRESS
        target, raw = self._targets.get(address), values[0]
        if target is None:
            block, slot = self._writable[address]
            self.gate.record(SITE, f"sunspec {block.model_id}.{slot.name}", client,
                             "refused: this point is not writable in this gateway")
            return ExcCodes.ILLEGAL_ADDRESS
        if target.actions is None:
            self.gate.heartbeat(raw)
            return None
        unit = target.packs[0] if len(target.packs) == 1 else SITE
        if raw not in target.accepted:
            self.gate.record(unit, target.name, client, f"refused: value {raw} not accepted")
            return ExcCodes.ILLEGAL_VALUE
        return self.gate.run(client, target.name, target.packs, target.actions(raw), unit)


def _supported(layout: SunSpecLayout, pack_ids: Sequence[str]) -> dict[int, _Target]:
    """The supported writable points by address."""
    every = tuple(pack_ids)
    targets: dict[int, _Target] = {}

    def add(block: ModelBlock, point: str, packs: tuple[str, ...], accepted: tuple[int, ...],
            actions: Callable[[int], list[tuple[OperatorAction, float]]] | None) -> None:
        targets[block.points[point].address] = _Target(f"sunspec {block.model_id}.{point}", packs, accepted, actions)

    strings = [block for block in layout.blocks if block.model_id == LITHIUM_STRING]
    for block in layout.blocks:
        if block.model_id == BATTERY:
            add(block, "CtrlHb", (), (), None)
            add(block, "AlmRst", every, (1,), acknowledge_and_reset)
            add(block, "SetOp", every, (1, 2), connection_actions)
        elif block.model_id == LITHIUM_BANK:
            for index, pack in enumerate(every, start=1):
                add(block, f"string[{index}].StrSetCon", (pack,), (1, 2), connection_actions)
    for block, pack in zip(strings, every, strict=True):
        add(block, "SetCon", (pack,), (1, 2), connection_actions)
    return targets
