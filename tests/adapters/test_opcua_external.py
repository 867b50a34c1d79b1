"""The OPC UA output read by an independent implementation: node-opcua (Node.js).

tests/external/opcua_read.mjs browses a pack, reads its SoC (value, EngineeringUnits, EURange) and
an offline pack's voltage, and prints JSON. node-opcua is installed on demand into
tests/external/node_modules. Without node / npm the test is skipped, except on CI (CI=true).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from asyncua.client.client import Client

from gateway.codec.node_model import UNECE_NAMESPACE_URI, unece_unit_id
from tests.adapters.conftest_opcua import (
    RunningOpcUa,
    native_node_map_fixture,  # noqa: F401
    opcua_client_fixture,  # noqa: F401
    opcua_server_fixture,  # noqa: F401
    served_snapshot,
    wait_written,
)

pytestmark = pytest.mark.external

EXTERNAL_DIR = Path(__file__).resolve().parents[1] / "external"
SCRIPT = EXTERNAL_DIR / "opcua_read.mjs"
CLIENT_TIMEOUT_S = 60.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required on CI)")
    pytest.skip(reason)


def _node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed to run the node-opcua client")
    assert node is not None
    assert npm is not None
    return node, npm


def _install_client(npm: str) -> None:
    if (EXTERNAL_DIR / "node_modules" / "node-opcua-client").is_dir():
        return
    try:
        subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=EXTERNAL_DIR, check=True,
                       capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        output = error.stderr if isinstance(error.stderr, str) else ""
        _unavailable(f"npm install of node-opcua-client failed: {output[-2000:]}")


async def _run_client(node: str, *args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), *args, cwd=EXTERNAL_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
    lines = [line for line in stdout.decode().splitlines() if line.startswith("{")]  # node-opcua logs too
    assert lines, stdout.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@pytest.fixture(scope="session")
def node_opcua() -> str:
    """The node executable, with node-opcua installed (checked before any server is started)."""
    node, npm = _node_tools()
    _install_client(npm)
    return node


async def test_node_opcua_reads_the_pack(node_opcua: str, opcua_server: RunningOpcUa,
                                         opcua_client: Client) -> None:
    published = served_snapshot()
    await opcua_server.hub.publish(published)
    output = opcua_server.output
    await wait_written(opcua_server, opcua_client)

    namespace_uri = opcua_server.settings.namespace_uri
    result = await _run_client(node_opcua, output.endpoint, namespace_uri, "pack-01", "pack-03")

    assert result["namespaceIndex"] == output.namespace_index == 2
    expected_children = [v.browse_name for v in opcua_server.node_map.pack] + ["Cells", "Temperatures",
                                                                               "Identity"]
    assert result["packChildren"] == expected_children
    assert result["soc"] == {"status": "Good", "value": published.pack("pack-01").soc}
    assert result["socUnit"] == {"unitId": unece_unit_id("C62"), "displayName": "1",
                                 "namespaceUri": UNECE_NAMESPACE_URI}
    assert result["socRange"] == {"low": 0, "high": 1}
    assert result["offlineVoltage"] == {"status": "BadNoCommunication", "value": None}
