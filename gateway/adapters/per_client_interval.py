"""At most once per interval per client: for warnings and events a misbehaving client could otherwise flood."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable


class PerClientInterval:
    """`due(key)` is true for a key's first call and then once `interval_s` has passed since it was last true.
    Only the `kept` most recently due keys are remembered (a flood of new clients costs bounded memory)."""

    def __init__(self, interval_s: float, kept: int = 1024) -> None:
        self.interval_s = interval_s
        self._kept = kept
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def due(self, key: Hashable) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._kept:
            self._last.popitem(last=False)
        return True
