"""The file format of a protection table (mappings/protection/<name>.yaml), validated with pydantic.

docs/protection.md explains every field and the default table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.bms.quantities import Quantity
from gateway.bms.threshold_expression import ThresholdExpression, parse_threshold
from gateway.domain.alarms import AlarmCode

SeverityName = Literal["warning", "alarm", "trip"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _expression(value: object) -> ThresholdExpression:
    if isinstance(value, ThresholdExpression):
        return value
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("write a number or `[factor *] reference [+|- offset]`")  # noqa: TRY004 (pydantic wants it)
    return parse_threshold(value)


class ActionSpec(_Spec):
    """What an active (or latched) rule does: factors on the current limits, a contactor-open request."""

    charge: float = Field(default=1.0, ge=0.0, le=1.0, description="multiplies the charge limit (0: none)")
    discharge: float = Field(default=1.0, ge=0.0, le=1.0, description="multiplies the discharge limit")
    open_contactor: bool = False


class ActionDefaults(_Spec):
    warning: ActionSpec = ActionSpec()
    alarm: ActionSpec = ActionSpec(charge=0.0, discharge=0.0)
    trip: ActionSpec = ActionSpec(charge=0.0, discharge=0.0, open_contactor=True)


def _optional_expression(value: object) -> ThresholdExpression | None:
    return None if value is None else _expression(value)


class _DirectedSpec(_Spec):
    """A quantity compared `above` or `below` a threshold (exactly one of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    quantity: Quantity
    above: ThresholdExpression | None = None
    below: ThresholdExpression | None = None

    _parse = field_validator("above", "below", mode="before")(_optional_expression)

    @model_validator(mode="after")
    def _one_direction(self) -> _DirectedSpec:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` or `below`")
        return self

    @property
    def direction(self) -> Literal["above", "below"]:
        return "above" if self.above is not None else "below"

    @property
    def threshold(self) -> ThresholdExpression:
        expression = self.above if self.above is not None else self.below
        assert expression is not None  # the validator guarantees one
        return expression


class GuardSpec(_DirectedSpec):
    """A second condition that must also hold (no delay, no hysteresis of its own)."""


class RuleSpec(_DirectedSpec):
    code: str
    severity: SeverityName
    clear: float | str = Field(default=0.0, description="hysteresis toward the safe side: an amount, or `N%` "
                                                        "of the threshold")
    delay_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    guard: GuardSpec | None = Field(default=None, alias="while")
    action: ActionSpec | None = None  # None: the severity's default

    @field_validator("code")
    @classmethod
    def _known_code(cls, value: str) -> str:
        labels = [code.label for code in AlarmCode]
        if value not in labels:
            raise ValueError(f"unknown alarm code {value!r}; valid codes: {', '.join(labels)}")
        return value

    @field_validator("clear")
    @classmethod
    def _clear(cls, value: float | str) -> float | str:
        if isinstance(value, str):
            if not value.endswith("%"):
                raise ValueError(f"{value!r}: write an amount (0.03) or a percentage of the threshold ('10%')")
            float(value[:-1])
        elif value < 0:
            raise ValueError("the hysteresis is an amount toward the safe side: give a positive number")
        return value

    @property
    def alarm_code(self) -> AlarmCode:
        return AlarmCode[self.code.upper()]


class SensorSpec(_Spec):
    thermistor_open_c: float = -40.0
    thermistor_shorted_c: float = 120.0
    frozen_current_span_c_rate: float = Field(default=0.25, gt=0.0)
    temperature_rise_fast_s: float = Field(default=10.0, gt=0.0)
    temperature_rise_slow_s: float = Field(default=40.0, gt=0.0)
    model_residual_time_constant_s: float = Field(default=120.0, gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> SensorSpec:
        if self.temperature_rise_slow_s <= self.temperature_rise_fast_s:
            raise ValueError("temperature_rise_slow_s must be longer than temperature_rise_fast_s")
        return self


class ThermalSpec(_Spec):
    """Cooling and heating demand with hysteresis (on at one temperature, off at another)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    cooling_on: ThresholdExpression = parse_threshold("cell.charge_temperature_max_c - 10")
    cooling_off: ThresholdExpression = parse_threshold("cell.charge_temperature_max_c - 15")
    heating_on: ThresholdExpression = parse_threshold("cell.charge_temperature_min_c + 5")
    heating_off: ThresholdExpression = parse_threshold("cell.charge_temperature_min_c + 10")

    _parse = field_validator("cooling_on", "cooling_off", "heating_on", "heating_off", mode="before")(_expression)


class ProtectionTableSpec(_Spec):
    version: int = Field(ge=1)
    description: str = ""
    contactor_open_timeout_s: float = Field(default=2.0, gt=0.0, description="a contactor still closed this long "
                                                                             "after an open request is faulty")
    defaults: ActionDefaults = ActionDefaults()
    sensors: SensorSpec = SensorSpec()
    thermal: ThermalSpec = ThermalSpec()
    rules: list[RuleSpec] = Field(min_length=1)
