"""The settings of the limit pipeline (limits.py), with their defaults; docs/limits.md explains each stage."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.bms.cell_model import CellModel
from gateway.bms.derating import DeratingTable, window_table
from gateway.bms.power_prediction import DEFAULT_NEWTON_STEPS


@dataclass(frozen=True)
class LimitsSettings:
    """The stages of the pipeline and their defaults (docs/limits.md explains each)."""

    # Temperature: a table per cell model (by cell_id) and direction; a model without one gets 0 outside its
    # datasheet window, a linear rise to 1 over `temperature_ramp_c` inside each edge, and 1 in between.
    temperature_ramp_c: float = 5.0
    charge_derating: Mapping[str, DeratingTable] = field(default_factory=lambda: MappingProxyType({}))
    discharge_derating: Mapping[str, DeratingTable] = field(default_factory=lambda: MappingProxyType({}))
    voltage_taper_v: float = 0.10  # linear taper over this distance to the cell voltage limit
    # SoC tapers (start, end): factor 1 at start, 0 at end; charge on the fullest cell, discharge on the emptiest
    charge_soc_taper: tuple[float, float] = (0.9, 1.0)
    discharge_soc_taper: tuple[float, float] = (0.1, 0.0)
    ramp_up_c_rate_per_s: float = 0.1  # a rising limit grows at most this x the nominal capacity per second
    newton_steps: int = DEFAULT_NEWTON_STEPS  # refinements of the model prediction on the full OCV curve
    # The model prediction covers at most this many cells per step; a larger site refreshes its packs in turns
    # (256 packs of 32 cells: each every 4th step). This bounds the cost of a step whatever the site's size.
    predicted_cells_per_step: int = 2048

    def __post_init__(self) -> None:
        if not self.temperature_ramp_c > 0.0:
            raise ValueError(f"temperature_ramp_c must be above 0 degC, got {self.temperature_ramp_c}")
        if not self.voltage_taper_v > 0.0:
            raise ValueError(f"voltage_taper_v must be above 0 V, got {self.voltage_taper_v}")
        for name in ("charge_soc_taper", "discharge_soc_taper"):
            start, end = getattr(self, name)
            if start == end or not (0.0 <= start <= 1.0 and 0.0 <= end <= 1.0):
                raise ValueError(f"{name} must be two different SoC values within 0..1, got {(start, end)}")
        if not (self.ramp_up_c_rate_per_s > 0.0 and math.isfinite(self.ramp_up_c_rate_per_s)):
            raise ValueError(f"ramp_up_c_rate_per_s must be a finite rate above 0, got {self.ramp_up_c_rate_per_s}")
        if self.newton_steps < 0:
            raise ValueError(f"newton_steps must be 0 or more, got {self.newton_steps}")
        if self.predicted_cells_per_step < 1:
            raise ValueError(f"predicted_cells_per_step must be 1 or more, got {self.predicted_cells_per_step}")

    def derating_tables(self, model: CellModel) -> tuple[DeratingTable, DeratingTable]:
        """The (charge, discharge) temperature tables of packs with this cell model."""
        limits = model.limits
        charge = self.charge_derating.get(model.cell_id) or window_table(*limits.charge_temperature_c,
                                                                         self.temperature_ramp_c)
        discharge = self.discharge_derating.get(model.cell_id) or window_table(*limits.discharge_temperature_c,
                                                                               self.temperature_ramp_c)
        return charge, discharge


DEFAULT_LIMITS = LimitsSettings()
