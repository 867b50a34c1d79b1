"""The OPC UA output served from a child process: same address space and values as in process, start-up
errors reported by the parent, the child's lifetime tied to the pipe (it exits when the gateway stops)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections.abc import AsyncIterator

import pytest
from asyncua.client.client import Client

from gateway.adapters.opcua_process import OpcUaProcessOutput
from gateway.codec.node_model import NodeMap, pack_path
from gateway.codec.node_values import pack_values
from gateway.errors import AdapterError
from gateway.runtime.hub import SnapshotHub
from gateway.settings import DEFAULT_MAPPINGS_DIR, OpcUaSettings
from tests.adapters.conftest_opcua import (
    OPCUA_PACK_IDS,
    OPEN_SECURITY,
    eventually,
    native_node_map_fixture,  # noqa: F401
    same,
    served_snapshot,
)
from tests.ports import free_tcp_port
from tests.processes import alive, children_of

START_TIMEOUT_S = 60.0


@contextlib.asynccontextmanager
async def running(hub: SnapshotHub, port: int) -> AsyncIterator[tuple[OpcUaProcessOutput, asyncio.Task[None]]]:
    output = OpcUaProcessOutput(OpcUaSettings(host="127.0.0.1", port=port, update_interval_s=0.05,
                                              security=OPEN_SECURITY), hub,
                                DEFAULT_MAPPINGS_DIR, OPCUA_PACK_IDS, "plant-7")
    task = asyncio.create_task(output.run())
    ready = asyncio.create_task(output.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        task.result() if task.done() else task.cancel()
        pytest.fail("the OPC UA process did not become ready")
    try:
        yield output, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_child_serves_the_snapshots_and_exits_with_the_output(native_node_map: NodeMap) -> None:
    hub = SnapshotHub()
    async with running(hub, free_tcp_port()) as (output, _):
        child = output.pid
        assert child in children_of(os.getpid())
        snapshot = served_snapshot(sequence=3)
        await hub.publish(snapshot)
        expected = pack_values(native_node_map, snapshot.packs[0])
        async with Client(output.endpoint, timeout=5) as client:
            node = client.get_node(f"ns={output.namespace_index};s={pack_path('pack-01')}/soc")

            async def soc_written() -> bool:
                return same((await node.read_data_value()).Value.Value, expected["soc"].value)
            await eventually(soc_written)
            first = snapshot.packs[0]
            await hub.publish(dataclasses.replace(snapshot, sequence=4, packs=(
                dataclasses.replace(first, soc=0.125), *snapshot.packs[1:])))

            async def second_written() -> bool:
                return same((await node.read_data_value()).Value.Value, 0.125)
            await eventually(second_written)
    assert child is not None
    await eventually(lambda: asyncio.sleep(0, result=not alive(child)), timeout_s=10.0)


async def test_a_busy_port_is_reported_by_the_parent_naming_the_setting() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        output = OpcUaProcessOutput(OpcUaSettings(host="127.0.0.1", port=port, security=OPEN_SECURITY), SnapshotHub(),
                                    DEFAULT_MAPPINGS_DIR, ["pack-01"], "site")
        with pytest.raises(AdapterError) as raised:
            await asyncio.wait_for(output.run(), timeout=START_TIMEOUT_S)
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "BMSGW_OPCUA__PORT" in str(raised.value)
    assert not output.ready.is_set()
