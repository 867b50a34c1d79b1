"""The protection rule table: {code, severity, quantity, direction, threshold, clear, delay}.

Thresholds come from each pack's cell model; the margins below are the defaults. Comparison and
debouncing live in `protection.py`; actions (limits to zero) in `limits.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from gateway.bms.inputs import FloatArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.quantities import QUANTITY_ROWS, Quantity
from gateway.domain.alarms import AlarmCode, Severity

DELAY_TOLERANCE_S = 1e-9  # a condition held for `delay_s` raises even when the sum of the ticks' dt_s falls short


@dataclass(frozen=True)
class ProtectionRule:
    code: AlarmCode
    severity: Severity
    quantity: Quantity
    direction: Literal["above", "below"]
    threshold: FloatArray  # per pack
    clear_threshold: FloatArray  # per pack: hysteresis
    delay_s: float


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
    stale_rows: NDArray[np.intp]  # the communication-loss rules

    def __new__(cls, rules: Iterable[ProtectionRule]) -> ProtectionRules:
        table = super().__new__(cls, rules)

        def column(values: list[float]) -> FloatArray:
            return np.array(values, dtype=np.float64)[:, None]

        table.quantity_rows = np.array([QUANTITY_ROWS[rule.quantity] for rule in table], dtype=np.intp)
        table.sign = column([1.0 if rule.direction == "above" else -1.0 for rule in table])
        table.threshold = np.stack([rule.threshold for rule in table]) * table.sign
        table.clear_threshold = np.stack([rule.clear_threshold for rule in table]) * table.sign
        table.delay_s = column([rule.delay_s for rule in table]) - DELAY_TOLERANCE_S
        table.severity = column([float(rule.severity) for rule in table])
        table.stale_rows = np.array([i for i, rule in enumerate(table) if rule.code is AlarmCode.COMMUNICATION_LOSS],
                                    dtype=np.intp)
        return table


@dataclass(frozen=True)
class ProtectionMargins:
    overvoltage_warning_v: float = 0.02  # above the cell's max charge voltage
    overvoltage_alarm_v: float = 0.05
    undervoltage_warning_v: float = 0.05  # above the cell's min discharge voltage
    undervoltage_alarm_v: float = -0.05
    voltage_hysteresis_v: float = 0.03
    temperature_hysteresis_c: float = 3.0
    current_hysteresis_ratio: float = 0.9
    voltage_delay_s: float = 1.0
    temperature_delay_s: float = 2.0
    continuous_current_delay_s: float = 10.0
    pulse_current_delay_s: float = 1.0


def build_rules(parameters: PackParameters, stale_timeout_s: float, tick_period_s: float,
                margins: ProtectionMargins | None = None,
                temperature_stale_timeout_s: float | None = None) -> ProtectionRules:
    m = margins or ProtectionMargins()
    v_max, v_min = parameters.max_cell_voltage_v, parameters.min_cell_voltage_v
    t_charge_high = parameters.charge_temperature_c[:, 1]
    t_discharge_high = parameters.discharge_temperature_c[:, 1]
    t_charge_low = parameters.charge_temperature_c[:, 0]
    t_discharge_low = parameters.discharge_temperature_c[:, 0]
    ones = np.ones(parameters.pack_count)
    # Anticipate 1.5 ticks: the stale state is seen at the next tick, so the reaction is published
    # before the timeout has elapsed even when that tick runs a little late.
    anticipation_s = 1.5 * tick_period_s
    stale_after = ones * max(stale_timeout_s - anticipation_s, 0.0)
    temperature_timeout_s = max(temperature_stale_timeout_s or stale_timeout_s, stale_timeout_s)
    temperature_stale_after = ones * max(temperature_timeout_s - anticipation_s, 0.0)

    def above(code: AlarmCode, severity: Severity, quantity: Quantity, threshold: FloatArray,
              clear: FloatArray, delay: float) -> ProtectionRule:
        return ProtectionRule(code, severity, quantity, "above", threshold, clear, delay)

    def below(code: AlarmCode, severity: Severity, quantity: Quantity, threshold: FloatArray,
              clear: FloatArray, delay: float) -> ProtectionRule:
        return ProtectionRule(code, severity, quantity, "below", threshold, clear, delay)

    hv, ht, hc = m.voltage_hysteresis_v, m.temperature_hysteresis_c, m.current_hysteresis_ratio
    ov_w, ov_a = v_max + m.overvoltage_warning_v, v_max + m.overvoltage_alarm_v
    uv_w, uv_a = v_min + m.undervoltage_warning_v, v_min + m.undervoltage_alarm_v
    a, w, v, q = AlarmCode, Severity.WARNING, Severity.ALARM, Quantity
    return ProtectionRules((
        above(a.CELL_OVERVOLTAGE, w, q.MAX_CELL_VOLTAGE_V, ov_w, ov_w - hv, m.voltage_delay_s),
        above(a.CELL_OVERVOLTAGE, v, q.MAX_CELL_VOLTAGE_V, ov_a, ov_a - hv, m.voltage_delay_s),
        below(a.CELL_UNDERVOLTAGE, w, q.MIN_CELL_VOLTAGE_V, uv_w, uv_w + hv, m.voltage_delay_s),
        below(a.CELL_UNDERVOLTAGE, v, q.MIN_CELL_VOLTAGE_V, uv_a, uv_a + hv, m.voltage_delay_s),
        above(a.CELL_OVERTEMPERATURE, w, q.MAX_TEMPERATURE_C, t_charge_high, t_charge_high - ht,
              m.temperature_delay_s),
        above(a.CELL_OVERTEMPERATURE, v, q.MAX_TEMPERATURE_C, t_discharge_high, t_discharge_high - ht,
              m.temperature_delay_s),
        below(a.CELL_UNDERTEMPERATURE, w, q.MIN_TEMPERATURE_C, t_charge_low, t_charge_low + ht,
              m.temperature_delay_s),
        below(a.CELL_UNDERTEMPERATURE, v, q.MIN_TEMPERATURE_C, t_discharge_low, t_discharge_low + ht,
              m.temperature_delay_s),
        above(a.CHARGE_OVERCURRENT, w, q.CHARGE_CURRENT_A, parameters.max_charge_current_a,
              hc * parameters.max_charge_current_a, m.continuous_current_delay_s),
        above(a.CHARGE_OVERCURRENT, v, q.CHARGE_CURRENT_A, parameters.pulse_charge_current_a,
              hc * parameters.pulse_charge_current_a, m.pulse_current_delay_s),
        above(a.DISCHARGE_OVERCURRENT, w, q.DISCHARGE_CURRENT_A, parameters.max_discharge_current_a,
              hc * parameters.max_discharge_current_a, m.continuous_current_delay_s),
        above(a.DISCHARGE_OVERCURRENT, v, q.DISCHARGE_CURRENT_A, parameters.pulse_discharge_current_a,
              hc * parameters.pulse_discharge_current_a, m.pulse_current_delay_s),
        above(a.COMMUNICATION_LOSS, v, q.DATA_AGE_S, stale_after, stale_after, 0.0),
        above(a.COMMUNICATION_LOSS, v, q.TEMPERATURE_AGE_S, temperature_stale_after, temperature_stale_after, 0.0),
        above(a.SENSOR_FAULT, v, q.IMPLAUSIBLE_READINGS, ones * 0.5, ones * 0.5, 0.0),
        above(a.PACK_REPORTED_FAULT, v, q.PACK_FAULT_FLAGS, ones * 0.5, ones * 0.5, 0.0),
    ))
