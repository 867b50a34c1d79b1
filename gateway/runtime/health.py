"""The gateway's own health, for probes (`GET /healthz`, `bms-gateway health`, the Docker HEALTHCHECK).

    fail      the engine has published no snapshot for `stale_after_s`, or a service is not serving:
              what the gateway publishes is not current (the outputs' data would go stale), restart it
    degraded  it works, but a store write is failing (checkpoints, events or trends are not persisted)
              or a configured pack is offline: someone should look, a restart would not help
    ok        everything else
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from gateway.runtime.hub import SnapshotHub
from gateway.runtime.service import Service


class HealthStatus(IntEnum):
    OK = 0
    DEGRADED = 1
    FAIL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class HealthCheck:
    name: str
    status: HealthStatus
    detail: str


@dataclass(frozen=True)
class HealthReport:
    checks: tuple[HealthCheck, ...]
    packs_online: int = 0
    packs_configured: int = 0

    @property
    def status(self) -> HealthStatus:
        return max((check.status for check in self.checks), default=HealthStatus.OK)

    def to_json(self) -> bytes:
        return json.dumps({"status": self.status.label, "packs_online": self.packs_online,
                           "packs_configured": self.packs_configured,
                           "checks": [{"name": c.name, "status": c.status.label, "detail": c.detail}
                                      for c in self.checks]}, indent=2).encode() + b"\n"


ProblemSource = Callable[[], Sequence[str]]  # what is failing now, in words; empty when nothing


@dataclass
class GatewayHealth:
    """Filled in by the composition root once everything is built; read on every probe."""

    hub: SnapshotHub
    stale_after_s: float
    services: list[Service] = field(default_factory=list)
    store_problems: list[ProblemSource] = field(default_factory=list)

    def report(self, now_monotonic: float | None = None) -> HealthReport:
        now = time.monotonic() if now_monotonic is None else now_monotonic
        snapshot = self.hub.latest
        if snapshot is None:
            engine = HealthCheck("engine", HealthStatus.FAIL, "no snapshot published yet")
        else:
            age_s = now - self.hub.published_at
            engine = (HealthCheck("engine", HealthStatus.FAIL, f"last snapshot {age_s:.1f} s ago "
                                  f"(limit {self.stale_after_s:g} s): the engine is stalled")
                      if age_s > self.stale_after_s else
                      HealthCheck("engine", HealthStatus.OK, f"snapshot {snapshot.sequence}, {age_s:.2f} s ago"))
        idle = [service.name for service in self.services if not service.ready.is_set()]
        services = (HealthCheck("services", HealthStatus.FAIL, f"not serving: {', '.join(idle)}") if idle else
                    HealthCheck("services", HealthStatus.OK, f"{len(self.services)} serving"))
        problems = [problem for source in self.store_problems for problem in source()]
        store = (HealthCheck("store", HealthStatus.DEGRADED, "; ".join(problems)) if problems else
                 HealthCheck("store", HealthStatus.OK, "writes succeed"))
        checks = [engine, services, store]
        online = configured = 0
        if snapshot is not None:
            configured = len(snapshot.packs)
            offline = [pack.pack_id for pack in snapshot.packs if not pack.online]
            online = configured - len(offline)
            checks.append(HealthCheck("packs", HealthStatus.DEGRADED, f"offline: {', '.join(offline)}") if offline
                          else HealthCheck("packs", HealthStatus.OK, f"all {configured} online"))
        return HealthReport(tuple(checks), online, configured)
