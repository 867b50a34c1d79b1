"""The command registers of the native map's holding-register block: addresses, accepted values and the engine
actions they ask for (gateway.adapters.modbus_commands serves them; docs/modbus.md lists them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.domain.operator_actions import OperatorAction

Actions = Callable[[int], list[tuple[OperatorAction, float]]]


@dataclass(frozen=True, slots=True)
class CommandRegister:
    offset: int  # holding register address in the unit's command block
    name: str
    low: int  # accepted raw values, inclusive
    high: int
    description: str
    actions: Actions | None = None  # None: unlock or heartbeat, handled by the gate itself


def _one(action: OperatorAction) -> Actions:
    return lambda _: [(action, float("nan"))]


def connection_actions(raw: int) -> list[tuple[OperatorAction, float]]:
    return [(OperatorAction.CONNECT if raw == 1 else OperatorAction.DISCONNECT, float("nan"))]


def _balancing(raw: int) -> list[tuple[OperatorAction, float]]:
    return [(OperatorAction.BALANCING_ON if raw == 1 else OperatorAction.BALANCING_OFF, float("nan"))]


def _set_soc(raw: int) -> list[tuple[OperatorAction, float]]:
    return [(OperatorAction.SET_SOC, raw / 10000.0)]


def acknowledge_and_reset(_: int) -> list[tuple[OperatorAction, float]]:
    return [(OperatorAction.ACKNOWLEDGE, float("nan")), (OperatorAction.RESET, float("nan"))]


UNLOCK = CommandRegister(0, "unlock", 1, 65535, "write the configured unlock code; reads 1 while this client is "
                         "unlocked, else 0")
HEARTBEAT = CommandRegister(1, "ems_heartbeat", 0, 65535, "the EMS writes a changing value at least every "
                            "heartbeat_timeout_s; reads the last value")
SITE_COMMANDS = (
    UNLOCK, HEARTBEAT,
    CommandRegister(2, "acknowledge_all", 1, 1, "1: acknowledge every present alarm of every pack",
                    _one(OperatorAction.ACKNOWLEDGE)),
    CommandRegister(3, "reset_all", 1, 1, "1: reset the latched trips of every pack whose condition has cleared",
                    _one(OperatorAction.RESET)),
    CommandRegister(4, "connection_all", 1, 2, "1: connect every pack, 2: disconnect every pack (zero limits, "
                    "contactor open request); reads 2 while every pack is disconnected, else 1", connection_actions),
)
PACK_COMMANDS = (
    UNLOCK,
    CommandRegister(1, "acknowledge", 1, 1, "1: acknowledge every present alarm of this pack",
                    _one(OperatorAction.ACKNOWLEDGE)),
    CommandRegister(2, "reset", 1, 1, "1: reset this pack's latched trips whose condition has cleared",
                    _one(OperatorAction.RESET)),
    CommandRegister(3, "set_soc", 0, 10000, "SoC recalibration in 0.01 %: every cell starts again there "
                    "(sigma 2 %)", _set_soc),
    CommandRegister(4, "connection", 1, 2, "1: connect, 2: disconnect (zero limits, contactor open request, "
                    "kept across restarts); reads the present request", connection_actions),
    CommandRegister(5, "balancing", 0, 1, "1: balancing allowed, 0: off for this pack; reads the present setting",
                    _balancing),
)
