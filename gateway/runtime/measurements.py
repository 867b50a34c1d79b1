"""The aggregator: folds decoded frames into per-pack arrays, stamping every signal's arrival time."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gateway.bms.inputs import BmsInputs
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.pack_reports import PackReports
from gateway.codec.can_decoder import DecodedFrame
from gateway.domain.identity import PackIdentity
from gateway.domain.measurement import ArrayField, IdentityField, ScalarField
from gateway.domain.pack_reporting import SAFETY_REPORTS
from gateway.domain.states import Chemistry, ContactorState
from gateway.runtime import cells_from_extremes

_REQUIRED_SCALARS = (ScalarField.PACK_VOLTAGE_V, ScalarField.PACK_CURRENT_A)


class MeasurementTable:
    def __init__(self, parameters: PackParameters) -> None:
        packs, cells = parameters.cell_mask.shape
        sensors = parameters.sensor_mask.shape[1]
        self._parameters = parameters
        self._arrays = {
            ArrayField.CELL_VOLTAGE_V: np.full((packs, cells), np.nan),
            ArrayField.TEMPERATURE_C: np.full((packs, sensors), np.nan),
        }
        self._array_times = {field: np.full(values.shape, -np.inf) for field, values in self._arrays.items()}
        self._scalars = {field: np.full(packs, np.nan) for field in ScalarField}
        self._scalar_times = {field: np.full(packs, -np.inf) for field in ScalarField}
        self._identity_parts: list[dict[IdentityField, float]] = [{} for _ in range(packs)]
        self._scalars[ScalarField.CONTACTOR_STATE][:] = ContactorState.UNKNOWN
        self._contactor_not_reported = ~parameters.contactor_reported
        # per safety report, the packs whose protocol carries it: their data is stale when it is
        watching = {field: np.array([field in layout.reporting.watched for layout in parameters.layouts], dtype=bool)
                    for field in SAFETY_REPORTS}
        self._watched = {field: mask for field, mask in watching.items() if mask.any()}
        self._by_extremes = np.flatnonzero(parameters.cells_from_extremes)
        layouts = [parameters.layouts[pack] for pack in self._by_extremes]
        self._extremes_counts = (np.array([layout.series_cells for layout in layouts], dtype=np.int64),
                                 np.array([layout.temperature_sensors for layout in layouts], dtype=np.int64))
        self._previous_inputs_time = -np.inf
        self._peak_discharge_a = [math.nan] * packs  # plain floats: updated per frame, on the hot path
        self.current_observer: Callable[[int, float], None] | None = None  # sees every current reading at once

    def apply(self, pack: int, decoded: DecodedFrame, now: float) -> None:
        for item in decoded.values:
            field = item.field
            if isinstance(field, ArrayField):
                values = self._arrays[field]
                if 0 <= item.index < values.shape[1]:
                    values[pack, item.index] = item.value
                    self._array_times[field][pack, item.index] = now
            elif isinstance(field, ScalarField):
                self._scalars[field][pack] = item.value
                self._scalar_times[field][pack] = now
                if field is ScalarField.PACK_CURRENT_A:
                    peak = self._peak_discharge_a[pack]
                    if -item.value > peak or math.isnan(peak):
                        self._peak_discharge_a[pack] = -item.value
                    if self.current_observer is not None:
                        self.current_observer(pack, item.value)
            elif isinstance(field, IdentityField):
                self._identity_parts[pack][field] = item.value

    def temperature_age_s(self, now: float) -> np.ndarray:
        oldest = np.where(self._parameters.sensor_mask, self._array_times[ArrayField.TEMPERATURE_C], np.inf)
        age: np.ndarray = now - oldest.min(axis=1)
        return age

    def data_age_s(self, now: float) -> np.ndarray:
        """Age of the oldest cell voltage, pack voltage or current reading of each pack, or of a safety report its
        protocol carries (the pack's own limits, for example)."""
        oldest = np.where(self._parameters.cell_mask, self._array_times[ArrayField.CELL_VOLTAGE_V], np.inf)
        oldest = oldest.min(axis=1)
        for field in _REQUIRED_SCALARS:
            oldest = np.minimum(oldest, self._scalar_times[field])
        for field, watching in self._watched.items():
            oldest = np.where(watching, np.minimum(oldest, self._scalar_times[field]), oldest)
        age: np.ndarray = now - oldest
        return age

    def _make_up_cells(self) -> None:
        """The cell and sensor arrays of packs that report only their extremes (runtime/cells_from_extremes.py)."""
        packs = self._by_extremes
        if not len(packs):
            return
        s, f = self._scalars, ScalarField
        cells, sensors = self._extremes_counts
        volts = cells_from_extremes.cell_voltages(s[f.MIN_CELL_VOLTAGE_V][packs], s[f.MAX_CELL_VOLTAGE_V][packs],
                                                  s[f.PACK_VOLTAGE_V][packs], cells,
                                                  self._arrays[ArrayField.CELL_VOLTAGE_V].shape[1])
        self._set_made_up(ArrayField.CELL_VOLTAGE_V, volts, f.MIN_CELL_VOLTAGE_V, f.MAX_CELL_VOLTAGE_V, cells)
        temps = cells_from_extremes.temperatures(s[f.MIN_TEMPERATURE_C][packs], s[f.MAX_TEMPERATURE_C][packs],
                                                 s[f.PACK_TEMPERATURE_C][packs], sensors,
                                                 self._arrays[ArrayField.TEMPERATURE_C].shape[1])
        self._set_made_up(ArrayField.TEMPERATURE_C, temps, f.MIN_TEMPERATURE_C, f.MAX_TEMPERATURE_C, sensors)

    def _set_made_up(self, field: ArrayField, values: np.ndarray, lowest: ScalarField, highest: ScalarField,
                     counts: np.ndarray) -> None:
        packs, times = self._by_extremes, self._scalar_times
        arrived = cells_from_extremes.arrival_times(times[lowest][packs], times[highest][packs], counts,
                                                    values.shape[1])
        self._arrays[field][packs] = values
        self._array_times[field][packs] = np.where(np.isnan(arrived), -np.inf, arrived)

    def _reports(self) -> PackReports | None:
        if not self._watched:
            return None
        s = self._scalars
        f = ScalarField
        return PackReports(
            s[f.PACK_CHARGE_VOLTAGE_LIMIT_V].copy(), s[f.PACK_CHARGE_CURRENT_LIMIT_A].copy(),
            s[f.PACK_DISCHARGE_CURRENT_LIMIT_A].copy(), s[f.PACK_DISCHARGE_VOLTAGE_LIMIT_V].copy(),
            s[f.PACK_CHARGE_ENABLED].copy(), s[f.PACK_DISCHARGE_ENABLED].copy(), s[f.PACK_PROTECTION_FLAGS].copy(),
            s[f.PACK_WARNING_FLAGS].copy())

    def inputs(self, now: float) -> BmsInputs:
        """A consistent copy of everything the BMS step needs; values older than this call stay stamped."""
        self._make_up_cells()
        voltage_times = self._array_times[ArrayField.CELL_VOLTAGE_V]
        new = voltage_times > self._previous_inputs_time
        self._previous_inputs_time = now
        peak = np.array(self._peak_discharge_a)
        self._peak_discharge_a = [math.nan] * len(peak)
        return BmsInputs(
            cell_voltage_v=self._arrays[ArrayField.CELL_VOLTAGE_V].copy(),
            temperature_c=self._arrays[ArrayField.TEMPERATURE_C].copy(),
            pack_voltage_v=self._scalars[ScalarField.PACK_VOLTAGE_V].copy(),
            pack_current_a=self._scalars[ScalarField.PACK_CURRENT_A].copy(),
            contactor_state=np.where(self._contactor_not_reported, int(ContactorState.CLOSED),
                                     self._scalars[ScalarField.CONTACTOR_STATE]).astype(np.int64),
            pack_fault_flags=np.nan_to_num(self._scalars[ScalarField.PACK_FAULT_FLAGS]).astype(np.int64),
            data_age_s=self.data_age_s(now),
            temperature_age_s=self.temperature_age_s(now),
            cell_voltage_new=new,
            peak_discharge_current_a=peak,
            reports=self._reports(),
        )

    def forget_identity(self, pack: int) -> None:
        """Until the pack answers the next identity request, its identity is unknown."""
        self._identity_parts[pack] = {}

    def identity(self, pack: int) -> PackIdentity | None:
        parts = self._identity_parts[pack]
        if len(parts) < len(IdentityField):
            return None
        f = IdentityField
        try:
            chemistry = Chemistry(int(parts[f.CHEMISTRY]))
        except ValueError:
            chemistry = Chemistry.UNKNOWN
        return PackIdentity(
            serial_number=f"{int(parts[f.SERIAL_NUMBER]):010d}",
            firmware_version=f"{int(parts[f.FIRMWARE_MAJOR])}.{int(parts[f.FIRMWARE_MINOR])}."
            f"{int(parts[f.FIRMWARE_PATCH])}",
            chemistry=chemistry,
            cell_count=int(parts[f.CELL_COUNT]),
            sensor_count=int(parts[f.SENSOR_COUNT]),
            nominal_capacity_ah=parts[f.NOMINAL_CAPACITY_AH],
        )
