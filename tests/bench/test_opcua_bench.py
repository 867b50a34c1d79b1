"""bench/opcua.py: the lean PublishResponse decoder agrees with asyncua's, and a smoke run reports every figure."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

from bench.opcua_figures import ClientResult, notification_figures, percentiles_ms
from bench.opcua_wire import decode_publish_response, ticks_to_unix_s
from tests.bench.test_modbus_bench import number, table_row

ROOT = Path(__file__).resolve().parents[2]
GOOD = ua.StatusCode(ua.StatusCodes.Good)
BAD = ua.StatusCode(ua.StatusCodes.BadNoCommunication)


def _publish_response(items: list[ua.MonitoredItemNotification], *extra: object) -> bytes:
    result = ua.PublishResult(SubscriptionId=7, AvailableSequenceNumbers=[3, 4], MoreNotifications=False)
    result.NotificationMessage.SequenceNumber = 4
    result.NotificationMessage.NotificationData = [ua.DataChangeNotification(MonitoredItems=items), *extra]
    return bytes(struct_to_binary(ua.PublishResponse(Parameters=result)))


def _item(handle: int, variant: ua.Variant, moment: datetime,
          status: ua.StatusCode = GOOD) -> ua.MonitoredItemNotification:
    return ua.MonitoredItemNotification(ClientHandle=handle, Value=ua.DataValue(
        variant, StatusCode=status, SourceTimestamp=moment, ServerTimestamp=moment + timedelta(milliseconds=3)))


def test_the_lean_decoder_reads_what_asyncua_reads() -> None:
    moment = datetime(2026, 11, 21, 8, 0, 0, 123_400, tzinfo=UTC)
    variants = [
        ua.Variant(3.25, ua.VariantType.Double), ua.Variant(True, ua.VariantType.Boolean),
        ua.Variant(7, ua.VariantType.UInt32), ua.Variant(-2, ua.VariantType.Int32),
        ua.Variant("pack_reported_fault (alarm)", ua.VariantType.String),
        ua.Variant(ua.LocalizedText("NORMAL"), ua.VariantType.LocalizedText),
        ua.Variant([0.1, 0.2], ua.VariantType.Double), ua.Variant(),
    ]
    items = [_item(200 + n, v, moment + timedelta(seconds=n)) for n, v in enumerate(variants)]
    items.append(_item(300, ua.Variant(), moment, BAD))
    raw = _publish_response(items)

    changes = decode_publish_response(Buffer(raw))
    expected = struct_from_binary(ua.PublishResponse, Buffer(raw))

    assert changes is not None
    decoded = expected.Parameters.NotificationMessage.NotificationData[0].MonitoredItems
    assert changes.handles == [i.ClientHandle for i in decoded]
    seconds = [ticks_to_unix_s(t) for t in changes.source_ticks]
    assert seconds == pytest.approx([i.Value.SourceTimestamp.timestamp() for i in decoded], abs=1e-6)
    parameters = changes.response.Parameters
    assert (parameters.SubscriptionId, parameters.AvailableSequenceNumbers, parameters.MoreNotifications) == (
        7, [3, 4], False)
    assert parameters.NotificationMessage.SequenceNumber == 4
    assert parameters.NotificationMessage.NotificationData  # non-empty: asyncua acknowledges the sequence number


def test_the_lean_decoder_leaves_what_it_does_not_expect_to_asyncua() -> None:
    moment = datetime(2026, 11, 21, tzinfo=UTC)
    events = ua.EventNotificationList(Events=[ua.EventFieldList(ClientHandle=1, EventFields=[ua.Variant(1.0)])])
    assert decode_publish_response(Buffer(_publish_response([_item(1, ua.Variant(1.0), moment)], events))) is None
    guid = ua.Variant(ua.Guid("72962B91-FA75-4AE6-8D28-B404DC7DAF63"), ua.VariantType.Guid)
    assert decode_publish_response(Buffer(_publish_response([_item(1, guid, moment)]))) is None


def test_notification_figures_pool_the_clients() -> None:
    results = [ClientResult({"monitored_items": 3, "cpu_s": 0.5, "slow_path": 0, "without_timestamp": 0},
                            np.array([0.1, 0.2, 0.3])),
               ClientResult({"monitored_items": 4, "cpu_s": 0.5, "slow_path": 1, "without_timestamp": 0},
                            np.array([0.4]))]
    figures = notification_figures(results, 2.0)
    assert (figures.clients, figures.monitored_items, figures.notifications) == (2, 3, 4)
    assert figures.per_client_per_s == (1.5, 0.5)
    assert figures.latency_ms["max"] == pytest.approx(400.0)
    assert figures.clients_cpu_share == pytest.approx(0.5)
    assert percentiles_ms([])["count"] == 0


@pytest.mark.e2e  # starts the gateway (with its OPC UA child), a bare asyncua server and client processes
@pytest.mark.long
def test_smoke_run_reports_notification_latency_loop_lag_and_can_ingest() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.opcua", "--quick", "--packs", "1", "--clients", "1",
                             "--no-spin-control"],  # no busy-looping process beside the other tests
                            cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr
    report = result.stdout
    for server in ("gateway + OPC UA child", "bare asyncua"):
        cells = table_row(report, server)
        assert number(cells[2]) > 0  # notifications/s
        p50, p99, worst = (number(c) for c in cells[4:7])
        assert 0 < p50 <= p99 <= worst
    assert "Monitored items refused: 0" in report
    for case in ("OPC UA off", "OPC UA on, no client", "OPC UA on, 1 clients"):
        cells = table_row(report, case)
        sent, received, dropped = (number(c) for c in cells[4:7])
        assert sent > 0
        assert received > 0
        assert dropped == 0
        assert "(" in cells[8]  # alarm latency: min / p50 / max (n)
    assert "## Targets" in report
    assert "notification latency p99" in report
