"""Pack admission: the gate's reasons, the confirm time, swaps, operator admission, events and persistence."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.bms.admission import (
    NOT_OVERRIDABLE,
    REFUSALS,
    AdmissionGate,
    AdmissionInputs,
    AdmissionState,
    admission_detail,
    admission_events,
    admission_step,
    admit_outcome,
    same_pack,
)
from gateway.bms.admission_settings import (
    AdmissionSettings,
    BlockedPack,
    KnownPack,
    PackRegistry,
    UnknownPackPolicy,
)
from gateway.bms.cell_model import load_cell_model
from gateway.bms.pack_parameters import PackLayout
from gateway.bms.step import bms_step
from gateway.domain.events import BmsEvent, EventKind
from gateway.domain.identity import PackIdentity
from gateway.domain.states import AdmissionReason, AdmissionStatus, Chemistry, reason_labels
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.bms.helpers import TICK_S, empty_state, inputs, parameters, rules

MODEL = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")  # 200 Ah NMC
SERIAL_A, SERIAL_B, SERIAL_BLOCKED, SERIAL_STRANGER = "0000001001", "0000001002", "0000001013", "0000009999"
REGISTRY = PackRegistry.of(
    known=[KnownPack(SERIAL_A, Chemistry.NMC, 32, 200.0, "truck 7"), KnownPack(SERIAL_B)],
    blocked=[BlockedPack(SERIAL_BLOCKED, "swollen cell")],
    unknown=UnknownPackPolicy.REFUSE, source="pack-registry.yaml")


def make_gate(packs: int = 1, registry: PackRegistry | None = REGISTRY, **changes: Any) -> AdmissionGate:
    layouts = [PackLayout(f"p{i}", 32, 8, MODEL) for i in range(packs)]
    return AdmissionGate.of(layouts, registry, AdmissionSettings(**changes))


def pack(serial: str = SERIAL_A, *, cells: int = 32, sensors: int = 8, chemistry: Chemistry = Chemistry.NMC,
         capacity_ah: float = 200.0, firmware: str = "1.2.0") -> PackIdentity:
    return PackIdentity(serial, firmware, chemistry, cells, sensors, capacity_ah)


def seen(*identities: PackIdentity | None, fresh: bool = True, latched: bool = False, soh: float = 0.95,
         spread_v: float = 0.02, soh_resistance: float = 0.9, soc_spread: float = 0.02) -> AdmissionInputs:
    """Every pack reports the same health."""
    n = len(identities)
    return AdmissionInputs(tuple(identities), np.full(n, fresh), np.full(n, latched), np.full(n, soh),
                           np.full(n, spread_v), np.full(n, soh_resistance), np.full(n, soc_spread))


def run(state: AdmissionState, x: AdmissionInputs, gate: AdmissionGate, seconds: float,
        admits: Mapping[int, str] | None = None) -> tuple[AdmissionState, list[BmsEvent]]:
    """`seconds` of ticks; the admit requests come with the first tick."""
    events: list[BmsEvent] = []
    for tick in range(round(seconds / TICK_S)):
        after = admission_step(state, x, gate, TICK_S, admits if tick == 0 else None)
        events += admission_events(state, after, x, gate, now=1000.0 + tick)
        state = after
    return state, events


def fresh_state(gate: AdmissionGate) -> AdmissionState:
    return AdmissionState.empty(gate.pack_count)


def test_a_known_healthy_pack_is_admitted_once_the_gate_passed_for_the_confirm_time() -> None:
    gate = make_gate()
    state, events = run(fresh_state(gate), seen(pack()), gate, 4.9)
    assert not state.admitted[0]
    assert state.status[0] == AdmissionStatus.PENDING
    assert state.reasons[0] == 0
    assert events == []

    state, events = run(state, seen(pack()), gate, 0.1)
    assert state.admitted[0]
    assert state.status[0] == AdmissionStatus.ADMITTED
    assert [(e.kind, e.pack_id, e.code, e.operator, e.detail) for e in events] == [
        (EventKind.ADMITTED, "p0", "admission", "", f"serial {SERIAL_A}: gate passed for 5 s")]

    state, events = run(state, seen(pack()), gate, 10.0)
    assert state.admitted[0]
    assert events == []  # once, not every tick


@pytest.mark.parametrize(("identity", "health", "changes", "reason", "status", "text"), [
    pytest.param(None, {}, {}, AdmissionReason.NO_IDENTITY, AdmissionStatus.PENDING, "no identity yet",
                 id="no-identity"),
    pytest.param(pack(SERIAL_STRANGER), {}, {}, AdmissionReason.UNKNOWN_PACK, AdmissionStatus.NOT_ADMITTED,
                 "unknown pack (not in pack-registry.yaml)", id="unknown"),
    pytest.param(pack(SERIAL_BLOCKED), {}, {}, AdmissionReason.BLOCKED, AdmissionStatus.NOT_ADMITTED,
                 "blocked: swollen cell", id="blocked"),
    pytest.param(pack(cells=24), {}, {}, AdmissionReason.IDENTITY_MISMATCH | AdmissionReason.REGISTRY_MISMATCH,
                 AdmissionStatus.NOT_ADMITTED, "identity mismatch: cell count 24 (slot: 32)", id="cell-count"),
    pytest.param(pack(SERIAL_B, sensors=6), {}, {}, AdmissionReason.IDENTITY_MISMATCH, AdmissionStatus.NOT_ADMITTED,
                 "identity mismatch: sensor count 6 (slot: 8)", id="sensor-count"),
    pytest.param(pack(SERIAL_B, chemistry=Chemistry.LFP), {}, {}, AdmissionReason.IDENTITY_MISMATCH,
                 AdmissionStatus.NOT_ADMITTED, "identity mismatch: chemistry lfp (slot: nmc)", id="chemistry"),
    pytest.param(pack(SERIAL_B, capacity_ah=100.0), {}, {}, AdmissionReason.IDENTITY_MISMATCH,
                 AdmissionStatus.NOT_ADMITTED, "identity mismatch: capacity 100 Ah (slot: 200 Ah)", id="capacity"),
    pytest.param(pack(capacity_ah=200.0), {}, {"registry": PackRegistry.of([KnownPack(SERIAL_A, None, None, 230.0)])},
                 AdmissionReason.REGISTRY_MISMATCH, AdmissionStatus.NOT_ADMITTED,
                 "registry mismatch: capacity 200 Ah (registry: 230 Ah)", id="registry-capacity"),
    pytest.param(pack(), {"soh": 0.62}, {}, AdmissionReason.SOH_LOW, AdmissionStatus.NOT_ADMITTED,
                 "soh 0.62 < 0.70", id="soh"),
    pytest.param(pack(), {"soh_resistance": 0.4}, {"min_soh_resistance": 0.5}, AdmissionReason.SOH_LOW,
                 AdmissionStatus.NOT_ADMITTED, "resistance soh 0.40 < 0.50", id="soh-resistance"),
    pytest.param(pack(), {"latched": True}, {}, AdmissionReason.LATCHED_TRIP, AdmissionStatus.NOT_ADMITTED,
                 "latched trip", id="latched"),
    pytest.param(pack(), {"spread_v": 0.15}, {}, AdmissionReason.CELL_SPREAD, AdmissionStatus.NOT_ADMITTED,
                 "cell spread 0.150 V > 0.100 V", id="cell-spread"),
    pytest.param(pack(), {"soc_spread": 0.2}, {"max_soc_spread": 0.1}, AdmissionReason.CELL_SPREAD,
                 AdmissionStatus.NOT_ADMITTED, "soc spread 0.20 > 0.10", id="soc-spread"),
    pytest.param(pack(), {"fresh": False}, {}, AdmissionReason.STALE_DATA, AdmissionStatus.PENDING,
                 "no fresh data", id="stale"),
])
def test_each_reason_keeps_the_pack_not_admitted_and_says_why(
        identity: PackIdentity | None, health: dict[str, Any], changes: dict[str, Any], reason: AdmissionReason,
        status: AdmissionStatus, text: str) -> None:
    gate = make_gate(**changes)
    x = seen(identity, **health)
    state, _ = run(fresh_state(gate), x, gate, 10.0)
    assert AdmissionReason(int(state.reasons[0])) == reason
    assert not state.admitted[0]
    assert state.status[0] == status
    assert text in admission_detail(state, x, gate, 0)


def test_optional_checks_are_off_by_default_and_unreported_values_are_not_contradicted() -> None:
    gate = make_gate()
    x = seen(pack(SERIAL_B, chemistry=Chemistry.UNKNOWN, capacity_ah=math.nan), soh_resistance=0.1, soc_spread=0.9,
             soh=math.nan)
    state, _ = run(fresh_state(gate), x, gate, 5.0)
    assert state.admitted[0]
    within = seen(pack(SERIAL_B, capacity_ah=209.0))  # 4.5 % off, within the 5 % tolerance
    assert run(fresh_state(gate), within, gate, 5.0)[0].admitted[0]


def test_unknown_packs_are_admitted_when_the_policy_says_so_or_there_is_no_registry() -> None:
    lenient = make_gate(registry=replace(REGISTRY, unknown=UnknownPackPolicy.ADMIT_IF_HEALTHY))
    state, events = run(fresh_state(lenient), seen(pack(SERIAL_STRANGER)), lenient, 5.0)
    assert state.admitted[0]
    assert events[0].detail.endswith("unknown pack admitted by policy admit_if_healthy")
    blocked = run(fresh_state(lenient), seen(pack(SERIAL_BLOCKED)), lenient, 10.0)[0]
    assert not blocked.admitted[0]  # the policy is for unknown packs, not blocked ones

    open_gate = make_gate(registry=None)
    assert run(fresh_state(open_gate), seen(pack(SERIAL_STRANGER)), open_gate, 5.0)[0].admitted[0]
    assert not run(fresh_state(open_gate), seen(pack(cells=30)), open_gate, 10.0)[0].admitted[0]


def test_serials_of_digits_compare_as_numbers() -> None:
    registry = PackRegistry.of([KnownPack("1001")], [BlockedPack("13", "stolen")])
    gate = make_gate(registry=registry)
    assert run(fresh_state(gate), seen(pack("0000001001")), gate, 5.0)[0].admitted[0]
    assert run(fresh_state(gate), seen(pack("0000000013")), gate, 1.0)[0].reasons[0] == AdmissionReason.BLOCKED


def test_any_break_in_the_gate_restarts_the_confirm_time() -> None:
    gate = make_gate()
    state, _ = run(fresh_state(gate), seen(pack()), gate, 3.0)
    state, _ = run(state, seen(pack(), spread_v=0.2), gate, 0.1)
    state, _ = run(state, seen(pack()), gate, 4.9)
    assert not state.admitted[0]
    state, _ = run(state, seen(pack()), gate, 0.1)
    assert state.admitted[0]


def test_a_confirm_time_of_zero_admits_on_the_first_passing_step() -> None:
    gate = make_gate(confirm_s=0.0)
    assert run(fresh_state(gate), seen(pack()), gate, TICK_S)[0].admitted[0]


def test_health_reasons_that_come_later_do_not_withdraw_an_admission() -> None:
    gate = make_gate()
    state, _ = run(fresh_state(gate), seen(pack()), gate, 5.0)
    assert state.admitted[0]
    sick = seen(pack(), latched=True, fresh=False, soh=0.5, spread_v=0.3)
    state, events = run(state, sick, gate, 30.0)
    assert state.admitted[0]
    assert state.status[0] == AdmissionStatus.ADMITTED
    assert AdmissionReason(int(state.reasons[0])) == (AdmissionReason.LATCHED_TRIP | AdmissionReason.STALE_DATA
                                                      | AdmissionReason.SOH_LOW | AdmissionReason.CELL_SPREAD)
    assert events == []  # protection logs the trip and the stale data


def test_a_swap_withdraws_the_admission_and_runs_the_gate_again_for_the_new_pack() -> None:
    gate = make_gate()
    state, _ = run(fresh_state(gate), seen(pack(SERIAL_A)), gate, 5.0)
    state, events = run(state, seen(pack(SERIAL_B)), gate, 0.1)
    assert not state.admitted[0]
    assert [(e.kind, e.detail) for e in events] == [
        (EventKind.NOT_ADMITTED, f"serial {SERIAL_A}: replaced by serial {SERIAL_B}: the gate runs again")]
    state, events = run(state, seen(pack(SERIAL_B)), gate, 4.9)
    assert state.admitted[0]
    assert [(e.kind, e.detail) for e in events] == [(EventKind.ADMITTED, f"serial {SERIAL_B}: gate passed for 5 s")]

    state, events = run(state, seen(pack(SERIAL_BLOCKED)), gate, 10.0)
    assert not state.admitted[0]
    assert [(e.kind, e.detail) for e in events] == [
        (EventKind.NOT_ADMITTED, f"serial {SERIAL_B}: replaced by serial {SERIAL_BLOCKED}: blocked: swollen cell")]


def test_a_firmware_update_is_the_same_pack() -> None:
    gate = make_gate()
    state, _ = run(fresh_state(gate), seen(pack(firmware="1.2.0")), gate, 5.0)
    state, events = run(state, seen(pack(firmware="1.3.0"), soh=0.5), gate, 1.0)
    assert state.admitted[0]
    assert events == []
    assert state.identity[0] == pack(firmware="1.3.0")


def test_a_blocked_pack_is_never_admitted_not_even_by_an_operator() -> None:
    gate = make_gate()
    x = seen(pack(SERIAL_BLOCKED))
    before = fresh_state(gate)
    state, events = run(before, x, gate, 10.0, admits={0: "alice"})
    assert not state.admitted[0]
    assert state.operator[0] == ""
    assert admit_outcome(before, state, gate, 0, "alice") == "refused: blocked: swollen cell"
    assert [(e.kind, e.detail) for e in events] == [
        (EventKind.NOT_ADMITTED, f"serial {SERIAL_BLOCKED}: blocked: swollen cell")]
    assert events[0].value == float(AdmissionReason.BLOCKED)


def test_an_operator_admits_over_an_unknown_pack_and_a_failing_health_gate() -> None:
    gate = make_gate()
    x = seen(pack(SERIAL_STRANGER), soh=0.62)
    state, events = run(fresh_state(gate), x, gate, 3.0)
    assert state.status[0] == AdmissionStatus.NOT_ADMITTED
    assert [e.detail for e in events] == [
        f"serial {SERIAL_STRANGER}: unknown pack (not in pack-registry.yaml); soh 0.62 < 0.70"]

    before = state
    state, events = run(state, x, gate, TICK_S, admits={0: "alice"})
    assert state.admitted[0]
    assert state.status[0] == AdmissionStatus.OPERATOR_ADMITTED
    assert admit_outcome(before, state, gate, 0, "alice") == "done"
    assert [(e.kind, e.operator, e.detail) for e in events] == [
        (EventKind.ADMITTED, "alice", f"serial {SERIAL_STRANGER}: admitted by operator alice, overriding: "
                                      "unknown pack (not in pack-registry.yaml); soh 0.62 < 0.70")]
    again, _ = run(state, x, gate, TICK_S, admits={0: "bob"})
    assert admit_outcome(state, again, gate, 0, "bob") == "already admitted by alice"
    assert again.operator[0] == "alice"

    state, _ = run(again, seen(pack(SERIAL_B)), gate, 1.0)  # swapped: the operator's admission was for the other
    state, _ = run(state, x, gate, 10.0)  # and the stranger back needs another admit
    assert not state.admitted[0]
    assert state.operator[0] == ""


def test_an_operator_admits_a_pack_the_gate_already_admitted_without_changing_anything() -> None:
    gate = make_gate()
    state, _ = run(fresh_state(gate), seen(pack()), gate, 5.0)
    after, events = run(state, seen(pack()), gate, TICK_S, admits={0: "alice"})
    assert admit_outcome(state, after, gate, 0, "alice") == "already admitted by the gate"
    assert after.status[0] == AdmissionStatus.ADMITTED
    assert events == []


@pytest.mark.parametrize(("identity", "outcome"), [
    pytest.param(pack(cells=24), "refused: identity mismatch: cell count 24 (slot: 32)", id="cell-count"),
    pytest.param(pack(SERIAL_B, chemistry=Chemistry.LFP), "refused: identity mismatch: chemistry lfp (slot: nmc)",
                 id="chemistry"),
    pytest.param(None, "refused: no identity yet (the pack has not answered an identity request)", id="no-identity"),
])
def test_an_operator_cannot_admit_a_pack_that_does_not_fit_its_slot_or_has_not_said_who_it_is(
        identity: PackIdentity | None, outcome: str) -> None:
    gate = make_gate()
    before = fresh_state(gate)
    state, _ = run(before, seen(identity), gate, 10.0, admits={0: "alice"})
    assert not state.admitted[0]
    assert admit_outcome(before, state, gate, 0, "alice") == outcome


def test_an_operator_may_admit_over_a_registry_mismatch() -> None:
    gate = make_gate(registry=PackRegistry.of([KnownPack(SERIAL_A, None, None, 230.0)]))
    state, _ = run(fresh_state(gate), seen(pack()), gate, 10.0, admits={0: "alice"})
    assert state.status[0] == AdmissionStatus.OPERATOR_ADMITTED


def test_a_pack_that_stops_answering_is_not_admitted_until_the_same_pack_answers_again() -> None:
    gate = make_gate()
    x = seen(pack(SERIAL_STRANGER))
    state, _ = run(fresh_state(gate), x, gate, TICK_S, admits={0: "alice"})
    assert state.admitted[0]
    state, events = run(state, seen(None, fresh=False), gate, 5.0)  # the engine forgot the identity
    assert not state.admitted[0]
    assert state.status[0] == AdmissionStatus.PENDING
    assert [(e.kind, e.detail) for e in events] == [
        (EventKind.NOT_ADMITTED, f"serial {SERIAL_STRANGER}: no identity yet; no fresh data")]
    state, events = run(state, x, gate, TICK_S)
    assert state.status[0] == AdmissionStatus.OPERATOR_ADMITTED
    assert [(e.kind, e.operator, e.detail) for e in events] == [
        (EventKind.ADMITTED, "alice", f"serial {SERIAL_STRANGER}: the pack answered again; admitted before by alice")]


def test_a_refusal_is_logged_once_per_new_reason_not_every_tick() -> None:
    gate = make_gate()
    state, events = run(fresh_state(gate), seen(pack(SERIAL_STRANGER)), gate, 10.0)
    assert [e.detail for e in events] == [f"serial {SERIAL_STRANGER}: unknown pack (not in pack-registry.yaml)"]
    state, events = run(state, seen(pack(SERIAL_STRANGER), soh=0.6, fresh=False), gate, 5.0)
    assert [e.detail for e in events] == [
        f"serial {SERIAL_STRANGER}: unknown pack (not in pack-registry.yaml); soh 0.60 < 0.70; no fresh data"]
    state, events = run(state, seen(pack(SERIAL_STRANGER)), gate, 1.0)
    state, events2 = run(state, seen(pack(SERIAL_STRANGER), soh=0.6), gate, 1.0)
    assert events + events2 == []  # soh_low came back: already logged for this pack


def test_packs_are_judged_independently() -> None:
    gate = make_gate(packs=3)
    x = seen(pack(SERIAL_A), pack(SERIAL_B), pack(SERIAL_BLOCKED))
    x = replace(x, fresh=np.array([True, False, True]))
    state, events = run(fresh_state(gate), x, gate, 5.0)
    assert state.admitted.tolist() == [True, False, False]
    assert state.status.tolist() == [AdmissionStatus.ADMITTED, AdmissionStatus.PENDING, AdmissionStatus.NOT_ADMITTED]
    assert sorted((e.pack_id, e.kind) for e in events) == [("p0", EventKind.ADMITTED), ("p2", EventKind.NOT_ADMITTED)]


def _through_json(document: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(document, allow_nan=False))
    return loaded


def test_admissions_survive_a_restart_for_the_same_pack_only() -> None:
    gate = make_gate(packs=2)
    x = seen(pack(SERIAL_STRANGER), pack(SERIAL_B))
    state, _ = run(fresh_state(gate), x, gate, 5.0, admits={0: "alice"})
    assert state.status.tolist() == [AdmissionStatus.OPERATOR_ADMITTED, AdmissionStatus.ADMITTED]
    documents = [_through_json(state.pack_document(i)) for i in range(2)]

    restored = fresh_state(gate)
    for i, document in enumerate(documents):
        restored = restored.with_pack_document(i, document)
    waiting, _ = run(restored, seen(None, None), gate, 1.0)
    assert waiting.admitted.tolist() == [False, False]  # not until the packs answer
    back, events = run(waiting, x, gate, TICK_S)
    assert back.status.tolist() == [AdmissionStatus.OPERATOR_ADMITTED, AdmissionStatus.ADMITTED]
    assert [e.kind for e in events] == [EventKind.ADMITTED, EventKind.ADMITTED]

    swapped, _ = run(restored, seen(pack(SERIAL_A), pack(SERIAL_STRANGER)), gate, 1.0)
    assert swapped.admitted.tolist() == [False, False]
    assert swapped.operator == ("", "")


def test_an_identity_without_a_capacity_survives_a_restart_in_strict_json() -> None:
    gate = make_gate()
    identity = pack(capacity_ah=math.nan)
    state, _ = run(fresh_state(gate), seen(identity), gate, 5.0)
    restored = fresh_state(gate).with_pack_document(0, _through_json(state.pack_document(0)))
    assert same_pack(restored.identity[0], identity)
    assert run(restored, seen(identity), gate, TICK_S)[0].admitted[0]


def test_a_restored_admission_is_withdrawn_when_the_registry_now_blocks_the_pack() -> None:
    gate = make_gate(registry=None)
    state, _ = run(fresh_state(gate), seen(pack(SERIAL_BLOCKED)), gate, 5.0)
    assert state.admitted[0]
    stricter = make_gate()
    restored = fresh_state(stricter).with_pack_document(0, _through_json(state.pack_document(0)))
    state, events = run(restored, seen(pack(SERIAL_BLOCKED)), stricter, 10.0)
    assert not state.admitted[0]
    assert not state.granted[0]
    assert [e.kind for e in events] == [EventKind.NOT_ADMITTED]


@pytest.mark.parametrize("document", [
    {}, {"admission.identity": {"serial_number": "1"}, "admission.granted": True, "admission.operator": ""},
    {"admission.identity": None, "admission.granted": "yes", "admission.operator": ""},
])
def test_a_missing_or_damaged_document_restores_nothing(document: dict[str, Any]) -> None:
    state = fresh_state(make_gate())
    restored = state.with_pack_document(0, document)
    assert restored.identity == (None,)
    assert not restored.granted[0]


def test_published_numbers_never_change() -> None:
    assert {r.name: int(r) for r in AdmissionReason} == {
        "NO_IDENTITY": 1, "UNKNOWN_PACK": 2, "BLOCKED": 4, "IDENTITY_MISMATCH": 8, "REGISTRY_MISMATCH": 16,
        "SOH_LOW": 32, "LATCHED_TRIP": 64, "CELL_SPREAD": 128, "STALE_DATA": 256}
    assert {s.name: int(s) for s in AdmissionStatus} == {
        "NOT_ADMITTED": 0, "PENDING": 1, "ADMITTED": 2, "OPERATOR_ADMITTED": 3}
    assert reason_labels(int(AdmissionReason.UNKNOWN_PACK | AdmissionReason.SOH_LOW)) == "unknown_pack, soh_low"
    assert reason_labels(0) == ""


@pytest.mark.parametrize("changes", [
    {"confirm_s": -1.0}, {"confirm_s": math.inf}, {"min_soh": 1.5}, {"min_soh_resistance": -0.1},
    {"max_cell_spread_v": 0.0}, {"max_soc_spread": 0.0}, {"capacity_tolerance": 1.0},
])
def test_settings_out_of_range_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        AdmissionSettings(**changes)


def test_the_inputs_of_a_bms_step_feed_the_gate() -> None:
    p = parameters(packs=2)
    r = rules(p)
    measured = inputs(p)
    measured.cell_voltage_v[1, 3] = 3.55  # 0.2 V below the others
    _, out = bms_step(empty_state(p, r), measured, p, r, TICK_S)
    gate = AdmissionGate.of(p.layouts, None)
    x = AdmissionInputs.of((pack(), pack(SERIAL_B)), out.fresh, out.latched_mask != 0, out.pack, out.quantities)
    state, _ = run(fresh_state(gate), x, gate, 5.0)
    assert state.admitted.tolist() == [True, False]
    assert AdmissionReason(int(state.reasons[1])) == AdmissionReason.CELL_SPREAD


# Property: whatever the order of identities, health and operator requests, a pack is admitted only when it
# reports an identity that fits its slot and is not blocked, and only after the gate passed without a break for
# the confirm time (or an operator admitted it) since that identity arrived; and it is admitted whenever that
# happened, until another pack arrives.

_CONFIRM_STEPS = 3
_IDENTITIES = [None, pack(SERIAL_A), pack(SERIAL_B), pack(SERIAL_BLOCKED), pack(SERIAL_B, cells=24),
               pack(SERIAL_STRANGER)]
_VOID = {3, 4}  # blocked, cell count mismatch
_REFUSED = {3, 4, 5}  # ... and unknown under `refuse`

_step = st.tuples(st.sampled_from(range(len(_IDENTITIES))), st.booleans(), st.booleans(),
                  st.sampled_from([0.5, 0.9, math.nan]), st.sampled_from([0.02, 0.3]), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, min_size=1, max_size=40))
def test_admission_holds_its_invariants_whatever_the_order_of_inputs(
        steps: list[tuple[int, bool, bool, float, float, bool]]) -> None:
    gate = make_gate(confirm_s=float(_CONFIRM_STEPS))
    state = fresh_state(gate)
    current: int | None = None  # the identity the slot last reported
    clear_run = 0
    earned = False  # since that identity arrived: the gate passed long enough, or an operator admitted it
    for choice, fresh, latched, soh, spread, admit in steps:
        identity = _IDENTITIES[choice]
        x = seen(identity, fresh=fresh, latched=latched, soh=soh, spread_v=spread)
        after = admission_step(state, x, gate, 1.0, {0: "op"} if admit else None)
        events = admission_events(state, after, x, gate, 0.0)

        if identity is not None and choice != current:
            current, clear_run, earned = choice, 0, False
        clear = (identity is not None and choice not in _REFUSED and fresh and not latched
                 and not soh < 0.7 and spread <= 0.1)
        clear_run = clear_run + 1 if clear else 0
        earned = earned or clear_run >= _CONFIRM_STEPS or (admit and identity is not None and choice not in _VOID)
        earned = earned and current not in _VOID

        admitted = bool(after.admitted[0])
        assert admitted == (identity is not None and earned)
        if choice in _VOID or identity is None:
            assert not admitted
        assert (after.status[0] in (AdmissionStatus.ADMITTED, AdmissionStatus.OPERATOR_ADMITTED)) == admitted
        assert bool(after.reasons[0] & int(NOT_OVERRIDABLE)) == (choice in _VOID or identity is None)
        assert not (after.reported[0] & ~int(REFUSALS))
        rose = admitted and (not state.admitted[0] or not same_pack(state.identity[0], after.identity[0]))
        assert sum(e.kind is EventKind.ADMITTED for e in events) == int(rose)
        fell = bool(state.admitted[0]) and not admitted
        if fell:
            assert [e.kind for e in events] == [EventKind.NOT_ADMITTED]
        state = after
