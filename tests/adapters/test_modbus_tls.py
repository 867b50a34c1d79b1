"""Modbus/TCP Security on the real server: TLS 1.2+ with mutual certificates, the role from the client's
certificate deciding read-only or operator writes. Clients: pymodbus's TLS client and `openssl s_client`."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from pymodbus.client import AsyncModbusTcpClient, AsyncModbusTlsClient

from gateway.adapters.modbus_server import ModbusOutput
from gateway.adapters.modbus_tls import role_of, server_tls_context
from gateway.codec.register_map import RegisterMap
from gateway.domain.operator_actions import OperatorAction
from gateway.errors import ConfigError
from gateway.runtime.command_port import CommandPort
from gateway.runtime.hub import SnapshotHub
from gateway.settings import ModbusCommandSettings, ModbusSecuritySettings, ModbusSettings
from tests.adapters.certificates import Authority, Issued, issue, make_authority, utf8_role
from tests.adapters.conftest import MODBUS_PACK_UNITS, MODBUS_SITE_UNIT, sunspec_device_of, wait_for_sequence
from tests.adapters.modbus_raw import MBAP, MBAP_SIZE, read_input_registers, registers_reply
from tests.factories import make_snapshot
from tests.ports import free_tcp_port
from tests.test_config import VALID as VALID_SITE

CODE = 4711
ILLEGAL_FUNCTION = 0x01
PACK = MODBUS_PACK_UNITS["pack-02"]
UNLOCK, SET_SOC = 0, 3
SEQUENCE = 31
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Pki:
    authority: Authority
    server: Issued
    clients: dict[str, Issued]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    plant = make_authority(directory, "plant-ca")
    rogue = make_authority(directory, "rogue-ca")
    clients = {
        "operator": issue(plant, directory, "operator-1", role=utf8_role("operator")),
        "viewer": issue(plant, directory, "viewer-1", role=utf8_role("viewer")),
        "no role": issue(plant, directory, "no-role-1"),
        "role not a UTF8String": issue(plant, directory, "printable-1", role=b"\x13\x08operator"),
        "signed by another CA": issue(rogue, directory, "rogue-1", role=utf8_role("operator")),
        "expired": issue(plant, directory, "expired-1", role=utf8_role("operator"), not_before_days=-30,
                         valid_days=-1),
    }
    return Pki(plant, issue(plant, directory, "gateway", server=True), clients)


def security(pki: Pki, **overrides: object) -> ModbusSecuritySettings:
    values: dict[str, object] = {"enabled": True, "port": free_tcp_port(), "certificate": pki.server.certificate,
                                 "private_key": pki.server.private_key, "client_ca": pki.authority.path}
    return ModbusSecuritySettings.model_validate(values | overrides)


@dataclass
class Secured:
    output: ModbusOutput
    hub: SnapshotHub
    commands: CommandPort
    settings: ModbusSettings
    register_map: RegisterMap


@contextlib.asynccontextmanager
async def secured_output(register_map: RegisterMap, pki: Pki, **overrides: object) -> AsyncIterator[Secured]:
    settings = ModbusSettings(host="127.0.0.1", port=free_tcp_port(), site_unit_id=MODBUS_SITE_UNIT,
                              commands=ModbusCommandSettings(enabled=True, unlock_code=CODE),
                              security=security(pki, **overrides))
    commands, hub = CommandPort(), SnapshotHub()
    output = ModbusOutput(settings, hub, register_map, MODBUS_PACK_UNITS, sunspec_device_of(MODBUS_PACK_UNITS),
                          commands)
    task = asyncio.create_task(output.run())
    try:
        async with asyncio.timeout(5.0):
            await output.ready.wait()
        await hub.publish(make_snapshot(4, sequence=SEQUENCE))
        yield Secured(output, hub, commands, settings, register_map)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def secured(native_register_map: RegisterMap, pki: Pki) -> AsyncIterator[Secured]:
    async with secured_output(native_register_map, pki) as running:
        yield running


def client_context(pki: Pki, client: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.authority.path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client is not None:
        issued = pki.clients[client]
        context.load_cert_chain(issued.certificate, issued.private_key)
    return context


@contextlib.asynccontextmanager
async def tls_client(secured: Secured, pki: Pki, client: str | None) -> AsyncIterator[AsyncModbusTlsClient]:
    connection = AsyncModbusTlsClient("127.0.0.1", port=secured.settings.security.port,
                                      sslctx=client_context(pki, client), timeout=2, retries=0, reconnect_delay=0)
    try:
        assert await connection.connect(), f"TLS connection with the {client} certificate failed"
        yield connection
    finally:
        connection.close()


async def handshake(secured: Secured, pki: Pki, client: str | None) -> ssl.SSLObject:
    """A bare TLS connection: the handshake's outcome, and whether the server then closes or serves."""
    reader, writer = await asyncio.open_connection("127.0.0.1", secured.settings.security.port,
                                                   ssl=client_context(pki, client))
    try:
        writer.write(read_input_registers(0x0101, MODBUS_SITE_UNIT, 0, 4))
        await writer.drain()
        async with asyncio.timeout(2.0):
            await reader.readexactly(MBAP_SIZE)  # TLS 1.3 reports a refused client certificate here
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        return ssl_object
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


async def test_an_operator_certificate_reads_and_after_unlocking_writes(secured: Secured, pki: Pki) -> None:
    async with tls_client(secured, pki, "operator") as client:
        await wait_for_sequence(client, PACK, SEQUENCE)
        snapshot = secured.hub.latest
        assert snapshot is not None
        expected = secured.register_map.encode_pack(snapshot.pack("pack-02"), snapshot)
        response = await client.read_input_registers(0, count=100, device_id=PACK)
        assert response.registers == [int(word) for word in expected[:100]]
        assert not (await client.write_register(UNLOCK, CODE, device_id=PACK)).isError()
        assert not (await client.write_register(SET_SOC, 5000, device_id=PACK)).isError()
    commands, events = secured.commands.drain()
    operator = "modbus/tls 127.0.0.1 (CN=operator-1, role operator)"
    assert [(c.pack_id, c.action, c.value, c.operator) for c in commands] == [
        ("pack-02", OperatorAction.SET_SOC, 0.5, operator)]
    assert [(e.code, e.operator, e.detail) for e in events] == [("unlock", operator, "unlocked for 30 s")]


@pytest.mark.parametrize(("certificate", "role"), [("viewer", "viewer"), ("no role", "(none)"),
                                                   ("role not a UTF8String", "(none)")])
async def test_any_other_role_reads_but_every_write_is_refused(secured: Secured, pki: Pki, certificate: str,
                                                               role: str) -> None:
    async with tls_client(secured, pki, certificate) as client:
        await wait_for_sequence(client, PACK, SEQUENCE)
        for _ in range(3):
            refused = await client.write_register(UNLOCK, CODE, device_id=PACK)
            assert refused.isError()
            assert refused.exception_code == ILLEGAL_FUNCTION
        assert (await client.read_holding_registers(UNLOCK, count=1, device_id=PACK)).registers == [0]
    commands, events = secured.commands.drain()
    assert commands == []
    assert [(e.code, e.detail) for e in events] == [  # one event per client and minute, not one per write
        ("write", f"refused: certificate role {role} may not write (write_roles: operator)")]


@pytest.mark.parametrize("certificate", [None, "signed by another CA", "expired"])
async def test_a_client_without_a_valid_certificate_is_refused_during_the_handshake(
        secured: Secured, pki: Pki, certificate: str | None) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await handshake(secured, pki, certificate)
    async with tls_client(secured, pki, "operator") as client:  # the others are still served
        await wait_for_sequence(client, PACK, SEQUENCE)


async def test_tls_is_1_2_or_later_and_the_plain_port_is_closed(secured: Secured, pki: Pki) -> None:
    assert (await handshake(secured, pki, "operator")).version() in ("TLSv1.2", "TLSv1.3")
    assert server_tls_context(secured.settings.security).minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", secured.settings.port)


async def test_plain_tcp_beside_tls_is_read_only(native_register_map: RegisterMap, pki: Pki) -> None:
    async with secured_output(native_register_map, pki, plain_tcp=True) as running:
        plain = AsyncModbusTcpClient("127.0.0.1", port=running.settings.port, timeout=2, retries=0)
        assert await plain.connect()
        try:
            await wait_for_sequence(plain, PACK, SEQUENCE)
            refused = await plain.write_register(UNLOCK, CODE, device_id=PACK)  # 127.0.0.1 is an allowed client
            assert refused.exception_code == ILLEGAL_FUNCTION
        finally:
            plain.close()
        _, events = running.commands.drain()
        assert [e.detail for e in events] == ["refused: commands are accepted over Modbus/TCP Security (TLS) only"]


async def test_openssl_s_client_reads_a_register_over_modbus_tcp_security(secured: Secured, pki: Pki) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    operator = pki.clients["operator"]
    async with tls_client(secured, pki, "operator") as client:
        await wait_for_sequence(client, MODBUS_SITE_UNIT, SEQUENCE)
    process = await asyncio.create_subprocess_exec(
        openssl, "s_client", "-quiet", "-verify_return_error", "-connect",
        f"127.0.0.1:{secured.settings.security.port}", "-CAfile", str(pki.authority.path),
        "-cert", str(operator.certificate), "-key", str(operator.private_key),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        process.stdin.write(read_input_registers(0x5151, MODBUS_SITE_UNIT, 0, 4))
        await process.stdin.drain()
        async with asyncio.timeout(10.0):
            header = await process.stdout.readexactly(MBAP_SIZE)
            answer = header + await process.stdout.readexactly(MBAP.unpack(header)[2] - 1)
    finally:
        process.kill()
        await process.wait()
    assert answer == registers_reply(0x5151, MODBUS_SITE_UNIT,
                                     [secured.register_map.version, 4, SEQUENCE >> 16, SEQUENCE & 0xFFFF])


@pytest.mark.parametrize(("der", "role"), [
    (utf8_role("operator"), "operator"),
    (b"\x0c\x81\x80" + b"a" * 128, "a" * 128),  # long-form length
    (b"\x0c\x08operator\x00", None),  # trailing bytes
    (b"\x0c\x09operator", None),  # length beyond the value
    (b"\x0c\x02\xff\xfe", None),  # not UTF-8
    (b"\x16\x08operator", None),  # IA5String
    (b"", None),
])
def test_the_role_is_exactly_one_der_utf8_string(pki: Pki, tmp_path: Path, der: bytes, role: str | None) -> None:
    issued = issue(pki.authority, tmp_path, "client", role=der)
    assert role_of(x509.load_pem_x509_certificate(issued.certificate.read_bytes())) == role


def test_the_documented_openssl_recipe_makes_an_operator_certificate(pki: Pki, tmp_path: Path) -> None:
    """Runs the first sh block of docs/modbus.md's Modbus/TCP Security section as written."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    section = (ROOT / "docs" / "modbus.md").read_text().split("## Modbus/TCP Security", 1)[1]
    recipe = section.split("```sh\n", 1)[1].split("```", 1)[0]
    for name in ("plant-ca.pem", "plant-ca.key"):
        shutil.copy(pki.authority.path.with_name(name), tmp_path / name)
    done = subprocess.run(["sh", "-e", "-c", recipe], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    certificate = x509.load_pem_x509_certificate((tmp_path / "ems.pem").read_bytes())
    assert role_of(certificate) == "operator"
    assert certificate.issuer == pki.authority.certificate.subject


def test_unusable_certificate_files_are_a_config_error_naming_file_and_key(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match=r"missing\.pem: modbus\.security\.certificate / private_key: cannot be "
                                          r"loaded: No such file"):
        server_tls_context(security(pki, certificate=missing))
    with pytest.raises(ConfigError, match=r"modbus\.security\.certificate / private_key: cannot be loaded"):
        server_tls_context(security(pki, private_key=pki.clients["viewer"].private_key))  # not the gateway's key
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"ca\.pem: modbus\.security\.client_ca: cannot be loaded"):
        server_tls_context(security(pki, client_ca=not_pem))


def test_check_config_loads_the_certificates_and_names_an_unusable_one(pki: Pki, tmp_path: Path) -> None:
    def check(client_ca: Path) -> subprocess.CompletedProcess[str]:
        site = tmp_path / "site.toml"
        site.write_text(VALID_SITE + f"""
[modbus.security]
enabled = true
certificate = "{pki.server.certificate}"
private_key = "{pki.server.private_key}"
client_ca = "{client_ca}"
""")
        return subprocess.run([sys.executable, "-m", "gateway", "check-config", str(site)], capture_output=True,
                              text=True, timeout=60, check=False)

    good = check(pki.authority.path)
    assert good.returncode == 0, good.stderr
    assert "modbus security: TLS 127.0.0.1:802, certificate CN=gateway valid until" in good.stdout
    bad = check(tmp_path / "nowhere.pem")
    assert bad.returncode == 2
    assert "nowhere.pem: modbus.security.client_ca: cannot be loaded" in bad.stderr
