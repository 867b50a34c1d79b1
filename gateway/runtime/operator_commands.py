"""Operator commands for the next tick: acknowledge and reset requests per pack, and what came of each.

A reset clears only the latched trips whose condition has cleared; the outcome says which codes stay latched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gateway.bms.protection import OperatorRequests, ProtectionState
from gateway.bms.protection_rules import ProtectionRules
from gateway.domain.events import BmsEvent, EventKind
from gateway.domain.operator_actions import CONTROL_ACTIONS, OperatorAction


@dataclass(frozen=True)
class OperatorCommand:
    pack_id: str
    action: OperatorAction
    operator: str
    id: int = 0  # the queue's id, to report the outcome back
    value: float = math.nan  # SET_SOC: the SoC (0..1)
    rule: int | None = None  # ACKNOWLEDGE: only this rule of the pack (an OPC UA condition), None: every rule
    reply: Callable[[str], None] | None = field(default=None, compare=False, repr=False)  # gets the outcome


@dataclass(frozen=True)
class TickCommands:
    requests: OperatorRequests
    operators: dict[int, str]  # pack index -> who asked (acknowledge, reset)
    admits: dict[int, str]  # pack index -> who asks to admit the pack
    controls: tuple[tuple[OperatorCommand, int], ...]  # CONTROL_ACTIONS for known packs, in order
    commands: tuple[tuple[OperatorCommand, int | None], ...]  # each with its pack index (None: unknown pack)


def gather(commands: Sequence[OperatorCommand], pack_ids: tuple[str, ...], rule_count: int) -> TickCommands:
    packs = len(pack_ids)
    acknowledge = np.zeros((rule_count, packs), dtype=bool)
    reset = np.zeros(packs, dtype=bool)
    operators: dict[int, str] = {}
    admits: dict[int, str] = {}
    controls: list[tuple[OperatorCommand, int]] = []
    indexed = []
    for command in commands:
        pack = pack_ids.index(command.pack_id) if command.pack_id in pack_ids else None
        indexed.append((command, pack))
        if pack is None:
            continue
        if command.action is OperatorAction.ADMIT:
            admits[pack] = command.operator
            continue
        if command.action in CONTROL_ACTIONS:
            controls.append((command, pack))
            continue
        if command.action is OperatorAction.RESET:
            reset[pack] = True
        elif command.rule is None:
            acknowledge[:, pack] = True
        elif 0 <= command.rule < rule_count:
            acknowledge[command.rule, pack] = True
        operators[pack] = command.operator
    return TickCommands(OperatorRequests(acknowledge, reset), operators, admits, tuple(controls), tuple(indexed))


def outcomes(tick: TickCommands, after: ProtectionState, rules: ProtectionRules, now: float,
             admitted: Mapping[int, str] | None = None) -> tuple[list[tuple[OperatorCommand, str]], list[BmsEvent]]:
    """Each command's outcome text, and a COMMAND event for each (refusals included); `admitted`: the outcome of
    each pack's admit request (from the admission gate)."""
    results = []
    events = []
    for command, pack in tick.commands:
        if pack is None:
            outcome = f"refused: no pack {command.pack_id!r} in this gateway"
        elif command.action is OperatorAction.ADMIT:
            outcome = (admitted or {}).get(pack, "refused: admission did not run")
        elif command.action is OperatorAction.RESET:
            still = sorted({rules[int(i)].code.label for i in np.nonzero(after.latched[:, pack])[0]})
            outcome = "done" if not still else f"refused for {', '.join(still)}: condition still present"
        elif command.action is OperatorAction.ACKNOWLEDGE and command.rule is not None:
            outcome = _rule_acknowledge_outcome(command.rule, pack, after, rules)
        elif command.action is OperatorAction.SET_SOC:
            outcome = f"done: every cell starts again at {100.0 * command.value:.2f} %"
        else:
            outcome = "done"
        results.append((command, outcome))
        events.append(BmsEvent(time=now, pack_id=command.pack_id, kind=EventKind.COMMAND, code=command.action.value,
                               operator=command.operator, detail=outcome))
    return results, events


def _rule_acknowledge_outcome(rule: int, pack: int, after: ProtectionState, rules: ProtectionRules) -> str:
    if not 0 <= rule < len(rules):
        return f"refused: no rule {rule} in the protection table"
    if not after.present[rule, pack]:
        return f"refused: {rules[rule].code.label} ({rules[rule].severity.name.lower()}) is not present"
    return "done"
