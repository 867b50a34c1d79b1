"""Enumerations shared by every output (their integer values are published: never renumber)."""

from __future__ import annotations

from enum import IntEnum, IntFlag


class PackState(IntEnum):
    NOT_SEEN = 0
    NORMAL = 1
    WARNING = 2
    ALARM = 3
    COMM_LOST = 4


class ContactorState(IntEnum):
    OPEN = 0
    PRECHARGE = 1
    CLOSED = 2
    FAULT = 3
    UNKNOWN = 15


class Chemistry(IntEnum):
    UNKNOWN = 0
    NMC = 1
    LFP = 2
    LTO = 3
    NCA = 4


class BalancingStatus(IntEnum):
    """Per pack, what balancing is doing; the first that applies, in this order of precedence: OFF,
    BLOCKED_FAULT, BLOCKED_TEMPERATURE, WAITING (outside the window), then ACTIVE, BALANCED or UNCERTAIN."""

    OFF = 0  # disabled in the settings
    WAITING = 1  # outside the window (discharging, not rested for the dwell, below min_soc), or decision not due
    ACTIVE = 2  # at least one cell bleeds
    BALANCED = 3  # in the window, every cell within the target spread of the lowest
    BLOCKED_TEMPERATURE = 4  # a temperature outside the window (with hysteresis)
    BLOCKED_FAULT = 5  # not allowed, stale data, an unknown SoC, sigma, capacity, current or temperature
    UNCERTAIN = 6  # in the window, cells beyond the target but not beyond the SoC estimates' confidence margin


class AdmissionReason(IntFlag):
    """Why a pack is not (or would not be) admitted. Published as a bitfield: never renumber."""

    NO_IDENTITY = 1 << 0  # the pack has not reported its identity (yet)
    UNKNOWN_PACK = 1 << 1  # not in the registry, whose policy for unknown packs is `refuse`
    BLOCKED = 1 << 2  # listed under `blocked` in the registry
    IDENTITY_MISMATCH = 1 << 3  # cell count, sensor count, chemistry or capacity differ from the slot's layout
    REGISTRY_MISMATCH = 1 << 4  # chemistry, cell count or capacity differ from the pack's registry entry
    SOH_LOW = 1 << 5  # SoH by capacity (or by resistance, when set) below its threshold
    LATCHED_TRIP = 1 << 6  # a protection trip is latched
    CELL_SPREAD = 1 << 7  # cell voltage spread (or SoC spread, when set) above its limit
    STALE_DATA = 1 << 8  # the pack's data is not fresh


class AdmissionStatus(IntEnum):
    """Published per pack: never renumber."""

    NOT_ADMITTED = 0  # a refusal reason stands (see the reasons)
    PENDING = 1  # waiting for the identity, fresh data or the confirm time
    ADMITTED = 2  # the gate passed
    OPERATOR_ADMITTED = 3  # an operator admitted it


def reason_labels(reasons: int) -> str:
    """AdmissionReason bits as text, lowest bit first: "unknown_pack, soh_low"; "" when none."""
    return ", ".join(str(reason.name).lower() for reason in AdmissionReason if reasons & reason)
