"""What clients set per pack through the command path: a disconnect request, balancing switched off, and a SoC
recalibration. The disconnect and the balancing switch persist in the pack's checkpoint: a restart never
reconnects a pack a PLC disconnected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from gateway.bms.balancing import Balancing
from gateway.bms.estimator import start_cells
from gateway.bms.inputs import BoolArray
from gateway.bms.pack_parameters import PackParameters
from gateway.bms.step import BmsState
from gateway.domain.operator_actions import OperatorAction
from gateway.domain.states import BalancingStatus
from gateway.runtime.operator_commands import OperatorCommand

RECALIBRATED_SOC_SIGMA = 0.02  # a SoC set by a client is trusted this far (1 sigma) and then corrected as usual


class RemoteControl:
    def __init__(self, packs: int) -> None:
        self.disconnected = np.zeros(packs, dtype=bool)
        self.balancing_disabled = np.zeros(packs, dtype=bool)

    def apply(self, controls: Sequence[tuple[OperatorCommand, int]], state: BmsState,
              parameters: PackParameters) -> BmsState:
        for command, pack in controls:
            action = command.action
            if action is OperatorAction.SET_SOC:
                state = _set_soc(state, parameters, pack, command.value)
            elif action in (OperatorAction.CONNECT, OperatorAction.DISCONNECT):
                self.disconnected[pack] = action is OperatorAction.DISCONNECT
            elif action in (OperatorAction.BALANCING_ON, OperatorAction.BALANCING_OFF):
                self.balancing_disabled[pack] = action is OperatorAction.BALANCING_OFF
        return state

    def balancing(self, balancing: Balancing) -> Balancing:
        """The step's balancing with the switched-off packs off: no cell bleeds there."""
        off = self.balancing_disabled
        if not off.any():
            return balancing
        return replace(balancing, status=np.where(off, int(BalancingStatus.OFF), balancing.status),
                       mask=balancing.mask & ~off[:, None], bleeding_cells=np.where(off, 0, balancing.bleeding_cells))

    def documents(self) -> list[dict[str, Any]]:
        return [{"control.disconnected": bool(d), "control.balancing_disabled": bool(b)}
                for d, b in zip(self.disconnected, self.balancing_disabled, strict=True)]

    def restore(self, documents: Mapping[int, Mapping[str, Any]]) -> None:
        for pack, document in documents.items():
            self.disconnected[pack] = bool(document.get("control.disconnected", False))
            self.balancing_disabled[pack] = bool(document.get("control.balancing_disabled", False))


def _set_soc(state: BmsState, parameters: PackParameters, pack: int, soc: float) -> BmsState:
    which: BoolArray = np.zeros(parameters.cell_mask.shape, dtype=bool)
    which[pack] = parameters.cell_mask[pack]
    estimator = start_cells(state.estimator, which, np.full(which.shape, soc),
                            np.full(which.shape, RECALIBRATED_SOC_SIGMA), parameters.estimator,
                            parameters.estimator_settings)
    return replace(state, estimator=estimator)
