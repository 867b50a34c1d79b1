"""Fixtures for the OPC UA output tests: the real asyncua server on 127.0.0.1, the real asyncua client.

Imported explicitly by the test modules that use them (not collected from conftest.py); the
fixture functions are named `*_fixture` so the import does not shadow the parameter name.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.uaerrors import UaStatusCodeError

from gateway.adapters.opcua_server import OpcUaOutput
from gateway.codec.node_map import load_node_map
from gateway.codec.node_model import NodeMap, pack_path
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.snapshot import GatewaySnapshot
from gateway.runtime.hub import SnapshotHub
from gateway.settings import DEFAULT_MAPPINGS_DIR, OpcUaSecuritySettings, OpcUaSettings
from tests.adapters.estimates import with_own_estimates
from tests.factories import make_snapshot
from tests.ports import free_tcp_port

OPCUA_PACK_IDS = ("pack-01", "pack-02", "pack-03", "pack-99")  # pack-99 never appears in a snapshot
UPDATE_INTERVAL_S = 0.05
# policy None, anonymous viewers: the address-space tests (security: test_opcua_security.py)
OPEN_SECURITY = OpcUaSecuritySettings(anonymous=True, signed_endpoints=False)
START_TIMEOUT_S = 15.0


@dataclass
class RunningOpcUa:
    output: OpcUaOutput
    hub: SnapshotHub
    node_map: NodeMap
    settings: OpcUaSettings

    @property
    def url(self) -> str:
        return self.output.endpoint

    def node_id(self, path: str) -> str:
        return f"ns={self.output.namespace_index};s={path}"


async def start_output(output: OpcUaOutput) -> asyncio.Task[None]:
    """Run the output; return its task once it is ready (or raise what stopped it)."""
    task = asyncio.create_task(output.run(), name="opcua-output")
    ready = asyncio.create_task(output.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()  # raises the start-up error
        task.cancel()
        pytest.fail(f"the OPC UA output did not become ready within {START_TIMEOUT_S} s")
    return task


async def stop_output(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture(scope="session", name="native_node_map")
def native_node_map_fixture() -> NodeMap:
    return load_node_map(DEFAULT_MAPPINGS_DIR, "native")


def served_snapshot(sequence: int = 1) -> GatewaySnapshot:
    """pack-01 online, pack-02 online with a warning and a trip, pack-03 offline; the estimator's
    values differ from pack to pack (see `with_own_estimates`)."""
    alarms = {1: {AlarmCode.CELL_OVERTEMPERATURE: Severity.WARNING, AlarmCode.SENSOR_FAULT: Severity.TRIP}}
    snapshot = make_snapshot(packs=3, sequence=sequence, offline=(2,), alarms=alarms)
    return with_own_estimates(snapshot)


@asynccontextmanager
async def running_output(node_map: NodeMap) -> AsyncIterator[RunningOpcUa]:
    """OpcUaOutput serving `node_map` for OPCUA_PACK_IDS at site "plant-7". Nothing is published yet."""
    settings = OpcUaSettings(host="127.0.0.1", port=free_tcp_port(), update_interval_s=UPDATE_INTERVAL_S,
                             security=OPEN_SECURITY)
    hub = SnapshotHub()
    output = OpcUaOutput(settings, hub, node_map, OPCUA_PACK_IDS, "plant-7")
    task = await start_output(output)
    try:
        yield RunningOpcUa(output, hub, node_map, settings)
    finally:
        await stop_output(task)


@asynccontextmanager
async def connected(server: RunningOpcUa) -> AsyncIterator[Client]:
    client = Client(server.url, timeout=5)
    client.session_timeout = 60_000  # what the server grants (asks for less, so no warning is logged)
    async with client:
        yield client


@pytest.fixture(name="opcua_server")
async def opcua_server_fixture(native_node_map: NodeMap) -> AsyncIterator[RunningOpcUa]:
    """A fresh output of its own; nothing published yet."""
    async with running_output(native_node_map) as server:
        yield server


@pytest.fixture(name="opcua_client")
async def opcua_client_fixture(opcua_server: RunningOpcUa) -> AsyncIterator[Client]:
    async with connected(opcua_server) as client:
        yield client


@dataclass
class Served:
    server: RunningOpcUa
    client: Client
    snapshot: GatewaySnapshot

    def node(self, path: str) -> Node:
        return self.client.get_node(self.server.node_id(path))


@pytest_asyncio.fixture(scope="module", loop_scope="module", name="served")
async def served_fixture(native_node_map: NodeMap) -> AsyncIterator[Served]:
    """One output per test module serving `served_snapshot()`, fully written, and a client on it.
    Read-only: tests using it must not publish (mark them `asyncio(loop_scope="module")`)."""
    async with running_output(native_node_map) as server, connected(server) as client:
        snapshot = served_snapshot()
        await server.hub.publish(snapshot)
        await wait_written(server, client)
        yield Served(server, client, snapshot)


async def wait_written(server: RunningOpcUa, client: Client) -> None:
    """Wait until `served_snapshot()` is in the address space (pack-03's identity is written last)."""
    last = client.get_node(server.node_id(pack_path("pack-03", "identity/nominal_capacity")))
    await eventually(lambda: _written(last))


async def _written(node: Node) -> bool:
    with contextlib.suppress(UaStatusCodeError):
        data_value = await node.read_data_value(raise_on_bad_status=False)
        return status_name(data_value) != "BadWaitingForInitialData"
    return False


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Poll `check` until it holds (the output writes asynchronously, once per update interval)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(UPDATE_INTERVAL_S)


def same(read: object, expected: object) -> bool:
    if isinstance(read, float) and isinstance(expected, float):
        return math.isclose(read, expected, rel_tol=0.0, abs_tol=1e-12)
    return read == expected


def value_of(data_value: ua.DataValue) -> object:
    return None if data_value.Value is None else data_value.Value.Value


def status_name(data_value: ua.DataValue) -> str:
    code = data_value.StatusCode
    return "Good" if code is None else str(code.name)
