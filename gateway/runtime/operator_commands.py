"""Operator commands for the next tick: acknowledge and reset requests per pack, and what came of each.

A reset clears only the latched trips whose condition has cleared; the outcome says which codes stay latched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from gateway.bms.protection import OperatorRequests, ProtectionState
from gateway.bms.protection_rules import ProtectionRules
from gateway.domain.events import BmsEvent, EventKind


class OperatorAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESET = "reset"


@dataclass(frozen=True)
class OperatorCommand:
    pack_id: str
    action: OperatorAction
    operator: str
    id: int = 0  # the queue's id, to report the outcome back


@dataclass(frozen=True)
class TickCommands:
    requests: OperatorRequests
    operators: dict[int, str]  # pack index -> who asked
    commands: tuple[tuple[OperatorCommand, int | None], ...]  # each with its pack index (None: unknown pack)


def gather(commands: Sequence[OperatorCommand], pack_ids: tuple[str, ...]) -> TickCommands:
    packs = len(pack_ids)
    acknowledge = np.zeros(packs, dtype=bool)
    reset = np.zeros(packs, dtype=bool)
    operators: dict[int, str] = {}
    indexed = []
    for command in commands:
        pack = pack_ids.index(command.pack_id) if command.pack_id in pack_ids else None
        indexed.append((command, pack))
        if pack is None:
            continue
        (reset if command.action is OperatorAction.RESET else acknowledge)[pack] = True
        operators[pack] = command.operator
    return TickCommands(OperatorRequests(acknowledge, reset), operators, tuple(indexed))


def outcomes(tick: TickCommands, after: ProtectionState, rules: ProtectionRules, now: float,
             ) -> tuple[list[tuple[OperatorCommand, str]], list[BmsEvent]]:
    """Each command's outcome text, and a COMMAND event for each (refusals included)."""
    results = []
    events = []
    for command, pack in tick.commands:
        if pack is None:
            outcome = f"refused: no pack {command.pack_id!r} in this gateway"
        elif command.action is OperatorAction.RESET:
            still = sorted({rules[int(i)].code.label for i in np.nonzero(after.latched[:, pack])[0]})
            outcome = "done" if not still else f"refused for {', '.join(still)}: condition still present"
        else:
            outcome = "done"
        results.append((command, outcome))
        events.append(BmsEvent(time=now, pack_id=command.pack_id, kind=EventKind.COMMAND, code=command.action.value,
                               operator=command.operator, detail=outcome))
    return results, events
