"""The Modbus command path: holding-register writes validated, authorised and turned into engine commands.

Off unless `[modbus.commands] enabled`. A write is considered only from an allowed client address (and, with
Modbus/TCP Security on, only over TLS from a certificate whose role is one of `write_roles`; a refused client is
an event once a minute); every state-changing command also needs the client to have written the unlock code
within `unlock_window_s`. Exceptions: 01 when writes are not allowed for this
client or it is not unlocked, 02 for an address that is no command register, 03 for a value the register does not
accept. Every write except the EMS heartbeat is an event with the client's address (docs/modbus.md, Commands).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from ipaddress import ip_address

from pymodbus.constants import ExcCodes

from gateway.adapters.per_client_interval import PerClientInterval
from gateway.codec.command_registers import HEARTBEAT, PACK_COMMANDS, SITE_COMMANDS, UNLOCK, CommandRegister
from gateway.domain.events import BmsEvent, EventKind
from gateway.domain.operator_actions import OperatorAction
from gateway.runtime.command_port import CommandPort
from gateway.runtime.operator_commands import OperatorCommand
from gateway.settings import ModbusCommandSettings

SITE = "site"
REFUSAL_EVENT_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class ClientInfo:
    host: str
    tls: bool = False  # Modbus/TCP Security: the client presented a certificate the CA verified
    role: str | None = None  # that certificate's role extension, if any
    subject: str | None = None  # that certificate's subject (events name it)


CURRENT_CLIENT: ContextVar[ClientInfo | None] = ContextVar("bmsgw_modbus_client", default=None)

class CommandGate:
    """Authorisation, unlock windows and the hand-over to the engine, shared by every unit and SunSpec."""

    def __init__(self, settings: ModbusCommandSettings, port: CommandPort, pack_ids: Sequence[str],
                 write_roles: frozenset[str] | None = None) -> None:
        """`write_roles` None: plain Modbus TCP, no roles; a set: writes only over TLS from those roles."""
        self.settings = settings
        self.write_roles = write_roles
        self.port = port
        self.pack_ids = tuple(pack_ids)
        self._unlocked_until: dict[str, float] = {}
        self._refusal_events = PerClientInterval(REFUSAL_EVENT_INTERVAL_S)

    def client(self) -> ClientInfo | ExcCodes:
        """The client of the request being served, if it may write at all."""
        client = CURRENT_CLIENT.get()
        if not self.settings.enabled or client is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if self.write_roles is not None and not client.tls:
            return self._refuse(client, "refused: commands are accepted over Modbus/TCP Security (TLS) only")
        if self.write_roles is not None and client.role not in self.write_roles:
            return self._refuse(client, f"refused: certificate role {client.role or '(none)'} may not write "
                                        f"(write_roles: {', '.join(sorted(self.write_roles))})")
        try:
            address = ip_address(client.host)
        except ValueError:
            return ExcCodes.ILLEGAL_FUNCTION
        if not any(address in network for network in self.settings.allowed_clients):
            return self._refuse(client, "refused: client address not in allowed_clients")
        return client

    def _refuse(self, client: ClientInfo, detail: str) -> ExcCodes:
        """Exception 01, and an event for this client at most once per REFUSAL_EVENT_INTERVAL_S."""
        if self._refusal_events.due((client.host, client.subject)):
            self.record(SITE, "write", client, detail)
        return ExcCodes.ILLEGAL_FUNCTION

    def unlocked(self, client: ClientInfo | None) -> bool:
        return client is not None and self._unlocked_until.get(client.host, 0.0) >= time.monotonic()

    def unlock(self, client: ClientInfo, code: int, pack_id: str) -> ExcCodes | None:
        if code != self.settings.unlock_code:
            self.record(pack_id, "unlock", client, "refused: wrong unlock code")
            return ExcCodes.ILLEGAL_VALUE
        self._unlocked_until[client.host] = time.monotonic() + self.settings.unlock_window_s
        self.record(pack_id, "unlock", client, f"unlocked for {self.settings.unlock_window_s:g} s")
        return None

    def run(self, client: ClientInfo, name: str, packs: Sequence[str], actions: list[tuple[OperatorAction, float]],
            unit: str) -> ExcCodes | None:
        """A validated state-changing command: queued for the engine if the client is unlocked."""
        if not self.unlocked(client):
            self.record(unit, name, client, "refused: not unlocked (write the unlock code first)")
            return ExcCodes.ILLEGAL_FUNCTION
        self._unlocked_until[client.host] = time.monotonic() + self.settings.unlock_window_s
        operator = operator_of(client)
        for pack_id in packs:
            for action, value in actions:
                self.port.submit(OperatorCommand(pack_id, action, operator, value=value))
        return None

    def heartbeat(self, value: int) -> None:
        self.port.heartbeat(value, time.monotonic())

    def record(self, pack_id: str, name: str, client: ClientInfo, detail: str) -> None:
        self.port.record(BmsEvent(time.time(), pack_id, EventKind.COMMAND, name, operator=operator_of(client),
                                  detail=detail))


def operator_of(client: ClientInfo) -> str:
    if not client.tls:
        return f"modbus {client.host}"
    return f"modbus/tls {client.host} ({client.subject}, role {client.role or 'none'})"


class UnitCommands:
    """The command registers of one unit (the site, or one pack) in its holding-register block."""

    def __init__(self, gate: CommandGate, pack_id: str | None) -> None:
        self.gate = gate
        self.pack_id = pack_id
        self.registers = {r.offset: r for r in (PACK_COMMANDS if pack_id else SITE_COMMANDS)}
        self.disconnected = False  # the present request, for reads (from the latest snapshot)
        self.balancing_enabled = True

    @property
    def unit(self) -> str:
        return self.pack_id or SITE

    def write(self, address: int, values: Sequence[int]) -> ExcCodes | None:
        client = self.gate.client()
        if isinstance(client, ExcCodes):
            return client
        chosen = [(self.registers.get(address + i), raw) for i, raw in enumerate(values)]
        for register, raw in chosen:
            if register is None:
                self.gate.record(self.unit, f"register {address}", client, "refused: no command register there")
                return ExcCodes.ILLEGAL_ADDRESS
            if not register.low <= raw <= register.high:
                self.gate.record(self.unit, register.name, client, f"refused: value {raw} outside "
                                 f"{register.low}..{register.high}")
                return ExcCodes.ILLEGAL_VALUE
        for register, raw in chosen:
            assert register is not None
            outcome = self._execute(client, register, raw)
            if outcome is not None:
                return outcome
        return None

    def _execute(self, client: ClientInfo, register: CommandRegister, raw: int) -> ExcCodes | None:
        if register is UNLOCK:
            return self.gate.unlock(client, raw, self.unit)
        if register is HEARTBEAT:
            self.gate.heartbeat(raw)
            return None
        assert register.actions is not None
        packs = [self.pack_id] if self.pack_id else list(self.gate.pack_ids)
        return self.gate.run(client, register.name, packs, register.actions(raw), self.unit)

    def read(self, address: int, count: int) -> list[int]:
        client = CURRENT_CLIENT.get()
        values = []
        for offset in range(address, address + count):
            register = self.registers.get(offset)
            if register is UNLOCK:
                values.append(int(self.gate.unlocked(client)))
            elif register is HEARTBEAT:
                values.append(self.gate.port.heartbeat_value)
            elif register is not None and register.name.startswith("connection"):
                values.append(2 if self.disconnected else 1)
            elif register is not None and register.name == "balancing":
                values.append(int(self.balancing_enabled))
            else:
                values.append(0)
        return values
