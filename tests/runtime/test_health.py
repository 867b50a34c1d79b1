"""The gateway's health from its hub, services and store: what fails, what only degrades."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from gateway.runtime.health import GatewayHealth, HealthStatus
from gateway.runtime.hub import SnapshotHub
from tests.factories import make_snapshot


@dataclass
class _Service:
    name: str
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        raise NotImplementedError


def _statuses(health: GatewayHealth, now: float | None = None) -> dict[str, HealthStatus]:
    return {check.name: check.status for check in health.report(now).checks}


async def test_no_snapshot_yet_fails() -> None:
    report = GatewayHealth(SnapshotHub(), 2.0).report()
    assert report.status is HealthStatus.FAIL
    assert "no snapshot published yet" in report.checks[0].detail


async def test_a_fresh_snapshot_with_every_service_serving_is_ok() -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(3))
    service = _Service("modbus")
    service.ready.set()
    health = GatewayHealth(hub, 2.0, [service])
    report = health.report()
    assert report.status is HealthStatus.OK
    assert (report.packs_online, report.packs_configured) == (3, 3)
    document = json.loads(report.to_json())
    assert document["status"] == "ok"
    assert [c["name"] for c in document["checks"]] == ["engine", "services", "store", "packs"]


async def test_a_stalled_engine_fails_once_its_snapshot_is_older_than_the_limit() -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(1))
    health = GatewayHealth(hub, 2.0)
    assert _statuses(health, hub.published_at + 1.9)["engine"] is HealthStatus.OK
    report = health.report(hub.published_at + 2.5)
    assert report.status is HealthStatus.FAIL
    assert "last snapshot 2.5 s ago (limit 2 s): the engine is stalled" in report.checks[0].detail


async def test_a_service_not_serving_fails() -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(1))
    serving, stopped = _Service("modbus"), _Service("opcua")
    serving.ready.set()
    report = GatewayHealth(hub, 2.0, [serving, stopped]).report()
    assert report.status is HealthStatus.FAIL
    assert report.checks[1].detail == "not serving: opcua"


async def test_store_failures_and_offline_packs_only_degrade() -> None:
    hub = SnapshotHub()
    await hub.publish(make_snapshot(3, offline=(1,)))
    problems: list[str] = []
    health = GatewayHealth(hub, 2.0, store_problems=[lambda: problems])
    assert _statuses(health) == {"engine": HealthStatus.OK, "services": HealthStatus.OK,
                                 "store": HealthStatus.OK, "packs": HealthStatus.DEGRADED}
    problems.append("event log writes failing")
    report = health.report()
    assert report.status is HealthStatus.DEGRADED
    assert report.checks[2].detail == "event log writes failing"
    assert report.checks[3].detail == "offline: pack-02"
    assert report.packs_online == 2
