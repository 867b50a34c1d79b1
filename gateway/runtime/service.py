"""The shape of every long-running part (CAN reader, engine, each output): run until cancelled."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Service(Protocol):
    name: str
    ready: asyncio.Event  # set once the service is serving (ports bound, bus open)

    async def run(self) -> None:
        """Serve until cancelled; raise AdapterError if the service cannot start."""
