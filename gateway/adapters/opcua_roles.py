"""Who is calling: the OPC UA session's gateway role, per request, and the services each role may use.

asyncua hands a method callback only (object id, *arguments), never the session. But every request of
an activated session first passes `PermissionRuleset.check_validity(user, request type, body)`
(asyncua/server/uaprocessor.py), in the connection's task that then runs the service. `RolePermissions`
refuses the services a role may not use and, for the others, stores the caller in a ContextVar for
the rest of that request: a method callback reads it with `current_caller()`. The callback must be a
coroutine function (`async def`): asyncua runs plain functions in a thread pool, without the context.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary
from asyncua.ua.uaerrors import UaError

from gateway.adapters.opcua_types import ObjectIds
from gateway.adapters.opcua_users import Role

ANONYMOUS_NAME = "(anonymous)"


@dataclass(frozen=True, slots=True)
class Caller:
    """The client behind the request being served: its role (None: no authenticated session) and name."""

    role: Role | None
    name: str

    def may(self, needed: Role) -> bool:
        return self.role is not None and self.role >= needed


NO_CALLER = Caller(None, "")
_caller: ContextVar[Caller] = ContextVar("bmsgw_opcua_caller", default=NO_CALLER)


def current_caller() -> Caller:
    """The caller of the OPC UA request being served (NO_CALLER outside one, e.g. server-side code)."""
    return _caller.get()


@dataclass
class GatewayUser(User):
    """asyncua's session user, with the gateway role. asyncua's own role stays `User`: it grants no
    address-space changes (those need `Admin`), and RolePermissions refuses them before anyway."""

    access: Role = field(default=Role.VIEWER, kw_only=True)

    @classmethod
    def of(cls, name: str, role: Role) -> GatewayUser:
        return cls(role=UserRole.User, name=name, access=role)


def _requests(*names: str) -> frozenset[ua.NodeId]:
    return frozenset(ua.NodeId(getattr(ObjectIds, f"{name}Request_Encoding_DefaultBinary")) for name in names)


# Services of an activated session. Session and channel management (CreateSession, ActivateSession,
# CloseSession, GetEndpoints, ...) never reaches the ruleset. Write, HistoryUpdate, AddNodes,
# DeleteNodes, AddReferences, DeleteReferences and RegisterServer are refused to every role: the address
# space is read-only, commands are methods (Call), whose callbacks check the role with current_caller().
_VIEWING = _requests(
    "Read", "Browse", "BrowseNext", "TranslateBrowsePathsToNodeIds", "RegisterNodes", "UnregisterNodes",
    "CreateSubscription", "ModifySubscription", "DeleteSubscriptions", "TransferSubscriptions", "SetPublishingMode",
    "Publish", "Republish", "CreateMonitoredItems", "ModifyMonitoredItems", "DeleteMonitoredItems",
    "SetMonitoringMode", "HistoryRead", "Call", "CloseSecureChannel")
SERVICES: dict[Role, frozenset[ua.NodeId]] = {Role.VIEWER: _VIEWING, Role.OPERATOR: _VIEWING, Role.ENGINEER: _VIEWING}


class RolePermissions(SimpleRoleRuleset):
    """The permission ruleset of every endpoint: sets the caller, refuses what the role may not use.
    (A SimpleRoleRuleset only because asyncua's set_security_policy is annotated with it; its table is unused.)"""

    def __init__(self, sessions: Callable[[ua.NodeId], Any] | None = None) -> None:
        """`sessions`: the server's session of an authentication token (InternalServer.lookup_external_session)."""
        self._sessions = sessions

    def check_validity(self, user: Any, action_type_id: Any, body: Any) -> bool:
        if not isinstance(user, GatewayUser) or not self._own_session(user, body):
            _caller.set(NO_CALLER)
            return False
        _caller.set(Caller(user.access, user.name or ANONYMOUS_NAME))
        return action_type_id in SERVICES[user.access]

    def _own_session(self, user: GatewayUser, body: Any) -> bool:
        """asyncua serves every request of a secure channel as its newest session, whatever session the request's
        AuthenticationToken names: with two sessions on one channel (legal in OPC UA) the first would act with the
        second's user. A request is served only when its token names the session asyncua is about to use."""
        if self._sessions is None:
            return True
        message = Buffer(getattr(body, "_data", b""))
        try:
            nodeid_from_binary(message)
            header = struct_from_binary(ua.RequestHeader, message)
        except (ValueError, struct.error, IndexError, UaError):
            return False
        session = self._sessions(header.AuthenticationToken)
        return session is not None and session.user is user
