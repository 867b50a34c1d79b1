"""The OPC UA output read by an independent implementation: node-opcua (Node.js).

tests/external/opcua_read.mjs browses a pack, reads its SoC (value, EngineeringUnits, EURange), an
offline pack's voltage and any further nodes it is asked for, and prints JSON. node-opcua is
installed on demand into tests/external/node_modules. Without node / npm the test is skipped, except
on CI (CI=true).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asyncua.client.client import Client

from gateway.adapters.opcua_pack_methods import PACK_METHODS
from gateway.bms.usage import SOC_BAND_EDGES, TEMPERATURE_BAND_EDGES_C
from gateway.codec.node_model import UNECE_NAMESPACE_URI, unece_unit_id
from gateway.domain.snapshot import PackSnapshot
from tests.adapters.conftest_opcua import (
    RunningOpcUa,
    native_node_map_fixture,  # noqa: F401
    opcua_client_fixture,  # noqa: F401
    opcua_server_fixture,  # noqa: F401
    served_snapshot,
    wait_written,
)
from tests.external_tools import EXTERNAL_DIR, node_with

pytestmark = pytest.mark.external

SCRIPT = EXTERNAL_DIR / "opcua_read.mjs"
CLIENT_TIMEOUT_S = 60.0




def node_with_client() -> str:
    """The node executable with node-opcua-client installed (the other node-opcua tests use it too)."""
    return node_with(["node-opcua-client"], "to run the node-opcua client")


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
    return node_with_client()


async def test_node_opcua_reads_the_pack(node_opcua: str, opcua_server: RunningOpcUa,
                                         opcua_client: Client) -> None:
    published = served_snapshot()
    await opcua_server.hub.publish(published)
    output = opcua_server.output
    await wait_written(opcua_server, opcua_client)

    namespace_uri = opcua_server.settings.namespace_uri
    result = await _run_client(node_opcua, output.endpoint, namespace_uri, "pack-01", "pack-03")

    assert result["namespaceIndex"] == output.namespace_index == 2
    expected_children = [v.browse_name for v in opcua_server.node_map.pack] + [
        "Cells", "Temperatures", "TimeAtTemperature", "TimeAtSoC", "Identity", "Alarms"] + [
        method.browse_name for method in PACK_METHODS]
    assert result["packChildren"] == expected_children
    assert result["soc"] == {"status": "Good", "value": published.pack("pack-01").soc}
    assert result["socUnit"] == {"unitId": unece_unit_id("C62"), "displayName": "1",
                                 "namespaceUri": UNECE_NAMESPACE_URI}
    assert result["socRange"] == {"low": 0, "high": 1}
    assert result["offlineVoltage"] == {"status": "BadNoCommunication", "value": None}


def _estimator_values(pack: PackSnapshot) -> dict[str, float]:
    """Path below site/packs/ -> the snapshot value, for every value the state estimator adds."""
    expected = {"soc_sigma": pack.soc_sigma, "soh_resistance": pack.soh_resistance,
                "current_bias": pack.current_bias_a}
    for n in range(1, len(pack.cell_soc_sigma) + 1):
        expected[f"cells/cell{n:02d}/soc_sigma"] = pack.cell_soc_sigma[n - 1]
        expected[f"cells/cell{n:02d}/capacity"] = pack.cell_capacity_ah[n - 1]
        expected[f"cells/cell{n:02d}/resistance"] = pack.cell_resistance_ohm[n - 1]
    for n, seconds in enumerate(pack.time_at_temperature_s, start=1):
        expected[f"time_at_temperature/band{n:02d}"] = seconds
    for n, seconds in enumerate(pack.time_at_soc_s, start=1):
        expected[f"time_at_soc/band{n:02d}"] = seconds
    return {f"{pack.pack_id}/{key}": value for key, value in expected.items()}


async def test_node_opcua_reads_the_estimator_values(node_opcua: str, opcua_server: RunningOpcUa,
                                                     opcua_client: Client) -> None:
    published = served_snapshot()
    await opcua_server.hub.publish(published)
    await wait_written(opcua_server, opcua_client)
    online, offline = published.pack("pack-01"), published.pack("pack-03")
    expected = _estimator_values(online)
    offline_expected = _estimator_values(offline)
    units = ["pack-01/cells/cell01/resistance/engineering_units", "pack-01/cells/cell01/resistance/eu_range",
             "pack-01/time_at_soc/band01/engineering_units", "pack-01/cells/cell01/capacity/engineering_units"]
    edges = ["pack-01/time_at_temperature/band_edges", "pack-01/time_at_soc/band_edges"]
    requests = [*expected, *offline_expected, *units, *edges, "description:pack-01/time_at_temperature/band05",
                "description:pack-01/time_at_soc/band_edges", "browse:pack-01/time_at_temperature",
                "browse:pack-01/cells/cell01"]

    result = await _run_client(node_opcua, opcua_server.output.endpoint, opcua_server.settings.namespace_uri,
                               "pack-01", "pack-03", *requests)

    values = result["values"]
    for path, value in expected.items():
        assert values[path] == {"status": "Good", "value": value}, path
    for path, value in offline_expected.items():  # the SoC sigma goes Bad with the SoC; learned values stay
        wanted = {"status": "BadNoCommunication", "value": None} if path.endswith("soc_sigma") else {
            "status": "Good", "value": value}
        assert values[path] == wanted, path
    ohm = {"unitId": unece_unit_id("OHM"), "displayName": "Ω", "namespaceUri": UNECE_NAMESPACE_URI}
    assert values[units[0]] == {"status": "Good", "value": ohm}
    assert values[units[1]] == {"status": "Good", "value": {"low": 0, "high": 0.01}}
    assert values[units[2]]["value"]["unitId"] == unece_unit_id("SEC")
    assert values[units[3]]["value"]["unitId"] == unece_unit_id("AMH")
    assert values[edges[0]] == {"status": "Good", "value": list(TEMPERATURE_BAND_EDGES_C)}
    assert values[edges[1]] == {"status": "Good", "value": list(SOC_BAND_EDGES)}
    assert result["descriptions"]["pack-01/time_at_temperature/band05"] == (
        "time online with the hottest sensor from 10 °C to under 20 °C")
    assert result["descriptions"]["pack-01/time_at_soc/band_edges"].startswith(
        "edges of the pack state of charge bands, as ratios (unit 1, C62)")
    assert result["children"]["pack-01/time_at_temperature"] == [
        "BandEdges", *(f"Band{n:02d}" for n in range(1, 11))]
    assert result["children"]["pack-01/cells/cell01"] == ["Voltage", "SoC", "SoCSigma", "Capacity", "Resistance"]
