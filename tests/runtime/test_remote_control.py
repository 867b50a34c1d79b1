"""RemoteControl: what a client's commands do to the engine's state."""

from __future__ import annotations

import numpy as np

from gateway.bms.cell_model import load_cell_model
from gateway.bms.estimator import estimates
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.protection_rules import build_rules
from gateway.bms.step import BmsState
from gateway.domain.operator_actions import OperatorAction
from gateway.runtime.operator_commands import OperatorCommand
from gateway.runtime.remote_control import RECALIBRATED_SOC_SIGMA, RemoteControl
from gateway.settings import DEFAULT_MAPPINGS_DIR


def test_set_soc_restarts_only_that_packs_cells_and_flags_persist() -> None:
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    parameters = PackParameters.build([PackLayout("a", 32, 8, model), PackLayout("b", 24, 8, model)])
    state = BmsState.empty(parameters, build_rules(parameters, 1.0, 0.1))
    control = RemoteControl(2)
    commands = [(OperatorCommand("b", OperatorAction.SET_SOC, "modbus 10.0.0.2", value=0.35), 1),
                (OperatorCommand("a", OperatorAction.DISCONNECT, "modbus 10.0.0.2"), 0),
                (OperatorCommand("b", OperatorAction.BALANCING_OFF, "modbus 10.0.0.2"), 1)]
    after = control.apply(commands, state, parameters)
    cells = estimates(after.estimator, parameters.estimator)
    assert np.allclose(cells.soc[1, :24], 0.35)
    assert np.allclose(after.estimator.ekf.p_soc[1, :24], RECALIBRATED_SOC_SIGMA**2)
    assert not after.estimator.ekf.initialised[0].any()  # pack a untouched
    assert not after.estimator.ekf.initialised[1, 24:].any()  # no cells beyond the pack's 24
    assert control.disconnected.tolist() == [True, False]
    assert control.balancing_disabled.tolist() == [False, True]
    restored = RemoteControl(2)
    restored.restore(dict(enumerate(control.documents())))
    assert restored.disconnected.tolist() == [True, False]
    assert restored.balancing_disabled.tolist() == [False, True]
    control.apply([(OperatorCommand("a", OperatorAction.CONNECT, "x"), 0)], after, parameters)
    assert control.disconnected.tolist() == [False, False]
