"""The settings of the balancing decisions (balancing.py), with their defaults; docs/balancing.md explains each."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class BalancingSettings:
    """When and which cells the gateway asks the packs to bleed (docs/balancing.md)."""

    enabled: bool = True
    # Which cells: a cell starts bleeding when its SoC is more than target_spread_soc above the pack's lowest
    # cell, and goes on until it is within target_spread_soc - stop_hysteresis_soc of it (so that a balanced pack
    # stays within the target); and only while that lead is larger than
    # confidence_sigmas x sqrt(sigma_cell^2 + sigma_lowest^2) of the estimated SoCs (no bleeding on noise).
    target_spread_soc: float = 0.01
    stop_hysteresis_soc: float = 0.005
    confidence_sigmas: float = 2.0
    max_bleeding_cells: int = 8  # per pack at once (the pack's thermal budget); the largest excess charge first
    bleed_current_a: float = 0.1  # the pack's bleed current per cell: only used for the remaining-time estimate
    # When: no discharge (current below -rest_current_c_rate x capacity) for rest_dwell_s: charging or resting
    rest_current_c_rate: float = 0.02
    rest_dwell_s: float = 60.0
    # Temperatures: every sensor of the pack within [min, max]; once out, back in by the hysteresis
    min_temperature_c: float = 5.0
    max_temperature_c: float = 45.0
    temperature_hysteresis_c: float = 2.0
    # Top balancing: only while the pack's fullest cell is at least at min_soc (0: at any SoC); once started,
    # balancing goes on down to min_soc - min_soc_hysteresis
    min_soc: float = 0.0
    min_soc_hysteresis: float = 0.02
    decision_period_s: float = 10.0  # the cell choice is made at most this often (a stop for a block is at once)
    commandable_cells: int = 32  # cells beyond this are never chosen (a 32-bit mask in BalancingCommand)

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name != "enabled" and not math.isfinite(value):
                raise ValueError(f"{item.name} must be a finite number, got {value}")
        _check("enabled", self.enabled, isinstance(self.enabled, bool), "true or false")
        _check("target_spread_soc", self.target_spread_soc, 0.0 < self.target_spread_soc < 1.0, "above 0 and below 1")
        _check("stop_hysteresis_soc", self.stop_hysteresis_soc,
               0.0 <= self.stop_hysteresis_soc < self.target_spread_soc,
               f"0 or more and below target_spread_soc ({self.target_spread_soc})")
        _check("confidence_sigmas", self.confidence_sigmas, self.confidence_sigmas >= 0.0, "0 or more")
        _check("max_bleeding_cells", self.max_bleeding_cells,
               isinstance(self.max_bleeding_cells, int) and self.max_bleeding_cells >= 1, "a whole number, 1 or more")
        _check("bleed_current_a", self.bleed_current_a, self.bleed_current_a > 0.0, "above 0 A")
        _check("rest_current_c_rate", self.rest_current_c_rate, self.rest_current_c_rate > 0.0, "above 0 C")
        _check("rest_dwell_s", self.rest_dwell_s, self.rest_dwell_s >= 0.0, "0 s or more")
        _check("min_temperature_c", self.min_temperature_c, self.min_temperature_c < self.max_temperature_c,
               f"below max_temperature_c ({self.max_temperature_c} degC)")
        span = self.max_temperature_c - self.min_temperature_c
        _check("temperature_hysteresis_c", self.temperature_hysteresis_c,
               0.0 <= self.temperature_hysteresis_c < span / 2.0,
               f"0 degC or more and below half the temperature window ({span / 2.0} degC)")
        _check("min_soc", self.min_soc, 0.0 <= self.min_soc <= 1.0, "within 0..1")
        _check("min_soc_hysteresis", self.min_soc_hysteresis, 0.0 <= self.min_soc_hysteresis <= 1.0, "within 0..1")
        _check("decision_period_s", self.decision_period_s, self.decision_period_s >= 0.0, "0 s or more")
        _check("commandable_cells", self.commandable_cells,
               isinstance(self.commandable_cells, int) and self.commandable_cells >= 1, "a whole number, 1 or more")


def _check(name: str, value: object, valid: bool, valid_range: str) -> None:
    if not valid:
        raise ValueError(f"{name} must be {valid_range}, got {value}")


DEFAULT_BALANCING = BalancingSettings()
