"""What a register can publish: the source vocabulary of the register maps.

A source is named in a map file's `source` key. Most are an attribute of the unit's snapshot
(`PackSnapshot` for a pack unit, `SiteSnapshot` for the site unit), properties included; a few
are special: `alarm_mask.<severity>` (bitfield, bit = AlarmCode value), `identity.<field>` (what
the pack says about itself), `snapshot.sequence` / `snapshot.wall_time` (heartbeat) and
`map.version`. Every source reads a value in its SI unit (`ratio` for 0..1 fractions) and
returns NaN when it is unknown; the encoder turns NaN into the not-implemented value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.domain.alarms import Severity
from gateway.domain.identity import PackIdentity
from gateway.domain.snapshot import GatewaySnapshot, PackSnapshot, SiteSnapshot

UnitKind = Literal["site", "pack"]
Subject = PackSnapshot | SiteSnapshot
ScalarGetter = Callable[[Subject | None, GatewaySnapshot | None], float]
ArrayGetter = Callable[[Subject | None], Sequence[float]]

NAN = math.nan


@dataclass(frozen=True, slots=True)
class ScalarSource:
    """One number per snapshot. `counter` sources wrap around instead of overflowing."""

    name: str
    unit: str
    reads: tuple[str, ...]  # the snapshot attributes it publishes (checked by the coverage test)
    get: ScalarGetter
    counter: bool = False


@dataclass(frozen=True, slots=True)
class ArraySource:
    """One number per cell / sensor, published as `count` consecutive values."""

    name: str
    unit: str
    reads: tuple[str, ...]
    get: ArrayGetter


Source = ScalarSource | ArraySource

_PACK_ATTRIBUTES: dict[str, str] = {
    "index": "",
    "state": "",
    "online": "",
    "data_age_s": "s",
    "pack_voltage_v": "V",
    "pack_current_a": "A",
    "power_w": "W",
    "soc": "ratio",
    "soh": "ratio",
    "soc_min": "ratio",
    "soc_max": "ratio",
    "capacity_ah": "Ah",
    "charge_current_limit_a": "A",
    "discharge_current_limit_a": "A",
    "charge_voltage_limit_v": "V",
    "discharge_voltage_limit_v": "V",
    "cell_voltage_min_v": "V",
    "cell_voltage_max_v": "V",
    "temperature_min_c": "°C",
    "temperature_max_c": "°C",
    "contactor_state": "",
    "pack_fault_flags": "",
    "ah_charged": "Ah",
    "ah_discharged": "Ah",
    "wh_charged": "Wh",
    "wh_discharged": "Wh",
    "equivalent_full_cycles": "",
    "highest_severity": "",
    "soc_sigma": "ratio",
    "soh_resistance": "ratio",
    "current_bias_a": "A",
    "latched_mask": "",
    "unacknowledged_mask": "",
    "request_flags": "",
    "active_alarm_count": "",
    "charge_power_limit_w": "W",
    "discharge_power_limit_w": "W",
    "charge_current_limit_10s_a": "A",
    "discharge_current_limit_10s_a": "A",
    "charge_current_limit_30s_a": "A",
    "discharge_current_limit_30s_a": "A",
    "pack_resistance_ohm": "Ohm",
    "balancing_status": "",
    "balancing_cells": "",
    "balancing_mask": "",
    "cell_soc_spread": "ratio",
    "balancing_excess_ah": "Ah",
    "balancing_remaining_s": "s",
    "admission_status": "",
    "admission_reasons": "",
    "disconnect_requested": "",
    "balancing_enabled": "",
}

_PACK_ARRAYS: dict[str, str] = {
    "active_alarm_code": "",
    "active_alarm_status": "",
    "active_alarm_cell": "",
    "cell_voltage_v": "V",
    "temperature_c": "°C",
    "cell_soc": "ratio",
    "cell_capacity_ah": "Ah",
    "cell_resistance_ohm": "Ohm",
}

_SITE_ATTRIBUTES: dict[str, str] = {
    "pack_count": "",
    "packs_online": "",
    "soc": "ratio",
    "soh": "ratio",
    "voltage_v": "V",
    "current_a": "A",
    "power_w": "W",
    "capacity_ah": "Ah",
    "charge_current_limit_a": "A",
    "discharge_current_limit_a": "A",
    "charge_voltage_limit_v": "V",
    "discharge_voltage_limit_v": "V",
    "highest_severity": "",
    "latched_mask": "",
    "unacknowledged_mask": "",
    "charge_power_limit_w": "W",
    "discharge_power_limit_w": "W",
    "packs_eligible": "",
    "packs_admitted": "",
    "ems_heartbeat": "",
}

_ALARM_SEVERITIES: dict[str, tuple[Severity, ...]] = {
    "warning": (Severity.WARNING,),
    "alarm": (Severity.ALARM,),
    "trip": (Severity.TRIP,),
    "any": (Severity.WARNING, Severity.ALARM, Severity.TRIP),
}

_FIRMWARE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def sources_for(kind: UnitKind, map_version: int) -> Mapping[str, Source]:
    """Every source a unit of this kind can publish, by name."""
    attributes = _PACK_ATTRIBUTES if kind == "pack" else _SITE_ATTRIBUTES
    sources: dict[str, Source] = {}
    for name, unit in attributes.items():
        sources[name] = ScalarSource(name, unit, (name,), _attribute(name))
    if kind == "pack":
        for name, unit in _PACK_ARRAYS.items():
            sources[name] = ArraySource(name, unit, (name,), _array(name))
        for name, unit, get in _identity_sources():
            sources[name] = ScalarSource(name, unit, ("identity",), get)
    masks_field = "alarms" if kind == "pack" else "alarm_masks"
    for label, severities in _ALARM_SEVERITIES.items():
        name = f"alarm_mask.{label}"
        sources[name] = ScalarSource(name, "", (masks_field,), _alarm_mask(severities))
    sources["snapshot.sequence"] = ScalarSource("snapshot.sequence", "", (), _sequence, counter=True)
    sources["snapshot.wall_time"] = ScalarSource("snapshot.wall_time", "s", (), _wall_time)
    sources["map.version"] = ScalarSource("map.version", "", (), _constant(float(map_version)))
    return sources


def _attribute(name: str) -> ScalarGetter:
    def get(subject: Subject | None, _snapshot: GatewaySnapshot | None) -> float:
        return NAN if subject is None else float(getattr(subject, name))

    return get


def _array(name: str) -> ArrayGetter:
    def get(subject: Subject | None) -> Sequence[float]:
        values: Sequence[float] = () if subject is None else getattr(subject, name)
        return values

    return get


def _alarm_mask(severities: tuple[Severity, ...]) -> ScalarGetter:
    def get(subject: Subject | None, _snapshot: GatewaySnapshot | None) -> float:
        if subject is None:
            return NAN
        mask = 0
        for severity in severities:
            if isinstance(subject, PackSnapshot):
                mask |= subject.alarm_mask(severity)
            else:
                mask |= subject.alarm_masks.get(severity, 0)  # absent: no alarm at that severity
        return float(mask)

    return get


def _sequence(_subject: Subject | None, snapshot: GatewaySnapshot | None) -> float:
    return NAN if snapshot is None else float(snapshot.sequence)


def _wall_time(_subject: Subject | None, snapshot: GatewaySnapshot | None) -> float:
    return NAN if snapshot is None else float(math.floor(snapshot.wall_time))


def _constant(value: float) -> ScalarGetter:
    def get(_subject: Subject | None, _snapshot: GatewaySnapshot | None) -> float:
        return value

    return get


def _identity_sources() -> list[tuple[str, str, ScalarGetter]]:
    readers: list[tuple[str, str, Callable[[PackIdentity], float]]] = [
        ("serial_number", "", _serial_number),
        ("firmware_major", "", _firmware_part(1)),
        ("firmware_minor", "", _firmware_part(2)),
        ("firmware_patch", "", _firmware_part(3)),
        ("chemistry", "", lambda identity: float(identity.chemistry)),
        ("cell_count", "", lambda identity: float(identity.cell_count)),
        ("sensor_count", "", lambda identity: float(identity.sensor_count)),
        ("nominal_capacity_ah", "Ah", lambda identity: identity.nominal_capacity_ah),
    ]
    return [(f"identity.{name}", unit, _from_identity(read)) for name, unit, read in readers]


def _from_identity(read: Callable[[PackIdentity], float]) -> ScalarGetter:
    def get(subject: Subject | None, _snapshot: GatewaySnapshot | None) -> float:
        identity = subject.identity if isinstance(subject, PackSnapshot) else None
        return NAN if identity is None else read(identity)

    return get


def _serial_number(identity: PackIdentity) -> float:
    """A serial made of decimal digits, as its number; anything else is unknown."""
    text = identity.serial_number.strip()
    return float(int(text)) if text.isascii() and text.isdigit() else NAN


def _firmware_part(group: int) -> Callable[[PackIdentity], float]:
    """Major / minor / patch of a `major.minor.patch` version; missing parts are unknown."""

    def read(identity: PackIdentity) -> float:
        match = _FIRMWARE.match(identity.firmware_version)
        part = match.group(group) if match else None
        return NAN if part is None else float(part)

    return read
