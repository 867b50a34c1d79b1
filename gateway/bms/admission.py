"""Pack admission: a pack gets non-zero limits only once it is admitted (docs/admission.md).

The gate checks, per pack slot, who the pack says it is (against the slot's configured layout and the pack
registry) and how healthy it is (SoH, latched trips, cell spread, fresh data). All clear without a break for
`confirm_s`: the slot's admission is granted. An operator may grant it over a failing gate, except for a pack
with no identity, a BLOCKED pack and an IDENTITY_MISMATCH with the slot (a wrong cell count, sensor count,
chemistry or capacity makes every per-cell limit and check of the slot wrong).

A grant belongs to the identity it was given to and lasts until the slot reports another pack (serial, chemistry,
cell count, sensor count or nominal capacity changed; a firmware update is the same pack). Health reasons that
come later do not withdraw it: protection zeroes the limits of a tripped or silent pack by itself. While the
slot has no identity (`None`: not received yet, or forgotten by the engine after the pack went silent) the pack
is not admitted, but the grant is kept, so the same pack answering again is admitted at once, and another one
starts over.

Persisted per pack (`pack_document` / `with_pack_document`): the identity, the grant and who gave it. Everything
else restarts: after a restart a slot is not admitted until its pack answers the identity request.

A slot whose protocol carries no identity (`SlotExpectation.identity_reported` false: the common battery CAN
protocol's packs) has the health gate only: its pack is taken as present, is UNKNOWN_PACK where the registry
refuses unknown packs (an operator may admit it), and a swap of it goes unnoticed. Its grant is not persisted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from gateway.bms.admission_settings import (
    DEFAULT_ADMISSION,
    AdmissionSettings,
    PackRegistry,
    UnknownPackPolicy,
    serial_key,
)
from gateway.bms.inputs import BoolArray, FloatArray, IntArray
from gateway.bms.pack_figures import PackFigures
from gateway.bms.pack_parameters import PackLayout
from gateway.bms.quantities import Quantities, Quantity
from gateway.domain.events import BmsEvent, EventKind
from gateway.domain.identity import PackIdentity
from gateway.domain.states import AdmissionReason, AdmissionStatus, Chemistry

_TIME_EPSILON_S = 1e-9  # sums of tick lengths land a hair below the confirm time
_CACHE_LIMIT = 4096


# The gate waits on these by itself; the others need a change, a swap or an operator.
WAITING = AdmissionReason.NO_IDENTITY | AdmissionReason.STALE_DATA
REFUSALS = (AdmissionReason.UNKNOWN_PACK | AdmissionReason.BLOCKED | AdmissionReason.IDENTITY_MISMATCH
            | AdmissionReason.REGISTRY_MISMATCH | AdmissionReason.SOH_LOW | AdmissionReason.LATCHED_TRIP
            | AdmissionReason.CELL_SPREAD)
# An operator cannot admit over these; the last two also withdraw a restored grant.
NOT_OVERRIDABLE = AdmissionReason.NO_IDENTITY | AdmissionReason.BLOCKED | AdmissionReason.IDENTITY_MISMATCH
_VOIDS_GRANT = int(AdmissionReason.BLOCKED | AdmissionReason.IDENTITY_MISMATCH)


@dataclass(frozen=True)
class SlotExpectation:
    """What the slot's configured layout expects the pack to report."""

    pack_id: str
    cell_count: int
    sensor_count: int
    chemistry: Chemistry
    nominal_capacity_ah: float
    identity_reported: bool = True  # False: the pack's protocol carries no identity; only the health gate applies

    @classmethod
    def of(cls, layout: PackLayout) -> SlotExpectation:
        model = layout.cell_model
        return cls(layout.pack_id, layout.series_cells, layout.temperature_sensors, model.chemistry,
                   model.nominal_capacity_ah, layout.reporting.identity_reported)


@dataclass(frozen=True)
class AdmissionGate:
    """Everything the gate compares with, resolved once. `registry` None: no registry, every pack is known."""

    slots: tuple[SlotExpectation, ...]
    registry: PackRegistry | None = None
    settings: AdmissionSettings = DEFAULT_ADMISSION
    # memo of the identity findings per (slot, identity): a pure function of the frozen fields above
    _findings: dict[tuple[int, PackIdentity], tuple[tuple[AdmissionReason, str], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, layouts: Sequence[PackLayout], registry: PackRegistry | None = None,
           settings: AdmissionSettings = DEFAULT_ADMISSION) -> AdmissionGate:
        return cls(tuple(SlotExpectation.of(layout) for layout in layouts), registry, settings)

    @property
    def pack_count(self) -> int:
        return len(self.slots)

    @property
    def unidentified_reasons(self) -> AdmissionReason:
        """A pack that cannot say who it is cannot be in the registry: refused if the registry refuses unknowns."""
        registry = self.registry
        if registry is not None and registry.unknown is UnknownPackPolicy.REFUSE:
            return AdmissionReason.UNKNOWN_PACK
        return AdmissionReason(0)

    @property
    def pack_ids(self) -> tuple[str, ...]:
        return tuple(slot.pack_id for slot in self.slots)

    def identity_findings(self, pack: int, identity: PackIdentity) -> tuple[tuple[AdmissionReason, str], ...]:
        """The identity reasons of this pack in this slot, each with its text."""
        key = (pack, identity)
        found = self._findings.get(key)
        if found is None:
            if len(self._findings) >= _CACHE_LIMIT:
                self._findings.clear()
            found = self._findings[key] = _identity_findings(identity, self.slots[pack], self.registry,
                                                             self.settings.capacity_tolerance)
        return found

    def identity_reasons(self, pack: int, identity: PackIdentity | None) -> int:
        if identity is None:
            return int(AdmissionReason.NO_IDENTITY) if self.slots[pack].identity_reported \
                else int(self.unidentified_reasons)
        bits = 0
        for reason, _ in self.identity_findings(pack, identity):
            bits |= reason
        return bits


def _differences(identity: PackIdentity, where: str, tolerance: float, *, chemistry: Chemistry | None,
                 cell_count: int | None, nominal_capacity_ah: float | None, sensor_count: int | None = None,
                 ) -> list[str]:
    """What the pack reports that differs from the expectations given (None: not expected)."""
    found = []
    if cell_count is not None and identity.cell_count != cell_count:
        found.append(f"cell count {identity.cell_count} ({where}: {cell_count})")
    if sensor_count is not None and identity.sensor_count != sensor_count:
        found.append(f"sensor count {identity.sensor_count} ({where}: {sensor_count})")
    # a pack reporting no chemistry or no capacity is not contradicted on that point
    if chemistry is not None and identity.chemistry is not Chemistry.UNKNOWN and identity.chemistry != chemistry:
        found.append(f"chemistry {identity.chemistry.name.lower()} ({where}: {chemistry.name.lower()})")
    reported = identity.nominal_capacity_ah
    if nominal_capacity_ah is not None and math.isfinite(reported) and reported > 0.0 \
            and abs(reported - nominal_capacity_ah) > tolerance * nominal_capacity_ah:
        found.append(f"capacity {reported:g} Ah ({where}: {nominal_capacity_ah:g} Ah)")
    return found


def _identity_findings(identity: PackIdentity, slot: SlotExpectation, registry: PackRegistry | None,
                       tolerance: float) -> tuple[tuple[AdmissionReason, str], ...]:
    findings: list[tuple[AdmissionReason, str]] = []
    slot_differences = _differences(identity, "slot", tolerance, chemistry=slot.chemistry,
                                    cell_count=slot.cell_count, nominal_capacity_ah=slot.nominal_capacity_ah,
                                    sensor_count=slot.sensor_count)
    if slot_differences:
        findings.append((AdmissionReason.IDENTITY_MISMATCH, f"identity mismatch: {', '.join(slot_differences)}"))
    if registry is None:
        return tuple(findings)
    blocked = registry.blocked_entry(identity.serial_number)
    entry = registry.lookup(identity.serial_number)
    if blocked is not None:
        findings.append((AdmissionReason.BLOCKED, f"blocked: {blocked.reason}"))
    elif entry is None:
        if registry.unknown is UnknownPackPolicy.REFUSE:
            findings.append((AdmissionReason.UNKNOWN_PACK, f"unknown pack (not in {registry.source})"))
    else:
        registry_differences = _differences(identity, "registry", tolerance, chemistry=entry.chemistry,
                                            cell_count=entry.cell_count, nominal_capacity_ah=entry.nominal_capacity_ah)
        if registry_differences:
            findings.append((AdmissionReason.REGISTRY_MISMATCH,
                             f"registry mismatch: {', '.join(registry_differences)}"))
    return tuple(sorted(findings, key=lambda finding: int(finding[0])))


@dataclass(frozen=True)
class AdmissionInputs:
    """What the gate sees this step, per pack. An optional array left None is not checked."""

    identities: tuple[PackIdentity | None, ...]
    fresh: BoolArray
    latched: BoolArray  # a protection trip is latched
    soh_capacity: FloatArray  # NaN: not known, not a reason
    cell_spread_v: FloatArray
    soh_resistance: FloatArray | None = None
    soc_spread: FloatArray | None = None

    @classmethod
    def of(cls, identities: Sequence[PackIdentity | None], fresh: BoolArray, latched: BoolArray,
           pack: PackFigures, quantities: Quantities) -> AdmissionInputs:
        """From one BMS step's figures and quantities."""
        return cls(tuple(identities), fresh, latched, pack.soh_capacity,
                   quantities[Quantity.CELL_VOLTAGE_SPREAD_V], pack.soh_resistance,
                   pack.max_cell_soc - pack.min_cell_soc)


def health_reasons(inputs: AdmissionInputs, settings: AdmissionSettings) -> IntArray:
    """Per pack: the reasons of the health gate (SOH_LOW, LATCHED_TRIP, CELL_SPREAD, STALE_DATA)."""
    low = inputs.soh_capacity < settings.min_soh
    if settings.min_soh_resistance is not None and inputs.soh_resistance is not None:
        low = low | (inputs.soh_resistance < settings.min_soh_resistance)
    spread = inputs.cell_spread_v > settings.max_cell_spread_v
    if settings.max_soc_spread is not None and inputs.soc_spread is not None:
        spread = spread | (inputs.soc_spread > settings.max_soc_spread)
    reasons: IntArray = (np.where(low, int(AdmissionReason.SOH_LOW), 0)
                         | np.where(inputs.latched, int(AdmissionReason.LATCHED_TRIP), 0)
                         | np.where(spread, int(AdmissionReason.CELL_SPREAD), 0)
                         | np.where(inputs.fresh, 0, int(AdmissionReason.STALE_DATA))).astype(np.int64)
    return reasons


def _health_texts(reasons: int, pack: int, inputs: AdmissionInputs, settings: AdmissionSettings,
                  ) -> list[tuple[AdmissionReason, str]]:
    texts: list[tuple[AdmissionReason, str]] = []
    if reasons & AdmissionReason.SOH_LOW:
        soh = float(inputs.soh_capacity[pack])
        if soh < settings.min_soh:
            texts.append((AdmissionReason.SOH_LOW, f"soh {soh:.2f} < {settings.min_soh:.2f}"))
        if inputs.soh_resistance is not None and settings.min_soh_resistance is not None \
                and float(inputs.soh_resistance[pack]) < settings.min_soh_resistance:
            texts.append((AdmissionReason.SOH_LOW, f"resistance soh {float(inputs.soh_resistance[pack]):.2f} < "
                                                   f"{settings.min_soh_resistance:.2f}"))
    if reasons & AdmissionReason.LATCHED_TRIP:
        texts.append((AdmissionReason.LATCHED_TRIP, "latched trip"))
    if reasons & AdmissionReason.CELL_SPREAD:
        spread = float(inputs.cell_spread_v[pack])
        if spread > settings.max_cell_spread_v:
            texts.append((AdmissionReason.CELL_SPREAD,
                          f"cell spread {spread:.3f} V > {settings.max_cell_spread_v:.3f} V"))
        if inputs.soc_spread is not None and settings.max_soc_spread is not None \
                and float(inputs.soc_spread[pack]) > settings.max_soc_spread:
            texts.append((AdmissionReason.CELL_SPREAD,
                          f"soc spread {float(inputs.soc_spread[pack]):.2f} > {settings.max_soc_spread:.2f}"))
    if reasons & AdmissionReason.STALE_DATA:
        texts.append((AdmissionReason.STALE_DATA, "no fresh data"))
    return texts


@dataclass(frozen=True)
class AdmissionState:
    admitted: BoolArray  # packs: granted, and the slot reports that pack now: limits may be non-zero
    granted: BoolArray  # packs: admission granted to `identity` (by the gate or an operator)
    reasons: IntArray  # packs: AdmissionReason bits the gate found this step (also for an admitted pack)
    passing_s: FloatArray  # packs: how long the gate has passed without a break
    reported: IntArray  # packs: refusal reasons already logged for this identity (one event per new reason)
    identity: tuple[PackIdentity | None, ...]  # the last identity each slot reported
    operator: tuple[str, ...]  # who granted the admission ("": the gate, or not granted)

    @classmethod
    def empty(cls, packs: int) -> AdmissionState:
        return cls(np.zeros(packs, dtype=bool), np.zeros(packs, dtype=bool),
                   np.full(packs, int(AdmissionReason.NO_IDENTITY), dtype=np.int64), np.zeros(packs),
                   np.zeros(packs, dtype=np.int64), (None,) * packs, ("",) * packs)

    @property
    def status(self) -> IntArray:
        """Per pack: the AdmissionStatus value."""
        by_operator = np.array([bool(name) for name in self.operator], dtype=bool)
        status: IntArray = np.where(
            self.admitted,
            np.where(by_operator, int(AdmissionStatus.OPERATOR_ADMITTED), int(AdmissionStatus.ADMITTED)),
            np.where(self.reasons & int(REFUSALS), int(AdmissionStatus.NOT_ADMITTED), int(AdmissionStatus.PENDING)),
        ).astype(np.int64)
        return status

    def pack_document(self, pack: int) -> dict[str, Any]:
        """What survives a restart for this pack (JSON-ready): the identity, the grant and who gave it."""
        identity = self.identity[pack]
        saved = None if identity is None else {
            f.name: int(value) if isinstance(value := getattr(identity, f.name), Chemistry) else value
            for f in fields(identity)}
        if saved is not None and math.isnan(saved["nominal_capacity_ah"]):
            saved["nominal_capacity_ah"] = None  # strict JSON has no NaN
        return {"admission.identity": saved, "admission.granted": bool(self.granted[pack]),
                "admission.operator": self.operator[pack]}

    def with_pack_document(self, pack: int, document: Mapping[str, Any]) -> AdmissionState:
        """This state with the pack's saved identity and grant; a document without them (or damaged) is ignored.

        The slot stays not admitted until the pack answers: the same pack is then admitted at once, unless the
        registry or the slot's layout now refuse it (BLOCKED, IDENTITY_MISMATCH withdraw the grant).
        """
        try:
            saved = document["admission.identity"]
            granted = document["admission.granted"]
            operator = document["admission.operator"]
            identity = None if saved is None else PackIdentity(
                serial_number=str(saved["serial_number"]), firmware_version=str(saved["firmware_version"]),
                chemistry=Chemistry(int(saved["chemistry"])), cell_count=int(saved["cell_count"]),
                sensor_count=int(saved["sensor_count"]),
                nominal_capacity_ah=math.nan if saved["nominal_capacity_ah"] is None
                else float(saved["nominal_capacity_ah"]))
        except (KeyError, TypeError, ValueError):
            return self
        if not isinstance(granted, bool) or not isinstance(operator, str):
            return self
        granted_now = self.granted.copy()
        granted_now[pack] = granted and identity is not None
        return AdmissionState(
            self.admitted, granted_now, self.reasons, self.passing_s, self.reported,
            _replaced(self.identity, pack, identity), _replaced(self.operator, pack, operator if granted else ""))


def _replaced(values: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*values[:index], value, *values[index + 1:])


def same_pack(a: PackIdentity | None, b: PackIdentity | None) -> bool:
    """Whether two identities are one pack: same serial, chemistry, cell and sensor count, capacity."""
    if a is None or b is None:
        return a is b
    return (serial_key(a.serial_number) == serial_key(b.serial_number) and a.chemistry == b.chemistry
            and a.cell_count == b.cell_count and a.sensor_count == b.sensor_count
            and (a.nominal_capacity_ah == b.nominal_capacity_ah
                 or (math.isnan(a.nominal_capacity_ah) and math.isnan(b.nominal_capacity_ah))))


def admission_step(state: AdmissionState, inputs: AdmissionInputs, gate: AdmissionGate, dt_s: float,
                   admits: Mapping[int, str] | None = None) -> AdmissionState:
    """One step for all packs. `admits`: operator admission requests, pack index -> operator name."""
    identity = list(state.identity)
    operator = list(state.operator)
    granted = state.granted.copy()
    passing_s = state.passing_s.copy()
    reported = state.reported.copy()
    present = np.zeros(gate.pack_count, dtype=bool)
    identity_bits = np.zeros(gate.pack_count, dtype=np.int64)
    for pack, seen in enumerate(inputs.identities):
        present[pack] = not gate.slots[pack].identity_reported  # such a slot's pack is the one on its bus
        if seen is not None:
            present[pack] = True
            kept = identity[pack]
            if not same_pack(seen, kept):  # another pack in the slot (a swap), or the first answer
                granted[pack], operator[pack], passing_s[pack], reported[pack] = False, "", 0.0, 0
                identity[pack] = seen
            elif kept is not None and seen.firmware_version != kept.firmware_version:
                identity[pack] = seen
            seen = identity[pack]  # the kept object while the pack stays the same: the memo finds it
        identity_bits[pack] = gate.identity_reasons(pack, seen)
    reasons = identity_bits | health_reasons(inputs, gate.settings)
    passing_s = np.where(reasons == 0, passing_s + dt_s, 0.0)
    granted |= passing_s >= gate.settings.confirm_s - _TIME_EPSILON_S
    for pack, name in (admits or {}).items():
        if present[pack] and not identity_bits[pack] & int(NOT_OVERRIDABLE) and not granted[pack]:
            granted[pack], operator[pack] = True, name or "operator"
    void = (identity_bits & _VOIDS_GRANT) != 0
    if void.any():
        granted &= ~void
        operator = [("" if v else name) for v, name in zip(void.tolist(), operator, strict=True)]
    admitted = granted & present
    reported = np.where(admitted, 0, reported | (reasons & int(REFUSALS)))
    return AdmissionState(admitted, granted, reasons, passing_s, reported, tuple(identity), tuple(operator))


def admission_detail(state: AdmissionState, inputs: AdmissionInputs, gate: AdmissionGate, pack: int) -> str:
    """The pack's current reasons as text: "unknown pack (not in registry.yaml); soh 0.62 < 0.70"."""
    reasons = int(state.reasons[pack])
    identity = state.identity[pack] if not reasons & AdmissionReason.NO_IDENTITY else None
    texts = [] if identity is None else list(gate.identity_findings(pack, identity))
    if identity is None and gate.slots[pack].identity_reported:
        texts.append((AdmissionReason.NO_IDENTITY, "no identity yet"))
    elif identity is None and reasons & AdmissionReason.UNKNOWN_PACK:
        texts.append((AdmissionReason.UNKNOWN_PACK, "unknown pack (its protocol reports no identity)"))
    texts += _health_texts(reasons, pack, inputs, gate.settings)
    return "; ".join(text for _, text in sorted(texts, key=lambda item: int(item[0]))) or "none"


def _serial(identity: PackIdentity | None) -> str:
    return "?" if identity is None else identity.serial_number


def admission_events(before: AdmissionState, after: AdmissionState, inputs: AdmissionInputs, gate: AdmissionGate,
                     now: float) -> list[BmsEvent]:
    """ADMITTED when a pack becomes admitted; NOT_ADMITTED when it stops being admitted, or when a refusal reason
    not logged yet for this identity appears (one event per new reason, not one per tick). `value`: the reasons."""
    if np.array_equal(before.admitted, after.admitted) and np.array_equal(before.reported, after.reported) \
            and before.identity == after.identity:
        return []
    events = []
    for pack in range(gate.pack_count):
        old, new = before.identity[pack], after.identity[pack]
        swapped = not same_pack(old, new)
        was, now_admitted = bool(before.admitted[pack]), bool(after.admitted[pack])
        newly_reported = int(after.reported[pack]) & ~(0 if swapped else int(before.reported[pack]))
        kind, who, serial = EventKind.ADMITTED, "", _serial(new)
        if now_admitted and (swapped or not was):
            who = after.operator[pack]
            if bool(before.granted[pack]) and not swapped:
                detail = "the pack answered again; admitted before" + (f" by {who}" if who else "")
            elif who:
                overridden = int(after.reasons[pack]) & int(REFUSALS)
                detail = f"admitted by operator {who}" + (
                    f", overriding: {admission_detail(after, inputs, gate, pack)}" if overridden else "")
            else:
                detail = f"gate passed for {gate.settings.confirm_s:g} s"
                registry = gate.registry
                if registry is not None and new is not None and registry.lookup(new.serial_number) is None:
                    detail += f"; unknown pack admitted by policy {registry.unknown.value}"
        elif was and not now_admitted:
            kind = EventKind.NOT_ADMITTED
            detail = admission_detail(after, inputs, gate, pack)
            if swapped:
                found = detail if int(after.reasons[pack]) else "the gate runs again"
                serial, detail = _serial(old), f"replaced by serial {_serial(new)}: {found}"
        elif not now_admitted and newly_reported:
            kind = EventKind.NOT_ADMITTED
            detail = admission_detail(after, inputs, gate, pack)
        else:
            continue
        events.append(BmsEvent(time=now, pack_id=gate.slots[pack].pack_id, kind=kind, code="admission",
                               value=float(after.reasons[pack]), operator=who, detail=f"serial {serial}: {detail}"))
    return events


def admit_outcome(before: AdmissionState, after: AdmissionState, gate: AdmissionGate, pack: int,
                  operator: str) -> str:
    """The outcome of an operator's admit request for `pack`, given the states around the step that took it."""
    if after.reasons[pack] & AdmissionReason.NO_IDENTITY:
        return "refused: no identity yet (the pack has not answered an identity request)"
    identity = after.identity[pack]
    granted_before = bool(before.granted[pack]) and same_pack(before.identity[pack], identity)
    if after.granted[pack]:
        who = after.operator[pack]
        if who == (operator or "operator") and not granted_before:
            return "done"
        return f"already admitted by {who or 'the gate'}"
    if identity is None:  # not reached: NO_IDENTITY is clear when the slot reports an identity
        return "refused: no identity yet"
    refusals = [text for reason, text in gate.identity_findings(pack, identity) if reason & NOT_OVERRIDABLE]
    return f"refused: {'; '.join(refusals) or 'not admissible'}"
