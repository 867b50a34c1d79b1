"""python-can's virtual bus with a controller state a test sets: no interface that reports `bus.state` runs here.

Registered as interface "stateful-virtual" by the `stateful_virtual` fixture; `STATES[channel]` is what every bus
on that channel reports (ACTIVE when unset).
"""

from __future__ import annotations

import can
from can.interfaces.virtual import VirtualBus

STATES: dict[str, can.BusState] = {}


class StatefulVirtualBus(VirtualBus):
    @property
    def state(self) -> can.BusState:
        return STATES.get(str(self.channel_id), can.BusState.ACTIVE)
