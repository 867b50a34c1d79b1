"""The OPC UA output's client metrics, counted in its child process and exported by the gateway's Prometheus
endpoint: connections and sessions while a real asyncua client is connected, good responses for its reads, a
fault for a service a viewer may not use, and the connection gone after it disconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asyncua import Client, ua

from tests.e2e.gateway_process import GatewayProcess, metric, scrape
from tests.sites import simulated_packs

pytestmark = pytest.mark.e2e

REPORT_WAIT_S = 2.5  # the child sends its counts every second


async def test_opcua_clients_sessions_and_responses_are_exported(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('site_name = "metrics"\n' + simulated_packs("opcua-metrics", ["pack-a"]))
    gateway = GatewayProcess.start(tmp_path, config)
    try:
        before = scrape(gateway.prometheus_port)
        assert metric(before, "bmsgw_opcua_sessions") == 0
        async with Client(f"opc.tcp://127.0.0.1:{gateway.opcua_port}/bms-gateway/", timeout=5) as client:
            namespace = await client.get_namespace_index("urn:bms-gateway:site")
            for _ in range(10):
                await client.get_node(f"ns={namespace};s=site/packs/pack-a/soc").read_value()
            with pytest.raises(ua.UaStatusCodeError):  # a viewer: BadUserAccessDenied before BadServiceUnsupported
                await client.uaclient.protocol.send_request(ua.QueryFirstRequest())
            await asyncio.sleep(REPORT_WAIT_S)
            during = scrape(gateway.prometheus_port)
        await asyncio.sleep(REPORT_WAIT_S)
        after = scrape(gateway.prometheus_port)
    finally:
        gateway.stop()
    assert metric(during, "bmsgw_opcua_clients_connected") == 1
    assert metric(during, "bmsgw_opcua_sessions") == 1
    assert metric(during, "bmsgw_opcua_connections_accepted_total") >= 1
    good = metric(during, "bmsgw_opcua_requests_total", outcome="good") - metric(
        before, "bmsgw_opcua_requests_total", outcome="good")
    assert good >= 10 + 3  # the reads, and the session's create, activate and namespace read
    assert metric(during, "bmsgw_opcua_requests_total", outcome="fault") - metric(
        before, "bmsgw_opcua_requests_total", outcome="fault") == 1
    assert metric(after, "bmsgw_opcua_clients_connected") == 0
    assert metric(after, "bmsgw_opcua_sessions") == 0
