"""Admission of a pack whose protocol carries no identity (the common battery CAN protocol's): the health gate
alone, or an operator where the registry refuses unknown packs."""

from __future__ import annotations

from gateway.bms.admission import AdmissionGate, AdmissionState, admission_detail, admit_outcome
from gateway.bms.admission_settings import AdmissionSettings, PackRegistry, UnknownPackPolicy
from gateway.bms.pack_parameters import PackLayout
from gateway.domain.pack_reporting import PackReporting
from gateway.domain.states import AdmissionReason, AdmissionStatus
from tests.bms.test_admission import MODEL, REGISTRY, run, seen

UNIDENTIFIED = PackReporting(cells_from_extremes=True, contactor_reported=False, identity_reported=False)


def make_gate(registry: PackRegistry | None) -> AdmissionGate:
    """Pack 0 reports its identity, pack 1 cannot."""
    layouts = [PackLayout("ref", 32, 8, MODEL), PackLayout("pylon", 32, 8, MODEL, UNIDENTIFIED)]
    return AdmissionGate.of(layouts, registry, AdmissionSettings())


def test_the_health_gate_alone_admits_a_pack_that_cannot_say_who_it_is() -> None:
    gate = make_gate(None)
    state, events = run(AdmissionState.empty(2), seen(None, None), gate, 5.0)
    assert state.admitted.tolist() == [False, True]
    assert state.reasons.tolist() == [int(AdmissionReason.NO_IDENTITY), 0]
    assert [(e.pack_id, e.kind.value) for e in events] == [("pylon", "admitted")]
    stale, _ = run(AdmissionState.empty(2), seen(None, None, fresh=False), gate, 10.0)
    assert not stale.admitted[1]
    assert stale.reasons[1] == AdmissionReason.STALE_DATA


def test_a_registry_that_refuses_unknown_packs_leaves_it_to_an_operator() -> None:
    gate = make_gate(REGISTRY)
    assert REGISTRY.unknown is UnknownPackPolicy.REFUSE
    x = seen(None, None)
    state, _ = run(AdmissionState.empty(2), x, gate, 10.0)
    assert state.status[1] == AdmissionStatus.NOT_ADMITTED
    assert admission_detail(state, x, gate, 1) == "unknown pack (its protocol reports no identity)"
    before = state
    state, _ = run(state, x, gate, 0.1, admits={1: "alice"})
    assert state.status[1] == AdmissionStatus.OPERATOR_ADMITTED
    assert admit_outcome(before, state, gate, 1, "alice") == "done"
