"""Contactor-open requests over CAN: sent when a rule asks for one, repeated while it stands, released after."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.bms.inputs import BoolArray
from gateway.domain.measurement import CommandField, CommandKind
from gateway.runtime.pack_link import PackLink

REPEAT_S = 1.0  # a pack that missed the request (or rebooted) hears it again within this time


class ContactorRequester:
    def __init__(self, links: Sequence[PackLink], packs: int) -> None:
        self._links = {link.pack_index: link for link in links}
        self._requested = np.zeros(packs, dtype=bool)
        self._last_sent = np.full(packs, -np.inf)

    def update(self, open_contactor: BoolArray, now: float) -> None:
        due = open_contactor & (~self._requested | (now - self._last_sent >= REPEAT_S))
        released = self._requested & ~open_contactor
        for pack in np.nonzero(due | released)[0].tolist():
            link = self._links.get(pack)
            if link is not None:
                link.command(CommandKind.CONTACTOR_OPEN, {CommandField.OPEN_REQUEST: float(open_contactor[pack])})
            self._last_sent[pack] = now
        self._requested = open_contactor.copy()

    def send_now(self, pack: int, now: float) -> None:
        """The fast path: request opening at once, outside the tick."""
        link = self._links.get(pack)
        if link is not None:
            link.command(CommandKind.CONTACTOR_OPEN, {CommandField.OPEN_REQUEST: 1.0})
        self._last_sent[pack] = now
