"""The current value of every variable the writer keeps up to date, held encoded, one slot per node.

The writer stores each changed value once, encoded (opcua_encoding), and `publish` tells every subscription
which slots changed in the pass (opcua_monitored_items marks its items; the notification reuses the bytes).
asyncua's address space reads these nodes through a value callback: a Read decodes the slot once and keeps the
DataValue until the slot changes again. A monitored item asyncua serves itself (one with a deadband, a queue of
more than one value, ...) still gets its datachange callback for every change of its node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np
import numpy.typing as npt
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.server.address_space import AttributeValue
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

from gateway.adapters.opcua_types import Server


class ChangeFollower(Protocol):
    @property
    def table_item_count(self) -> int:
        """How many monitored items the table serves for this follower."""

    async def mark(self, changed: npt.NDArray[np.bool_]) -> None:
        """`changed[slot]` is True for every slot written since the last publish."""


class ValueTable:
    def __init__(self, server: Server) -> None:
        self._aspace = server.iserver.aspace
        self.slots: dict[ua.NodeId, int] = {}
        self.encoded: list[bytes] = []
        self._decoded: list[ua.DataValue | None] = []
        self._attributes: list[AttributeValue] = []
        self._changed: list[int] = []
        self._followers: list[ChangeFollower] = []

    def add(self, node_ids: Iterable[ua.NodeId]) -> None:
        """Take these variables over (their current value becomes the slot's; a node already held is skipped)."""
        for node_id in node_ids:
            if node_id in self.slots:
                continue
            node = self._aspace.get(node_id)
            if node is None:
                raise KeyError(f"{node_id} is not in the address space")
            attribute = node.attributes[AttributeIds.Value]
            current = attribute.value if attribute.value is not None else ua.DataValue()
            self.slots[node_id] = len(self.encoded)
            self.encoded.append(struct_to_binary(current))
            self._decoded.append(current)
            self._attributes.append(attribute)
            self._aspace.set_attribute_value_callback(node_id, AttributeIds.Value, self._read)

    def set(self, slot: int, encoded: bytes) -> None:
        self.encoded[slot] = encoded
        self._decoded[slot] = None
        self._changed.append(slot)

    def data_value(self, slot: int) -> ua.DataValue:
        decoded = self._decoded[slot]
        if decoded is None:
            decoded = struct_from_binary(ua.DataValue, Buffer(self.encoded[slot]))
            self._decoded[slot] = decoded
        return decoded

    @property
    def followers(self) -> tuple[ChangeFollower, ...]:
        return tuple(self._followers)

    def follow(self, follower: ChangeFollower) -> None:
        self._followers.append(follower)

    def forget(self, follower: ChangeFollower) -> None:
        if follower in self._followers:
            self._followers.remove(follower)

    async def publish(self) -> None:
        """Tell the subscriptions (and asyncua's own monitored items) what changed since the last call."""
        changed, self._changed = self._changed, []
        if not changed:
            return
        if self._followers:
            mask = np.zeros(len(self.encoded), dtype=np.bool_)
            mask[changed] = True
            for follower in list(self._followers):
                await follower.mark(mask)
        for slot in dict.fromkeys(changed):
            callbacks = self._attributes[slot].datachange_callbacks
            if callbacks:
                value = self.data_value(slot)
                for handle, callback in list(callbacks.items()):
                    await callback(handle, value)

    def _read(self, node_id: ua.NodeId, _attribute: AttributeIds) -> ua.DataValue:
        return self.data_value(self.slots[node_id])
