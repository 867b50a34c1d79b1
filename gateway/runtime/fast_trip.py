"""The short-circuit fast path: a frame carrying a discharge current beyond the short-circuit rule's threshold
makes the gateway request contactor opening at once, from the receive path, without waiting for the tick.

The tick then sees the frame's current in `peak_discharge_current_a` and latches the short-circuit trip, so the
event log, the outputs and the limits follow within one tick.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from gateway.bms.protection_rules import ProtectionRules
from gateway.domain.alarms import AlarmCode, Severity
from gateway.runtime.contactor_requests import ContactorRequester

log = logging.getLogger(__name__)


class FastTrip:
    def __init__(self, rules: ProtectionRules, requester: ContactorRequester) -> None:
        index = rules.index_of(AlarmCode.SHORT_CIRCUIT, Severity.TRIP)
        self._threshold_a = rules[index].threshold.copy() if index is not None else np.full(rules.pack_count, np.inf)
        self._requester = requester
        self.fired = 0

    def observe(self, pack: int, current_a: float) -> None:
        if -current_a >= self._threshold_a[pack]:
            self._requester.send_now(pack, time.monotonic())
            self.fired += 1
            log.error("pack %d: discharge current %.0f A beyond the short-circuit threshold %.0f A: contactor "
                      "open requested", pack, -current_a, self._threshold_a[pack])
