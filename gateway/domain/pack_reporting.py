"""What a pack's protocol reports of the measurement model, where the gateway has to adapt to less than usual."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.domain.measurement import ArrayField, BoundField, IdentityField, ScalarField

# What a pack's own BMS says about its safety: once its protocol carries one, a pack that stops sending it is stale.
SAFETY_REPORTS = frozenset({
    ScalarField.MIN_CELL_VOLTAGE_V, ScalarField.MAX_CELL_VOLTAGE_V, ScalarField.MIN_TEMPERATURE_C,
    ScalarField.MAX_TEMPERATURE_C, ScalarField.PACK_CHARGE_VOLTAGE_LIMIT_V, ScalarField.PACK_CHARGE_CURRENT_LIMIT_A,
    ScalarField.PACK_DISCHARGE_CURRENT_LIMIT_A, ScalarField.PACK_DISCHARGE_VOLTAGE_LIMIT_V,
    ScalarField.PACK_CHARGE_ENABLED, ScalarField.PACK_DISCHARGE_ENABLED, ScalarField.PACK_PROTECTION_FLAGS,
    ScalarField.PACK_WARNING_FLAGS,
})
_EXTREMES = frozenset({ScalarField.MIN_CELL_VOLTAGE_V, ScalarField.MAX_CELL_VOLTAGE_V,
                       ScalarField.MIN_TEMPERATURE_C, ScalarField.MAX_TEMPERATURE_C})


@dataclass(frozen=True)
class PackReporting:
    """The defaults describe a pack that reports every cell and sensor, its contactor and its identity."""

    cells_from_extremes: bool = False  # only the lowest and highest cell voltage and temperature: the cell and
    # sensor arrays are made up from them (gateway/runtime/cells_from_extremes.py, docs/battery-can.md)
    contactor_reported: bool = True  # False: the pack switches its contactor itself; taken as closed while online
    identity_reported: bool = True  # False: admission cannot check who the pack is (docs/admission.md)
    watched: frozenset[ScalarField] = frozenset()  # safety reports whose age counts in the pack's data age

    @classmethod
    def of(cls, fields: Iterable[BoundField]) -> PackReporting:
        """From every field a pack's protocol carries from the pack."""
        carried = frozenset(fields)
        return cls(
            cells_from_extremes=ArrayField.CELL_VOLTAGE_V not in carried and carried >= _EXTREMES,
            contactor_reported=ScalarField.CONTACTOR_STATE in carried,
            identity_reported=any(isinstance(field, IdentityField) for field in carried),
            watched=frozenset(f for f in carried if isinstance(f, ScalarField) and f in SAFETY_REPORTS),
        )
