"""What an operator or a client may ask the engine to do (the command queue, the Modbus command path)."""

from __future__ import annotations

from enum import StrEnum


class OperatorAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESET = "reset"
    ADMIT = "admit"
    SET_SOC = "set_soc"  # recalibration: every cell of the pack starts again at `value` (0..1)
    CONNECT = "connect"  # lift a client's disconnect request
    DISCONNECT = "disconnect"  # zero limits and request the contactor open until a connect
    BALANCING_ON = "balancing_on"
    BALANCING_OFF = "balancing_off"


CONTROL_ACTIONS = frozenset({OperatorAction.SET_SOC, OperatorAction.CONNECT, OperatorAction.DISCONNECT,
                             OperatorAction.BALANCING_ON, OperatorAction.BALANCING_OFF})
