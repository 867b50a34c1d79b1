"""What every OPC UA method of the gateway does first: find the caller, check the role, log a refusal, and turn
the engine's outcome into a Call result (Good and the outcome, or Bad_InvalidState / Bad_Timeout with it)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from asyncua import ua

from gateway.adapters.opcua_link import EngineLink
from gateway.adapters.opcua_roles import Caller, current_caller
from gateway.adapters.opcua_types import StatusCodes, status
from gateway.adapters.opcua_users import Role
from gateway.domain.events import BmsEvent, EventKind
from gateway.runtime.operator_commands import OperatorCommand


def operator_name(caller: Caller) -> str:
    return f"opcua {caller.name}" if caller.name else "opcua"


def refused_caller(link: EngineLink, needed: Role, pack_id: str, action: str) -> ua.StatusCode | None:
    """Bad_UserAccessDenied (and an event in the log) when the caller's role is below `needed`."""
    caller = current_caller()
    if caller.may(needed):
        return None
    role = caller.role.label if caller.role is not None else "no role"
    link.record(BmsEvent(time.time(), pack_id, EventKind.COMMAND, action, operator=operator_name(caller),
                         detail=f"refused: OPC UA user with {role} may not {action} (needs {needed.label})"))
    return status(StatusCodes.BadUserAccessDenied)


async def run_command(link: EngineLink, command: OperatorCommand) -> ua.CallMethodResult:
    return call_result(await link.execute(command))


def call_result(outcome: str, code: int | None = None) -> ua.CallMethodResult:
    result = ua.CallMethodResult()
    if code is None:
        code = (StatusCodes.BadInvalidState if outcome.startswith("refused")
                else StatusCodes.BadTimeout if outcome.startswith("unknown") else StatusCodes.Good)
    result.StatusCode = status(code)
    result.OutputArguments = [ua.Variant(outcome, ua.VariantType.String)]
    return result


def arguments_error(arguments: Sequence[ua.Variant], types: Sequence[ua.VariantType]) -> ua.StatusCode | None:
    if len(arguments) < len(types):
        return status(StatusCodes.BadArgumentsMissing)
    if len(arguments) > len(types):
        return status(StatusCodes.BadTooManyArguments)
    if any(argument.VariantType != kind for argument, kind in zip(arguments, types, strict=True)):
        return status(StatusCodes.BadTypeMismatch)
    return None
