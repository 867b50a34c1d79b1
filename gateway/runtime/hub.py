"""The latest-snapshot hub: the engine publishes, each output reads at its own pace.

Readers never block the engine: `latest` is a plain attribute read, and `wait_newer` lets an
output sleep until a snapshot newer than the one it has arrives.
"""

from __future__ import annotations

import asyncio
import time

from gateway.domain.snapshot import GatewaySnapshot


class SnapshotHub:
    def __init__(self) -> None:
        self._latest: GatewaySnapshot | None = None
        self._changed = asyncio.Condition()
        self.published_at = 0.0  # time.monotonic() of the latest publish

    @property
    def latest(self) -> GatewaySnapshot | None:
        return self._latest

    async def publish(self, snapshot: GatewaySnapshot) -> None:
        self._latest = snapshot
        self.published_at = time.monotonic()
        async with self._changed:
            self._changed.notify_all()

    async def wait_newer(self, sequence: int) -> GatewaySnapshot:
        """Return the first snapshot whose sequence is greater than `sequence`."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._latest is not None and self._latest.sequence > sequence
            )
        assert self._latest is not None
        return self._latest
