"""Client subscriptions whose data-change notifications come from the ValueTable (opcua_monitored_items).

asyncua creates every subscription; `serve_from_table` wraps its SubscriptionService so that each subscription a
client creates becomes a `TableSubscription` right away, before it has a monitored item. Its publishing cycle,
keep-alives, acknowledgements and republishing stay asyncua's. At each publish, the pending table notifications
and any notifications asyncua queued for its own items go out together as one DataChangeNotification, encoded
here (count, the notifications, no DiagnosticInfos). The server's internal subscriptions (no client, results
handed to Python callbacks as objects) stay asyncua's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.ua.ua_binary import struct_to_binary

from gateway.adapters.opcua_monitored_items import TableMonitoredItems
from gateway.adapters.opcua_types import ObjectIds, Server, ns0
from gateway.adapters.opcua_value_table import ValueTable

_COUNT = struct.Struct("<i")
_DATA_CHANGE_BINARY = ns0(ObjectIds.DataChangeNotification_Encoding_DefaultBinary)
_NO_DIAGNOSTICS = _COUNT.pack(0)


class TableSubscription(InternalSubscription):
    monitored_item_srv: TableMonitoredItems

    def has_published_results(self) -> bool:
        if self._publishing_enabled and self.monitored_item_srv.has_pending():
            return True
        return super().has_published_results()

    def _pop_triggered_datachanges(self, result: ua.PublishResult) -> None:
        items = self.monitored_item_srv
        if not items.has_pending():
            super()._pop_triggered_datachanges(result)
            return
        count, body = items.take()
        queued = [notification for queue in self._triggered_datachanges.values() for notification in queue]
        self._triggered_datachanges = {}
        parts = [_COUNT.pack(count + len(queued)), body, *(struct_to_binary(item) for item in queued), _NO_DIAGNOSTICS]
        result.NotificationMessage.NotificationData.append(ua.ExtensionObject(TypeId=_DATA_CHANGE_BINARY,
                                                                              Body=ua.ByteString(b"".join(parts))))


def serve_from_table(server: Server, table: ValueTable, minimum_sampling_ms: float) -> None:
    service = server.iserver.subscription_service
    create: Callable[..., Any] = service.create_subscription

    async def create_subscription(params: ua.CreateSubscriptionParameters, callback: Callable[..., Any],
                                  session_id: ua.NodeId,
                                  request_callback: Callable[..., Any] | None = None) -> ua.CreateSubscriptionResult:
        result: ua.CreateSubscriptionResult = await create(params, callback, session_id, request_callback)
        if request_callback is not None:
            subscription = service.subscriptions[result.SubscriptionId]
            subscription.__class__ = TableSubscription
            subscription.monitored_item_srv = TableMonitoredItems(subscription, service.aspace, table,
                                                                  minimum_sampling_ms)
        return result

    service.create_subscription = create_subscription  # type: ignore[method-assign]
