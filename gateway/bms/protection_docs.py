"""The protection table as documentation: each rule with its expression and its value for the reference cells.

`python -m gateway.bms.protection_docs --write docs/protection.md` refreshes the generated part of the page;
a test keeps it current.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.bms.cell_model import load_cell_model
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.protection_rules import ProtectionRules, build_rules, load_protection_table
from gateway.bms.protection_spec import ActionSpec, ProtectionTableSpec, RuleSpec
from gateway.settings import DEFAULT_MAPPINGS_DIR, EngineSettings

BEGIN = "<!-- BEGIN GENERATED: protection rules -->"
END = "<!-- END GENERATED: protection rules -->"
REFERENCE_CELLS = ("nmc-200ah", "lfp-230ah")
SERIES_CELLS = 32
_SIGN = {"above": ">", "below": "<"}


def _resolved(cell_id: str, table: ProtectionTableSpec) -> ProtectionRules:
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, cell_id)
    parameters = PackParameters.build([PackLayout(cell_id, SERIES_CELLS, 8, model)])
    engine = EngineSettings()
    return build_rules(parameters, engine.stale_timeout_s, 1.0 / engine.tick_hz, table,
                       engine.temperature_stale_timeout_s)


def _action(action: ActionSpec) -> str:
    parts = []
    if action.charge < 1.0:
        parts.append(f"charge x {action.charge:g}")
    if action.discharge < 1.0:
        parts.append(f"discharge x {action.discharge:g}")
    if action.open_contactor:
        parts.append("open contactor")
    return ", ".join(parts) or "none"


def _condition(rule: RuleSpec) -> str:
    text = f"{_SIGN[rule.direction]} `{rule.threshold}`"
    if rule.guard is not None:
        text += f" while `{rule.guard.quantity.value}` {_SIGN[rule.guard.direction]} `{rule.guard.threshold}`"
    return text


def render_markdown(table: ProtectionTableSpec) -> str:
    resolved = {cell: _resolved(cell, table) for cell in REFERENCE_CELLS}
    header = "| code | severity | quantity | raises when | clear | delay | action | " \
        + " | ".join(f"{cell} ({SERIES_CELLS}S)" for cell in REFERENCE_CELLS) + " |"
    lines = [header, "|" + "---|" * (7 + len(REFERENCE_CELLS))]
    for index, rule in enumerate(table.rules):
        action = rule.action or getattr(table.defaults, rule.severity)
        clear = rule.clear if isinstance(rule.clear, str) else f"{rule.clear:g}"
        values = [f"{resolved[cell][index].threshold[0]:.4g}" for cell in REFERENCE_CELLS]
        lines.append(f"| {rule.code} | {rule.severity} | `{rule.quantity.value}` | {_condition(rule)} | {clear} | "
                     f"{rule.delay_s:g} s | {_action(action)} | " + " | ".join(values) + " |")
    thermal = table.thermal
    lines += ["", "| thermal request | on at | off at |", "|---|---|---|",
              f"| cooling | hottest ≥ `{thermal.cooling_on}` | hottest ≤ `{thermal.cooling_off}` |",
              f"| heating | coldest ≤ `{thermal.heating_on}` | coldest ≥ `{thermal.heating_off}` |"]
    return "\n".join(lines) + "\n"


def update_document(text: str, generated: str) -> str:
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return f"{before}{BEGIN}\n{generated}{END}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, required=True, help="the markdown page to refresh")
    arguments = parser.parse_args()
    generated = render_markdown(load_protection_table(DEFAULT_MAPPINGS_DIR))
    arguments.write.write_text(update_document(arguments.write.read_text(encoding="utf-8"), generated),
                               encoding="utf-8")


if __name__ == "__main__":
    main()
