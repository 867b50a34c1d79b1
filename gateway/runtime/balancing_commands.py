"""Balancing decisions over CAN: a pack's bleed mask is sent when it changes, repeated while any cell bleeds,
and a stop (enable 0) sent once when it ends.

The `BalancingCommand` message carries a 32-bit mask, bit n-1 for cell n: cells beyond 32 cannot be commanded
and their bits are never set (`BalancingSettings.commandable_cells` keeps the decision from choosing them).
The first update tells every pack its mask, a stop included, so that a pack still bleeding on the orders of a
gateway that restarted is stopped. A send that fails (the bus down) is tried again after `REPEAT_S`, not at
every tick: a send can block the tick for up to its timeout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.bms.inputs import BoolArray, IntArray
from gateway.domain.measurement import CommandField, CommandKind
from gateway.runtime.pack_link import PackLink

REPEAT_S = 5.0  # a pack that missed the command (or rebooted) hears it again within this time
MASK_BITS = 32
_BIT_VALUES = np.left_shift(np.int64(1), np.arange(MASK_BITS, dtype=np.int64))


def mask_bits(mask: BoolArray) -> IntArray:
    """Per pack: the BalancingMask value, bit i for cell i + 1, cells beyond MASK_BITS left out."""
    result: IntArray = mask[:, :MASK_BITS].astype(np.int64) @ _BIT_VALUES[: min(mask.shape[1], MASK_BITS)]
    return result


class BalancingCommander:
    def __init__(self, links: Sequence[PackLink], packs: int) -> None:
        self._links = {link.pack_index: link for link in links}
        self._sent = np.full(packs, -1, dtype=np.int64)  # the mask each pack last heard (-1: nothing yet)
        self._last_try = np.full(packs, -np.inf)
        self._failed = np.zeros(packs, dtype=bool)  # the last send to the pack failed

    def update(self, mask: BoolArray, now: float) -> None:
        """`mask` packs x cells: the cells to bleed now."""
        bits = mask_bits(mask)
        changed = bits != self._sent
        elapsed = now - self._last_try >= REPEAT_S
        due = (changed & ~self._failed) | ((changed | (bits != 0)) & elapsed)
        for pack in np.nonzero(due)[0].tolist():
            value = int(bits[pack])
            link = self._links.get(pack)
            sent = link is None or link.command(CommandKind.BALANCING, {
                CommandField.BALANCING_ENABLE: float(value != 0), CommandField.BALANCING_MASK: float(value)})
            self._last_try[pack] = now
            self._failed[pack] = not sent
            if sent:
                self._sent[pack] = value
