"""The protection rule table: {code, severity, quantity, direction, threshold, clear, delay, guard, action}.

The table is data (`mappings/protection/*.yaml`, `protection_spec.py`); its thresholds are written relative to
the cell model, the pack and the engine settings and resolved here per pack. Comparison, delays, latching and
acknowledgement live in `protection.py`; the actions' effect in `protection_actions.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from gateway.bms.inputs import BoolArray, FloatArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.protection_spec import ProtectionTableSpec, RuleSpec
from gateway.bms.quantities import QUANTITY_ROWS, Quantity
from gateway.codec.yaml_source import load_validated_mapping
from gateway.domain.alarms import AlarmCode, Severity
from gateway.settings import DEFAULT_MAPPINGS_DIR

DELAY_TOLERANCE_S = 1e-9  # a condition held for `delay_s` raises even when the sum of the ticks' dt_s falls short
MIN_CLEAR_BEFORE_RESET_S = 2.0  # a latched trip can be reset once seen cleared this long (or its delay, if longer)


Direction = Literal["above", "below"]


@dataclass(frozen=True)
class Guard:
    quantity: Quantity
    direction: Direction
    threshold: FloatArray  # per pack


@dataclass(frozen=True)
class RuleAction:
    charge_factor: float = 1.0
    discharge_factor: float = 1.0
    open_contactor: bool = False


@dataclass(frozen=True)
class ProtectionRule:
    code: AlarmCode
    severity: Severity
    quantity: Quantity
    direction: Direction
    threshold: FloatArray  # per pack
    clear_threshold: FloatArray  # per pack: hysteresis
    delay_s: float
    guard: Guard | None = None
    action: RuleAction = RuleAction()

    @property
    def latching(self) -> bool:
        return self.severity is Severity.TRIP


class ProtectionRules(tuple[ProtectionRule, ...]):
    """The rule table, plus its columns laid out once as arrays (rules x packs) for evaluating all rules at once.

    A "below" rule is evaluated as "above" on negated values and thresholds, so one comparison serves every rule.
    """

    quantity_rows: NDArray[np.intp]  # rules: the row of each rule's quantity in `Quantities.values`
    sign: FloatArray  # rules x 1: +1 for "above", -1 for "below"
    threshold: FloatArray  # rules x packs, times `sign`
    clear_threshold: FloatArray  # rules x packs, times `sign`
    delay_s: FloatArray  # rules x 1, less DELAY_TOLERANCE_S
    severity: FloatArray  # rules x 1
    code_bits: NDArray[np.int64]  # rules x 1: each rule's alarm-code bit
    stale_rows: NDArray[np.intp]  # the communication-loss rules
    latching: BoolArray  # rules x 1: trips latch
    reset_after_s: FloatArray  # rules x 1: how long the condition must be seen cleared before a reset
    guard_rows: NDArray[np.intp]  # the guarded rules
    guard_quantity_rows: NDArray[np.intp]  # per guarded rule: its guard's quantity row
    guard_threshold: FloatArray  # guarded rules x packs, times the guard's sign
    guard_sign: FloatArray  # guarded rules x 1
    action_factors: FloatArray  # rules x 2: (charge, discharge) limit factors while the rule is present
    opens_contactor: BoolArray  # rules
    spec: ProtectionTableSpec | None
    pack_count: int
    references: dict[str, FloatArray]

    def __new__(cls, rules: Iterable[ProtectionRule], spec: ProtectionTableSpec | None = None,
                references: dict[str, FloatArray] | None = None) -> ProtectionRules:
        table = super().__new__(cls, rules)
        table.spec = spec
        table.references = references or {}

        def column(values: list[float]) -> FloatArray:
            return np.array(values, dtype=np.float64)[:, None]

        table.quantity_rows = np.array([QUANTITY_ROWS[rule.quantity] for rule in table], dtype=np.intp)
        table.sign = column([1.0 if rule.direction == "above" else -1.0 for rule in table])
        table.threshold = np.stack([rule.threshold for rule in table]) * table.sign
        table.clear_threshold = np.stack([rule.clear_threshold for rule in table]) * table.sign
        table.delay_s = column([rule.delay_s for rule in table]) - DELAY_TOLERANCE_S
        table.severity = column([float(rule.severity) for rule in table])
        table.code_bits = np.array([rule.code.bit for rule in table], dtype=np.int64).reshape(-1, 1)
        table.stale_rows = np.array([i for i, rule in enumerate(table) if rule.code is AlarmCode.COMMUNICATION_LOSS],
                                    dtype=np.intp)
        table.latching = np.array([rule.latching for rule in table], dtype=bool)[:, None]
        table.reset_after_s = column([max(rule.delay_s, MIN_CLEAR_BEFORE_RESET_S) for rule in table]) \
            - DELAY_TOLERANCE_S
        guarded = [(i, rule.guard) for i, rule in enumerate(table) if rule.guard is not None]
        table.guard_rows = np.array([i for i, _ in guarded], dtype=np.intp)
        table.guard_quantity_rows = np.array([QUANTITY_ROWS[g.quantity] for _, g in guarded], dtype=np.intp)
        table.guard_sign = column([1.0 if g.direction == "above" else -1.0 for _, g in guarded]).reshape(-1, 1)
        table.pack_count = len(table[0].threshold) if table else 0
        table.guard_threshold = (np.stack([g.threshold for _, g in guarded]) if guarded
                                 else np.zeros((0, table.pack_count))) * table.guard_sign
        table.action_factors = np.array([[r.action.charge_factor, r.action.discharge_factor] for r in table],
                                        dtype=np.float64).reshape(-1, 2)
        table.opens_contactor = np.array([r.action.open_contactor for r in table], dtype=bool)
        return table

    def index_of(self, code: AlarmCode, severity: Severity) -> int | None:
        """The first rule of this code and severity, if the table has one."""
        return next((i for i, r in enumerate(self) if r.code is code and r.severity is severity), None)


DEFAULT_TABLE = "default"


def load_protection_table(mappings_dir: Path, name: str = DEFAULT_TABLE) -> ProtectionTableSpec:
    """`mappings/protection/<name>.yaml`, or the YAML file `name` names; errors name the file, key and fix."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else mappings_dir / "protection" / f"{name}.yaml"
    return load_validated_mapping(path, ProtectionTableSpec)


def threshold_references(parameters: PackParameters, stale_timeout_s: float | FloatArray, tick_period_s: float,
                         temperature_stale_timeout_s: float | None = None) -> dict[str, FloatArray]:
    """Every `threshold_expression.REFERENCES` name as per-pack values. `stale_timeout_s`: one for every pack, or
    per pack (a pack whose protocol sends only about once a second needs a longer one)."""
    ones = np.ones(parameters.pack_count)
    # Anticipate 1.5 ticks: the stale state is seen at the next tick, so the reaction is published
    # before the timeout has elapsed even when that tick runs a little late.
    anticipation_s = 1.5 * tick_period_s
    temperature_timeout_s = np.maximum(temperature_stale_timeout_s or stale_timeout_s, stale_timeout_s)
    p = parameters
    return {
        "cell.max_charge_voltage_v": p.max_cell_voltage_v,
        "cell.min_discharge_voltage_v": p.min_cell_voltage_v,
        "cell.charge_temperature_min_c": p.charge_temperature_c[:, 0],
        "cell.charge_temperature_max_c": p.charge_temperature_c[:, 1],
        "cell.discharge_temperature_min_c": p.discharge_temperature_c[:, 0],
        "cell.discharge_temperature_max_c": p.discharge_temperature_c[:, 1],
        "pack.max_charge_voltage_v": p.series_cells * p.max_cell_voltage_v,
        "pack.min_discharge_voltage_v": p.series_cells * p.min_cell_voltage_v,
        "pack.capacity_ah": p.capacity_ah,
        "pack.continuous_charge_current_a": p.max_charge_current_a,
        "pack.continuous_discharge_current_a": p.max_discharge_current_a,
        "pack.pulse_charge_current_a": p.pulse_charge_current_a,
        "pack.pulse_discharge_current_a": p.pulse_discharge_current_a,
        "engine.stale_after_s": ones * np.maximum(stale_timeout_s - anticipation_s, 0.0),
        "engine.temperature_stale_after_s": ones * np.maximum(temperature_timeout_s - anticipation_s, 0.0),
    }


def _clear_threshold(spec: RuleSpec, threshold: FloatArray) -> FloatArray:
    amount = abs(threshold) * float(spec.clear[:-1]) / 100.0 if isinstance(spec.clear, str) else spec.clear
    result: FloatArray = threshold - amount if spec.direction == "above" else threshold + amount
    return result


def build_rules(parameters: PackParameters, stale_timeout_s: float | FloatArray, tick_period_s: float,
                table: ProtectionTableSpec | None = None,
                temperature_stale_timeout_s: float | None = None) -> ProtectionRules:
    """The rule table with every threshold resolved for every pack (the default table unless one is given)."""
    spec = table if table is not None else load_protection_table(DEFAULT_MAPPINGS_DIR)
    references = threshold_references(parameters, stale_timeout_s, tick_period_s, temperature_stale_timeout_s)
    packs = parameters.pack_count
    rules = []
    for rule in spec.rules:
        threshold = rule.threshold.resolve(references, packs)
        guard = None if rule.guard is None else \
            Guard(rule.guard.quantity, rule.guard.direction, rule.guard.threshold.resolve(references, packs))
        severity = Severity[rule.severity.upper()]
        action = rule.action or getattr(spec.defaults, rule.severity)
        rules.append(ProtectionRule(rule.alarm_code, severity, rule.quantity, rule.direction, threshold,
                                    _clear_threshold(rule, threshold), rule.delay_s, guard,
                                    RuleAction(action.charge, action.discharge, action.open_contactor)))
    return ProtectionRules(rules, spec, references)
