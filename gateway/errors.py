"""The project's exception hierarchy.

    GatewayError                      anything the gateway raises on purpose
    ├── ConfigError                   a settings file or environment value is invalid (file, key, fix)
    ├── MappingError                  a mapping file (CAN, Modbus, OPC UA, cell model) is invalid
    ├── FrameRejected                 one CAN frame failed decoding or integrity checks (counted, dropped)
    ├── AdapterError                  a third-party library failed at an adapter boundary
    └── LogError                      a measurement log cannot be used (file, row or column, fix)

Third-party exceptions are translated into these at the adapter boundary, so the core only ever
handles its own types.
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One invalid entry: where it is, what is wrong, how to fix it."""

    source: str
    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.message}. Fix: {self.fix}"


class _ProblemsError(GatewayError):
    kind = "invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{self.kind} ({len(problems)} problem(s)):\n{lines}")


class ConfigError(_ProblemsError):
    """A configuration file or BMSGW_* environment value is invalid."""

    kind = "invalid configuration"


class MappingError(_ProblemsError):
    """A mapping file (CAN protocol, register map, node map, cell model) is invalid."""

    kind = "invalid mapping"


class FrameRejected(GatewayError):
    """A CAN frame that must be counted and discarded; `reason` is the counter label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class AdapterError(GatewayError):
    """A third-party library failed at an adapter boundary."""


class LogError(GatewayError):
    """A measurement log (replay, cell fit) cannot be used as it is."""

    def __init__(self, path: object, where: str, message: str, fix: str) -> None:
        self.problem = Problem(str(path), where, message, fix)
        super().__init__(f"invalid measurement log: {self.problem}")
