"""Admission in the running gateway: the gate of gateway.bms.admission fed with the identities the packs report and
the previous tick's figures, operator admissions, events, swaps, and what survives a restart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.bms.admission import (
    AdmissionGate,
    AdmissionInputs,
    AdmissionState,
    admission_events,
    admission_step,
    admit_outcome,
    same_pack,
)
from gateway.bms.inputs import BoolArray
from gateway.bms.step import BmsOutputs
from gateway.domain.events import BmsEvent
from gateway.domain.identity import PackIdentity


@dataclass(frozen=True)
class AdmissionTick:
    admitted: BoolArray  # per pack: limits may be non-zero
    events: list[BmsEvent]
    swapped: list[int]  # packs whose slot now holds another pack than before: their learned state starts over
    outcomes: dict[int, str] = field(default_factory=dict)  # pack -> the outcome of an operator's admit request


class PackAdmission:
    """`gate` None: admission is off and every pack is admitted (a site whose packs report no identity)."""

    def __init__(self, gate: AdmissionGate | None, packs: int) -> None:
        self.gate = gate
        self.state = AdmissionState.empty(packs)
        self._packs = packs

    @property
    def enabled(self) -> bool:
        return self.gate is not None

    def step(self, identities: Sequence[PackIdentity | None], previous: BmsOutputs | None, dt_s: float,
             admits: Mapping[int, str], now: float) -> AdmissionTick:
        if self.gate is None:
            refused = {pack: "refused: admission is off in this gateway ([admission] enabled = false)"
                       for pack in admits}
            return AdmissionTick(np.ones(self._packs, dtype=bool), [], [], refused)
        inputs = self._inputs(identities, previous)
        before = self.state
        after = admission_step(before, inputs, self.gate, dt_s, admits)
        self.state = after
        swapped = [pack for pack, (old, new) in enumerate(zip(before.identity, after.identity, strict=True))
                   if old is not None and new is not None and not same_pack(old, new)]
        outcomes = {pack: admit_outcome(before, after, self.gate, pack, operator) for pack, operator in admits.items()}
        return AdmissionTick(after.admitted, admission_events(before, after, inputs, self.gate, now), swapped,
                             outcomes)

    def _inputs(self, identities: Sequence[PackIdentity | None], previous: BmsOutputs | None) -> AdmissionInputs:
        if previous is None:  # before the first step nothing is known: stale, not admitted
            unknown = np.full(self._packs, np.nan)
            return AdmissionInputs(tuple(identities), np.zeros(self._packs, dtype=bool),
                                   np.zeros(self._packs, dtype=bool), unknown, unknown)
        return AdmissionInputs.of(identities, previous.fresh, previous.latched_mask != 0, previous.pack,
                                  previous.quantities)

    def documents(self) -> list[dict[str, Any]]:
        """Per pack, what a checkpoint keeps (the identity, the grant and who gave it); empty when off."""
        if self.gate is None:
            return [{} for _ in range(self._packs)]
        return [self.state.pack_document(pack) for pack in range(self._packs)]

    def restore(self, documents: Mapping[int, Mapping[str, Any]]) -> None:
        for pack, document in documents.items():
            self.state = self.state.with_pack_document(pack, document)
