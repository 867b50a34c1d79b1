"""OPC UA security checked by an independent implementation: node-opcua (Node.js).

tests/external/opcua_secure.mjs connects with Basic256Sha256 / SignAndEncrypt, its own client certificate
(made here, placed in the gateway's trusted folder) and a user name and password, and reads values. It
checks the gateway's server certificate against its own trust list (the test puts the certificate there),
so a certificate node-opcua finds unfit fails the test. Without node / npm the test is skipped, except on
CI (CI=true).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.opcua_server import OpcUaOutput
from gateway.adapters.opcua_users import Role
from gateway.codec.node_model import NodeMap
from gateway.runtime.hub import SnapshotHub
from gateway.settings import OpcUaSecuritySettings, OpcUaSettings
from tests.adapters import test_opcua_external as node_tools
from tests.adapters.conftest_opcua import (
    OPCUA_PACK_IDS,
    UPDATE_INTERVAL_S,
    native_node_map_fixture,  # noqa: F401
    served_snapshot,
    start_output,
    stop_output,
)
from tests.adapters.opcua_pki import ClientIdentity, make_client, write_users
from tests.ports import free_tcp_port

pytestmark = pytest.mark.external

SCRIPT = node_tools.EXTERNAL_DIR / "opcua_secure.mjs"
NAMESPACE_URI = "urn:bms-gateway:site"


@pytest.fixture(scope="session", name="node")
def node_fixture() -> str:
    """The node executable, node-opcua installed (as in test_opcua_external.py; skipped without node)."""
    return node_tools.node_with_client()


async def _run(node: str, endpoint: str, pki: Path, identity: ClientIdentity, user: str, password: str,
               *paths: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), endpoint, NAMESPACE_URI, str(pki), str(identity.certificate_pem),
        str(identity.private_key), identity.application_uri, user, password, "Basic256Sha256", "SignAndEncrypt",
        *paths, cwd=node_tools.EXTERNAL_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), node_tools.CLIENT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
    lines = [line for line in stdout.decode().splitlines() if line.startswith("{")]
    assert lines, (stdout + stderr).decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def test_node_opcua_logs_in_on_an_encrypted_channel_and_bad_credentials_are_refused(
        node: str, native_node_map: NodeMap, tmp_path: Path) -> None:
    trusted = tmp_path / "gateway-pki" / "trusted"
    trusted.mkdir(parents=True)
    client = make_client(tmp_path / "node-client", "node-scada")
    stranger = make_client(tmp_path / "node-client", "node-stranger")
    shutil.copy(client.certificate, trusted / "node-scada.der")
    users = write_users(tmp_path / "users.toml", {"alice": (Role.OPERATOR, "alice-secret")})
    security = OpcUaSecuritySettings(certificate=tmp_path / "gateway-pki" / "own" / "cert.der",
                                     private_key=tmp_path / "gateway-pki" / "own" / "key.pem",
                                     trusted_clients_dir=trusted, users_file=users)
    settings = OpcUaSettings(host="127.0.0.1", port=free_tcp_port(), update_interval_s=UPDATE_INTERVAL_S,
                             security=security)
    hub = SnapshotHub()
    output = OpcUaOutput(settings, hub, native_node_map, OPCUA_PACK_IDS, "plant-7")
    task = await start_output(output)
    node_pki = tmp_path / "node-pki"
    (node_pki / "trusted" / "certs").mkdir(parents=True)
    shutil.copy(security.certificate, node_pki / "trusted" / "certs" / "gateway.der")
    try:
        snapshot = served_snapshot()
        await hub.publish(snapshot)
        expected_soc = snapshot.pack("pack-01").soc
        read = await _run(node, output.endpoint, node_pki, client, "alice", "alice-secret",
                          "packs/pack-01/soc", "pack_count")
        for _ in range(20):  # the output writes the snapshot asynchronously
            if read.get("values", {}).get("pack_count", {}).get("status") == "Good":
                break
            await asyncio.sleep(0.2)
            read = await _run(node, output.endpoint, node_pki, client, "alice", "alice-secret",
                              "packs/pack-01/soc", "pack_count")
        assert read.get("session") is True, read
        assert read["channel"] == {"policy": "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256",
                                   "mode": "SignAndEncrypt"}
        assert read["values"]["packs/pack-01/soc"] == {"status": "Good", "value": expected_soc}

        wrong = await _run(node, output.endpoint, node_pki, client, "alice", "not-the-password", "soc")
        assert (wrong.get("stage"), wrong.get("status")) == ("session", "BadUserAccessDenied"), wrong
        unknown = await _run(node, output.endpoint, node_pki, client, "mallory", "alice-secret", "soc")
        assert (unknown.get("stage"), unknown.get("status")) == ("session", "BadUserAccessDenied"), unknown
        untrusted = await _run(node, output.endpoint, node_pki, stranger, "alice", "alice-secret", "soc")
        assert "session" not in untrusted or untrusted["session"] is not True, untrusted
        assert untrusted.get("status") == "BadSecurityChecksFailed", untrusted
        rejected = list((tmp_path / "gateway-pki" / "rejected").iterdir())
        assert [path.read_bytes() for path in rejected] == [stranger.der()]
    finally:
        await stop_output(task)
