"""The protection rules as alarm conditions: unique, stable names; limit or off-normal types; all documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gateway.bms.protection import OperatorRequests, ProtectionState
from gateway.domain.events import EventKind
from gateway.domain.operator_actions import OperatorAction
from gateway.runtime.condition_catalogue import condition_catalogue
from gateway.runtime.operator_commands import OperatorCommand, gather, outcomes
from tests.bms.helpers import parameters, rules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "opcua.md"


def test_every_rule_is_one_condition_with_a_unique_name() -> None:
    specs = condition_catalogue(rules(parameters()))
    names = [spec.name for spec in specs]
    assert len(names) == len(set(names))
    assert [spec.rule for spec in specs] == list(range(len(specs)))
    by_name = {spec.name: spec for spec in specs}
    assert by_name["cell_overvoltage_trip"].latching
    assert not by_name["cell_overvoltage_alarm"].latching
    assert by_name["cell_undervoltage_alarm"].direction == "below"
    assert by_name["insulation_fault_alarm"].off_normal
    assert not by_name["cell_overtemperature_alarm"].off_normal
    assert "sensor_fault_alarm_frozen_readings" in by_name  # several rules of one code and severity


def test_docs_list_every_condition_of_the_default_table() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [spec.name for spec in condition_catalogue(rules(parameters())) if f"| `{spec.name}` |" not in text]
    assert not missing, f"docs/opcua.md lacks the conditions {missing}"


def test_a_rule_acknowledgement_acknowledges_that_rule_only() -> None:
    p = parameters()
    table = rules(p)
    present = np.zeros((len(table), p.pack_count), dtype=bool)
    present[[0, 1], 0] = True
    before = ProtectionState(np.zeros_like(present, dtype=float), present, np.zeros_like(present),
                             np.zeros_like(present), np.zeros_like(present, dtype=float))
    tick = gather([OperatorCommand("p0", OperatorAction.ACKNOWLEDGE, "opcua otto", rule=1),
                   OperatorCommand("p0", OperatorAction.ACKNOWLEDGE, "opcua otto", rule=5)], ("p0", "p1"), len(table))
    assert isinstance(tick.requests, OperatorRequests)
    asked = tick.requests.acknowledge
    assert asked[[1, 5], 0].all()
    assert asked.sum() == 2  # those two rules of p0, nothing of p1 or of p0's other rules
    acknowledged = asked & before.present
    after = ProtectionState(before.pending_s, before.active, before.latched, acknowledged, before.clear_s)
    results, events = outcomes(tick, after, table, 0.0)
    assert [outcome for _, outcome in results] == [
        "done", f"refused: {table[5].code.label} ({table[5].severity.name.lower()}) is not present"]
    assert all(event.kind is EventKind.COMMAND for event in events)
