"""Alarms and conditions, methods and history over OPC UA, against the whole gateway in-process (engine, simulated
packs, the OPC UA output in its child process) with the real asyncua client over Basic256Sha256 SignAndEncrypt.

pack-02 stops talking from 8 s to 13 s (the sessions are open by then): its communication_loss rule raises and
clears. The operator acknowledges and confirms it; a viewer may not; the event log holds the same transitions as
the OPC UA events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaStatusCodeError

from gateway.adapters.event_log import EventLog
from gateway.adapters.opcua_users import Role
from gateway.app import Gateway, build_gateway, run_gateway
from gateway.config_loader import load_settings
from gateway.domain.events import EventKind
from gateway.settings import EventLogSettings
from tests.adapters.opcua_pki import ClientIdentity, make_client, write_users
from tests.ports import free_tcp_port
from tests.sites import simulated_packs

CONFIG = """
site_name = "alarms"
[store]
path = "{store}"
[engine]
stale_timeout_s = 2.0  # no flapping communication_loss when the machine is busy
temperature_stale_timeout_s = 4.0
[admission]
enabled = false
[modbus]
enabled = false
[prometheus]
enabled = false
[opcua]
port = {port}
history_interval_s = 0.5
[opcua.security]
certificate = "{pki}/own/cert.der"
private_key = "{pki}/own/key.pem"
trusted_clients_dir = "{pki}/trusted"
users_file = "{users}"
"""
PASSWORD = "correct horse battery staple"
CONDITION = "ns=2;s=site/packs/pack-02/alarms/communication_loss_alarm_data_age_s"


@dataclass
class Site:
    gateway: Gateway
    url: str
    store: Path
    client: ClientIdentity


@dataclass
class Events:
    received: list[Any] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def event_notification(self, event: Any) -> None:
        self.received.append(event)
        self.arrived.set()

    async def next(self, condition: str, predicate: Any, timeout_s: float = 20.0) -> Any:
        async with asyncio.timeout(timeout_s):
            while True:
                for event in self.received:
                    if _condition_id(event) == condition and predicate(event):
                        self.received.remove(event)
                        return event
                self.arrived.clear()
                await self.arrived.wait()


def _condition_id(event: Any) -> str:
    node = getattr(event, "NodeId", None)
    return node.to_string() if isinstance(node, ua.NodeId) else ""


@contextlib.asynccontextmanager
async def running_site(tmp_path: Path) -> AsyncIterator[Site]:
    pki = tmp_path / "pki"
    client = make_client(tmp_path / "client", "scada")
    (pki / "trusted").mkdir(parents=True)
    (pki / "trusted" / "scada.der").write_bytes(client.der())
    users = write_users(tmp_path / "users.toml", {"victor": (Role.VIEWER, PASSWORD), "otto": (Role.OPERATOR, PASSWORD),
                                                  "erin": (Role.ENGINEER, PASSWORD)})
    port = free_tcp_port()
    config = tmp_path / "site.toml"
    silent = '[{kind = "silent", start_s = 8.0, duration_s = 5.0}]'
    config.write_text(CONFIG.format(store=tmp_path / "s.sqlite", port=port, pki=pki, users=users)
                      + simulated_packs("alarms", ["pack-01", "pack-02"], {"pack-02": silent}))
    gateway = build_gateway(load_settings(config))
    stop = asyncio.Event()
    runner = asyncio.create_task(run_gateway(gateway, stop))
    try:
        async with asyncio.timeout(60):
            while not all(service.ready.is_set() for service in gateway.services):
                if runner.done():
                    runner.result()
                await asyncio.sleep(0.1)
        yield Site(gateway, f"opc.tcp://127.0.0.1:{port}/bms-gateway/", tmp_path / "s.sqlite", client)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


@contextlib.asynccontextmanager
async def session(site: Site, user: str) -> AsyncIterator[Client]:
    client = Client(site.url, timeout=10)
    client.application_uri = site.client.application_uri
    await client.set_security_string(site.client.security_string())
    client.set_user(user)
    client.set_password(PASSWORD)
    async with client:
        yield client


async def _call(client: Client, object_id: str, method_id: Any, *arguments: Any) -> Any:
    return await client.get_node(object_id).call_method(method_id, *arguments)


async def test_alarm_lifecycle_methods_and_history(tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, session(site, "otto") as operator, \
            session(site, "victor") as viewer, session(site, "erin") as engineer:
        events = Events()
        subscription = await operator.create_subscription(50, events)
        await subscription.subscribe_events(operator.nodes.server, [ua.ObjectIds.LimitAlarmType,
                                                                    ua.ObjectIds.OffNormalAlarmType])

        raised = await events.next(CONDITION, lambda e: getattr(e, "ActiveState/Id") is True)
        assert raised.SourceName == "pack-02"
        assert raised.ConditionName == "communication_loss_alarm_data_age_s"
        assert raised.Severity == 700
        assert raised.Retain is True
        assert raised.HighLimit == pytest.approx(1.85)  # the stale timeout less one tick
        assert getattr(raised, "AckedState/Id") is False
        assert getattr(raised, "ConfirmedState/Id") is False
        assert "communication_loss" in raised.Message.Text
        acknowledge = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
        confirm = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Confirm)
        comment = ua.LocalizedText("looking at it")

        with pytest.raises(UaStatusCodeError) as denied:  # a viewer may not acknowledge
            await _call(viewer, CONDITION, acknowledge, raised.EventId, comment)
        assert denied.value.code == ua.StatusCodes.BadUserAccessDenied
        with pytest.raises(UaStatusCodeError) as unknown:
            await _call(operator, CONDITION, acknowledge, b"not an event of it", comment)
        assert unknown.value.code == ua.StatusCodes.BadEventIdUnknown
        with pytest.raises(UaStatusCodeError) as early:  # confirming needs the acknowledgement first
            await _call(operator, CONDITION, confirm, raised.EventId, comment)
        assert early.value.code == ua.StatusCodes.BadInvalidState

        assert await _call(operator, CONDITION, acknowledge, raised.EventId, comment) is None  # Part 9: no outputs
        acked = await events.next(CONDITION, lambda e: getattr(e, "AckedState/Id") is True)
        assert getattr(acked, "ActiveState/Id") is True
        assert acked.ClientUserId == "opcua otto"
        assert acked.Comment.Text == "looking at it"
        with pytest.raises(UaStatusCodeError) as again:
            await _call(operator, CONDITION, acknowledge, acked.EventId, comment)
        assert again.value.code == ua.StatusCodes.BadConditionBranchAlreadyAcked

        cleared = await events.next(CONDITION, lambda e: getattr(e, "ActiveState/Id") is False)
        assert cleared.Retain is True  # still unconfirmed
        refreshed = Events()
        other = await viewer.create_subscription(50, refreshed)
        await other.subscribe_events(viewer.nodes.server, ua.ObjectIds.AlarmConditionType)
        await _call(viewer, "i=2782", ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
                    ua.Variant(other.subscription_id, ua.VariantType.UInt32))
        replayed = await refreshed.next(CONDITION, lambda e: True)
        assert getattr(replayed, "ActiveState/Id") is False
        assert replayed.Retain is True

        fixed = ua.LocalizedText("fixed the cable")
        assert await _call(operator, CONDITION, confirm, cleared.EventId, fixed) is None
        confirmed = await events.next(CONDITION, lambda e: getattr(e, "ConfirmedState/Id") is True)
        assert confirmed.Retain is False

        reset_all = ua.NodeId(ua.String("types/SiteType/ResetAll"), ua.Int16(2))
        with pytest.raises(UaStatusCodeError) as viewer_reset:
            await _call(viewer, "ns=2;s=site", reset_all)
        assert viewer_reset.value.code == ua.StatusCodes.BadUserAccessDenied
        assert await _call(operator, "ns=2;s=site", reset_all) == "pack-01: done; pack-02: done"

        soc = ua.NodeId(ua.String("types/PackType/SetSoC"), ua.Int16(2))
        with pytest.raises(UaStatusCodeError) as not_engineer:
            await _call(operator, "ns=2;s=site/packs/pack-01", soc, ua.Variant(0.5, ua.VariantType.Double))
        assert not_engineer.value.code == ua.StatusCodes.BadUserAccessDenied
        with pytest.raises(UaStatusCodeError) as out_of_range:
            await _call(engineer, "ns=2;s=site/packs/pack-01", soc, ua.Variant(1.5, ua.VariantType.Double))
        assert out_of_range.value.code == ua.StatusCodes.BadOutOfRange
        outcome = await _call(engineer, "ns=2;s=site/packs/pack-01", soc, ua.Variant(0.25, ua.VariantType.Double))
        assert outcome.startswith("done")
        block = ua.NodeId(ua.String("types/PackType/Block"), ua.Int16(2))
        assert await _call(engineer, "ns=2;s=site/packs/pack-01", block) == "done"
        async with asyncio.timeout(5):
            while not site.gateway.hub.latest.packs[0].disconnect_requested:
                await asyncio.sleep(0.1)

        soc_node = viewer.get_node("ns=2;s=site/packs/pack-01/soc")
        history = await soc_node.read_raw_history(datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC))
        assert len(history) >= 5
        assert all(value.StatusCode.is_good() for value in history[-3:])
        times = [value.SourceTimestamp for value in history]
        assert times == sorted(times)

    logged = [e for e in EventLog(site.store, EventLogSettings()).query() if e.pack_id == "pack-02"
              and e.code == "communication_loss" and e.threshold == pytest.approx(raised.HighLimit)]
    logged.sort(key=lambda e: e.time)
    start = next(i for i, e in enumerate(logged) if e.kind is EventKind.RAISED
                 and e.time == pytest.approx(raised.Time.timestamp(), abs=1e-3))
    after = [(e.kind, e.operator) for e in logged[start:]]  # the raise the operator acknowledged, and on
    assert after[:4] == [(EventKind.RAISED, ""), (EventKind.ACKNOWLEDGED, "opcua otto"), (EventKind.CLEARED, ""),
                         (EventKind.CONFIRMED, "opcua otto")]
    assert logged[start + 2].time == pytest.approx(cleared.Time.timestamp(), abs=1e-3)
    other_rule = [e.kind for e in EventLog(site.store, EventLogSettings()).query() if e.pack_id == "pack-02"
                  and e.code == "communication_loss" and e.threshold != pytest.approx(raised.HighLimit)]
    assert EventKind.RAISED in other_rule
    assert EventKind.ACKNOWLEDGED not in other_rule  # the acknowledgement was for that one condition
    commands = [(e.code, e.operator, e.detail) for e in EventLog(site.store, EventLogSettings()).query()
                if e.kind is EventKind.COMMAND]
    assert ("acknowledge", "opcua victor", "refused: OPC UA user with viewer may not acknowledge (needs operator)") \
        in commands
    assert any(code == "set_soc" and operator == "opcua erin" for code, operator, _ in commands)


async def test_a_second_session_on_the_channel_does_not_lend_its_role_to_the_first(tmp_path: Path) -> None:
    """asyncua serves a channel's requests as its newest session: the gateway refuses a request whose
    AuthenticationToken names another session, so the viewer's request cannot run as the engineer."""
    async with running_site(tmp_path) as site, session(site, "victor") as client:
        protocol = client.uaclient.protocol
        assert protocol is not None
        viewer_token = protocol.authentication_token
        await client.create_session()  # a second session on the same secure channel
        await client.activate_session(username="erin", password=PASSWORD,
                                      certificate=client.user_certificate)
        block = ua.NodeId(ua.String("types/PackType/Block"), ua.Int16(2))
        protocol.authentication_token = viewer_token
        with pytest.raises(UaStatusCodeError) as refused:
            await _call(client, "ns=2;s=site/packs/pack-01", block)
        assert refused.value.code == ua.StatusCodes.BadUserAccessDenied
        await asyncio.sleep(0.5)
        assert not site.gateway.hub.latest.packs[0].disconnect_requested
