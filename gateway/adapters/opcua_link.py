"""How the OPC UA output reaches the engine: operator commands with their outcome, and events to log.

In the gateway's own process `PortLink` hands them to the engine's CommandPort; the output in its child process
uses the pipe to the gateway instead (gateway.adapters.opcua_process), which ends in a PortLink there.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Protocol

from gateway.domain.events import BmsEvent
from gateway.runtime.command_port import CommandPort
from gateway.runtime.operator_commands import OperatorCommand

OUTCOME_TIMEOUT_S = 5.0  # the engine answers in its next tick (0.1 s)


class EngineLink(Protocol):
    async def execute(self, command: OperatorCommand) -> str:
        """Submit the command for the engine's next tick; its outcome ("done", "refused: ...")."""
        ...

    def record(self, event: BmsEvent) -> None:
        """An event for the event log (and back to the outputs through the event feed)."""
        ...


class PortLink:
    def __init__(self, port: CommandPort) -> None:
        self._port = port

    async def execute(self, command: OperatorCommand) -> str:
        outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def reply(text: str) -> None:
            if not outcome.done():
                outcome.set_result(text)

        self._port.submit(replace(command, reply=reply))
        try:
            async with asyncio.timeout(OUTCOME_TIMEOUT_S):
                return await outcome
        except TimeoutError:
            return f"unknown: the engine did not answer within {OUTCOME_TIMEOUT_S:g} s"

    def record(self, event: BmsEvent) -> None:
        self._port.record(event)


class NoLink:
    """An output without an engine (tests of the address space alone): every command is refused."""

    async def execute(self, command: OperatorCommand) -> str:
        return "refused: this server is not connected to a gateway engine"

    def record(self, event: BmsEvent) -> None:
        pass
