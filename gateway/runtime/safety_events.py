"""The events of one tick: what changed in the protection state between two steps, as `BmsEvent`s."""

from __future__ import annotations

import numpy as np

from gateway.bms.protection import ProtectionState
from gateway.bms.protection_rules import ProtectionRules
from gateway.bms.quantities import Quantities
from gateway.domain.events import BmsEvent, EventKind


def protection_events(before: ProtectionState, after: ProtectionState, rules: ProtectionRules,
                      quantities: Quantities, pack_ids: tuple[str, ...], now: float,
                      operators: dict[int, str] | None = None) -> list[BmsEvent]:
    """Raised, cleared, latched, reset and acknowledged rules; `operators` names who asked, per pack index."""
    changes = {
        EventKind.RAISED: after.active & ~before.active,
        EventKind.CLEARED: before.active & ~after.active,
        EventKind.LATCHED: after.latched & ~before.latched,
        EventKind.RESET: before.latched & ~after.latched,
        EventKind.ACKNOWLEDGED: after.acknowledged & ~before.acknowledged,
    }
    if not any(mask.any() for mask in changes.values()):
        return []
    operators = operators or {}
    events = []
    for kind, mask in changes.items():
        for rule_index, pack in zip(*np.nonzero(mask), strict=True):
            rule = rules[int(rule_index)]
            events.append(BmsEvent(
                time=now,
                pack_id=pack_ids[int(pack)],
                kind=kind,
                code=rule.code.label,
                severity=rule.severity,
                cell=quantities.position(rule.quantity, int(pack)),
                value=float(quantities[rule.quantity][pack]),
                threshold=float(rule.threshold[pack]),
                operator=operators.get(int(pack), "") if kind in (EventKind.RESET, EventKind.ACKNOWLEDGED) else "",
                rule=int(rule_index),
            ))
    return events
