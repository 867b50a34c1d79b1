"""Monitored items served from the ValueTable, and the ones left to asyncua, on a real asyncua server.

The subscription is asyncua's own (created through its SubscriptionService, wrapped by `serve_from_table`); each
publish goes through `publish_results` and the PublishResult is encoded and decoded as on the wire. One server per
module (asyncua's start-up is ~2 s); each test starts from the factory snapshot and deletes its subscriptions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.subscription_service import SubscriptionService
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

from gateway.adapters.opcua_subscriptions import TableSubscription, serve_from_table
from gateway.adapters.opcua_tree import AddressSpace
from gateway.adapters.opcua_types import Server, node_id
from gateway.adapters.opcua_value_table import ValueTable
from gateway.adapters.opcua_values import ValueWriter
from gateway.codec.node_model import NodeMap
from gateway.domain.snapshot import GatewaySnapshot
from tests.adapters.conftest_opcua import (
    OPEN_SECURITY,
    connected,
    eventually,
    native_node_map_fixture,  # noqa: F401
    running_output,
    status_name,
)
from tests.factories import make_snapshot

SOC = "site/packs/pack-01/soc"
CELL = "site/packs/pack-01/cells/cell01/voltage"
STATE = "site/packs/pack-01/state"
CONTACTOR_TEXT = "site/packs/pack-01/contactor_state/value_as_text"  # a live enumerated variable's text
SOC_NOW = 0.56  # make_snapshot's
Notification = tuple[int, ua.DataValue]
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Served:
    server: Server
    service: SubscriptionService
    table: ValueTable
    writer: ValueWriter
    namespace: int
    snapshot: GatewaySnapshot
    published: list[ua.PublishResult]

    def node(self, path: str) -> ua.NodeId:
        return node_id(path, self.namespace)

    async def subscription(self) -> InternalSubscription:
        async def deliver(result: ua.PublishResult, _request: object) -> None:
            self.published.append(result)

        parameters = ua.CreateSubscriptionParameters(RequestedPublishingInterval=3_600_000,
                                                     RequestedLifetimeCount=10_000, RequestedMaxKeepAliveCount=1_000,
                                                     PublishingEnabled=True)
        result = await self.service.create_subscription(parameters, deliver, ua.NodeId(ua.Int32(1)),
                                                        request_callback=lambda _id: None)
        return self.service.subscriptions[result.SubscriptionId]

    async def publish(self, subscription: InternalSubscription) -> list[Notification]:
        """What a PublishRequest gets now, as a client decodes it (empty: nothing to publish)."""
        if not await subscription.publish_results(requestdata=object()):
            return []
        wire = struct_from_binary(ua.PublishResult, Buffer(struct_to_binary(self.published[-1])))
        data = wire.NotificationMessage.NotificationData
        if not data:  # the first publish of a subscription, or a keep-alive
            return []
        assert len(data) == 1
        return [(item.ClientHandle, item.Value) for item in data[0].MonitoredItems]

    async def write(self, **changes: Any) -> None:
        """A snapshot whose pack-01 has `changes`, written by the writer (one pass)."""
        pack = dataclasses.replace(self.snapshot.packs[0], **changes)
        self.snapshot = dataclasses.replace(self.snapshot, sequence=self.snapshot.sequence + 1, packs=(pack,),
                                            wall_time=self.snapshot.wall_time + 1)
        await self.writer.apply(self.snapshot)


def item(node: ua.NodeId, handle: int, *, queue: int = 1, flt: Any = None,
         mode: ua.MonitoringMode = ua.MonitoringMode.Reporting,
         attribute: int = ua.AttributeIds.Value) -> ua.MonitoredItemCreateRequest:
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor.NodeId = node
    request.ItemToMonitor.AttributeId = ua.UInt32(attribute)
    request.MonitoringMode = mode
    request.RequestedParameters.ClientHandle = ua.UInt32(handle)
    request.RequestedParameters.QueueSize = ua.UInt32(queue)
    request.RequestedParameters.SamplingInterval = ua.Double(0)
    if flt is not None:
        request.RequestedParameters.Filter = flt
    return request


def deadband(value: float) -> ua.DataChangeFilter:
    return ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValue,
                               DeadbandType=ua.UInt32(ua.DeadbandType.Absolute), DeadbandValue=ua.Double(value))


async def create(served: Served, subscription: InternalSubscription,
                 *requests: ua.MonitoredItemCreateRequest) -> list[ua.MonitoredItemCreateResult]:
    parameters = ua.CreateMonitoredItemsParameters(SubscriptionId=subscription.data.SubscriptionId,
                                                   ItemsToCreate=list(requests))
    results: list[ua.MonitoredItemCreateResult] = await served.service.create_monitored_items(parameters)
    assert all(result.StatusCode.is_good() for result in results)
    return results


def table_items(subscription: InternalSubscription) -> int:
    assert isinstance(subscription, TableSubscription)
    return subscription.monitored_item_srv.table_item_count


def values(notifications: list[Notification]) -> dict[int, object]:
    return {handle: value.Value.Value if value.Value is not None else None for handle, value in notifications}


@pytest_asyncio.fixture(scope="module", loop_scope="module", name="one_server")
async def one_server_fixture(native_node_map: NodeMap) -> AsyncIterator[Served]:
    server = Server()
    await server.init()
    namespace = await server.register_namespace("urn:test")
    space = AddressSpace(native_node_map, namespace, "site", ["pack-01"], 0.5)
    await space.build(server)
    table = ValueTable(server)
    serve_from_table(server, table, 500.0)
    writer = ValueWriter(server, space, table)
    snapshot = make_snapshot(packs=1)
    await writer.apply(snapshot)
    yield Served(server, server.iserver.subscription_service, table, writer, namespace, snapshot, [])


@pytest_asyncio.fixture(loop_scope="module", name="served")
async def served_fixture(one_server: Served) -> AsyncIterator[Served]:
    baseline = make_snapshot(packs=1)
    one_server.snapshot = dataclasses.replace(one_server.snapshot, packs=baseline.packs)
    await one_server.write()
    yield one_server
    await one_server.service.delete_subscriptions(list(one_server.service.subscriptions))
    one_server.published.clear()


async def test_plain_items_are_served_from_the_table_first_value_then_changes_only(served: Served) -> None:
    subscription = await served.subscription()
    value_trigger = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValue)
    results = await create(served, subscription, item(served.node(SOC), 1),
                           item(served.node(CELL), 2, flt=value_trigger))
    assert table_items(subscription) == 2
    assert [result.RevisedQueueSize for result in results] == [1, 1]
    assert [result.RevisedSamplingInterval for result in results] == [500.0, 500.0]  # as often as the writer writes
    first = await served.publish(subscription)
    assert values(first) == {1: SOC_NOW, 2: served.snapshot.packs[0].cell_voltage_v[0]}
    assert await served.publish(subscription) == []  # nothing changed
    await served.write(soc=0.7)
    changed = await served.publish(subscription)
    assert values(changed) == {1: 0.7}
    stamp = changed[0][1].SourceTimestamp
    assert stamp is not None
    assert stamp.timestamp() == pytest.approx(served.snapshot.wall_time)
    read = await served.server.get_node(served.node(SOC)).read_data_value()
    assert (read.Value, read.SourceTimestamp) == (changed[0][1].Value, stamp)


async def test_an_offline_value_is_notified_and_read_as_bad_without_a_number(served: Served) -> None:
    subscription = await served.subscription()
    await create(served, subscription, item(served.node(CELL), 7))
    await served.publish(subscription)
    await served.write(online=False)
    (handle, value), = await served.publish(subscription)
    assert (handle, status_name(value), value.Value.Value) == (7, "BadNoCommunication", None)
    read = await served.server.get_node(served.node(CELL)).read_data_value(raise_on_bad_status=False)
    assert status_name(read) == "BadNoCommunication"
    text = await served.server.get_node(served.node(CONTACTOR_TEXT)).read_data_value(raise_on_bad_status=False)
    assert (status_name(text), text.Value.Value) == ("BadNoCommunication", None)  # its text has no value either


async def test_deadband_longer_queue_and_status_trigger_are_left_to_asyncua_and_still_follow_the_writes(
        served: Served) -> None:
    subscription = await served.subscription()
    await create(served, subscription, item(served.node(SOC), 1, flt=deadband(0.05)),
                 item(served.node(SOC), 2, queue=5),
                 item(served.node(SOC), 3, flt=ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.Status)),
                 item(served.node(STATE), 4, attribute=ua.AttributeIds.DisplayName))
    assert table_items(subscription) == 0
    assert set(values(await served.publish(subscription))) == {1, 2, 3, 4}
    await served.write(soc=0.58)  # under the deadband
    await served.write(soc=0.59)
    assert values(await served.publish(subscription)) == {2: 0.59}  # deadband and Status trigger: nothing
    await served.write(soc=0.70)
    assert values(await served.publish(subscription)) == {1: 0.70, 2: 0.70}


@pytest.mark.parametrize(("queue", "delivered"), [(5, [0.58, 0.59]), (0, [0.59])])
async def test_a_table_item_keeps_the_newest_value_and_asyncua_a_longer_queue_every_one(
        served: Served, queue: int, delivered: list[float]) -> None:
    subscription = await served.subscription()
    await create(served, subscription, item(served.node(SOC), 2, queue=queue))
    assert table_items(subscription) == (1 if queue <= 1 else 0)
    await served.publish(subscription)
    await served.write(soc=0.58)
    await served.write(soc=0.59)
    assert [value.Value.Value for _, value in await served.publish(subscription)] == delivered


async def test_a_disabled_item_is_silent_until_reporting_then_gets_the_current_value(served: Served) -> None:
    subscription = await served.subscription()
    created, = await create(served, subscription, item(served.node(SOC), 5, mode=ua.MonitoringMode.Disabled))
    assert await served.publish(subscription) == []
    await served.write(soc=0.61)
    assert await served.publish(subscription) == []
    mode = ua.SetMonitoringModeParameters(SubscriptionId=subscription.data.SubscriptionId,
                                          MonitoringMode=ua.MonitoringMode.Reporting,
                                          MonitoredItemIds=[created.MonitoredItemId])
    await served.service.set_monitoring_mode(mode)
    assert values(await served.publish(subscription)) == {5: 0.61}
    mode.MonitoringMode = ua.MonitoringMode.Disabled
    await served.service.set_monitoring_mode(mode)
    await served.write(soc=0.62)
    assert await served.publish(subscription) == []


async def test_modify_takes_the_new_client_handle_and_a_deadband_hands_the_item_to_asyncua(served: Served) -> None:
    subscription = await served.subscription()
    created, = await create(served, subscription, item(served.node(SOC), 1))
    await served.publish(subscription)

    def modify(handle: int, flt: Any = None) -> ua.ModifyMonitoredItemsParameters:
        request = ua.MonitoredItemModifyRequest(MonitoredItemId=created.MonitoredItemId)
        request.RequestedParameters.ClientHandle = ua.UInt32(handle)
        request.RequestedParameters.QueueSize = ua.UInt32(1)
        if flt is not None:
            request.RequestedParameters.Filter = flt
        return ua.ModifyMonitoredItemsParameters(SubscriptionId=subscription.data.SubscriptionId,
                                                 ItemsToModify=[request])

    modified, = served.service.modify_monitored_items(modify(11))
    assert (modified.StatusCode.is_good(), modified.RevisedQueueSize) == (True, 1)
    await served.write(soc=0.6)
    assert values(await served.publish(subscription)) == {11: 0.6}
    await served.write(soc=0.61)  # pending when handed over: asyncua's queue reports it
    served.service.modify_monitored_items(modify(12, deadband(0.05)))
    assert table_items(subscription) == 0
    assert values(await served.publish(subscription)) == {12: 0.61}
    await served.write(soc=0.62)
    assert await served.publish(subscription) == []  # under the deadband: asyncua's filter now applies
    await served.write(soc=0.8)
    assert values(await served.publish(subscription)) == {12: 0.8}


async def test_two_items_on_one_node_and_an_asyncua_item_share_one_notification(served: Served) -> None:
    subscription = await served.subscription()
    await create(served, subscription, item(served.node(SOC), 1), item(served.node(SOC), 2),
                 item(served.node(SOC), 3, queue=4))
    assert table_items(subscription) == 2
    await served.publish(subscription)
    await served.write(soc=0.9)
    assert values(await served.publish(subscription)) == {1: 0.9, 2: 0.9, 3: 0.9}


async def test_deleted_items_and_subscriptions_are_not_notified_any_more(served: Served) -> None:
    subscription = await served.subscription()
    _kept, gone = await create(served, subscription, item(served.node(SOC), 1), item(served.node(CELL), 2))
    await served.publish(subscription)
    served.service.delete_monitored_items(ua.DeleteMonitoredItemsParameters(
        SubscriptionId=subscription.data.SubscriptionId, MonitoredItemIds=[gone.MonitoredItemId]))
    assert table_items(subscription) == 1
    await served.write(soc=0.3, cell_voltage_v=(3.3,) * 32)
    assert values(await served.publish(subscription)) == {1: 0.3}
    assert len(served.table.followers) == 1
    await served.service.delete_subscriptions([subscription.data.SubscriptionId])
    assert served.table.followers == ()
    await served.write(soc=0.31)  # no follower left: nothing to mark, nothing raised


@pytest.mark.asyncio(loop_scope="function")
async def test_a_network_client_gets_its_items_served_from_the_table(native_node_map: NodeMap) -> None:
    async with running_output(native_node_map) as running, connected(running) as client:
        assert running.settings.security == OPEN_SECURITY
        snapshot = make_snapshot(packs=3)
        await running.hub.publish(snapshot)
        cells = [client.get_node(running.node_id(f"site/packs/pack-01/cells/cell{n:02d}/voltage"))
                 for n in range(1, 33)]
        received: dict[str, float] = {}

        class Handler:
            def datachange_notification(self, node: Any, value: float, _data: object) -> None:
                received[node.nodeid.to_string()] = value

        await eventually(lambda: _written(cells[-1]))
        subscription = await client.create_subscription(50, Handler())
        await subscription.subscribe_data_change(cells, queuesize=1)
        table = running.output.table
        assert table is not None
        assert sum(follower.table_item_count for follower in table.followers) == 32
        await eventually(lambda: _true(len(received) == 32))
        assert received == {cell.nodeid.to_string(): snapshot.packs[0].cell_voltage_v[n] for n, cell in
                            enumerate(cells)}
        await subscription.delete()


async def _written(node: Any) -> bool:
    try:
        return status_name(await node.read_data_value(raise_on_bad_status=False)) == "Good"
    except ua.UaStatusCodeError:
        return False


async def _true(condition: bool) -> bool:
    return condition
