"""OPC UA security end to end: the real server (OpcUaOutput) and the real asyncua client, no mocks.

Client certificates are made here (tests/adapters/opcua_pki.py). The server gets two throwaway methods
(`ProbedOutput`): WhoAmI answers `current_caller()` as "<role>:<name>", OperatorOnly refuses callers
below operator, as the gateway's command methods do. Most tests share one module-scoped server (users
file, trusted `scada` client, no anonymous); those that need another configuration start their own.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import (
    BadIdentityTokenRejected,
    BadSecurityChecksFailed,
    BadUserAccessDenied,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.adapters.opcua_certificate import server_credentials
from gateway.adapters.opcua_security import Role, current_caller
from gateway.adapters.opcua_server import OpcUaOutput
from gateway.adapters.opcua_tree import AddressSpace
from gateway.adapters.opcua_trust import ClientTrust
from gateway.adapters.opcua_types import Server
from gateway.adapters.opcua_users import hash_password, load_users, verify_password
from gateway.codec.node_model import NodeMap
from gateway.errors import ConfigError
from gateway.runtime.hub import SnapshotHub
from gateway.settings import OpcUaSecuritySettings, OpcUaSettings
from tests.adapters.conftest_opcua import (
    UPDATE_INTERVAL_S,
    native_node_map_fixture,  # noqa: F401
    start_output,
    stop_output,
)
from tests.adapters.opcua_pki import ClientIdentity, make_client, write_users
from tests.ports import free_tcp_port

REPOSITORY = Path(__file__).resolve().parents[2]
SITE = "plant-7"
APPLICATION_URI = f"urn:bms-gateway:{SITE}:server"
NONE_URI = "http://opcfoundation.org/UA/SecurityPolicy#None"
BASIC256SHA256_URI = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
AES256_PSS_URI = "http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss"
USERS = {"alice": (Role.OPERATOR, "alice-secret"), "erin": (Role.ENGINEER, "erin-secret"),
         "victor": (Role.VIEWER, "victor-secret")}
shared = pytest.mark.asyncio(loop_scope="module")


async def _who_am_i(parent: ua.NodeId) -> list[ua.Variant]:
    caller = current_caller()
    role = caller.role.label if caller.role is not None else "none"
    return [ua.Variant(f"{role}:{caller.name}", ua.VariantType.String)]


async def _operator_only(parent: ua.NodeId) -> list[ua.Variant] | ua.StatusCode:
    caller = current_caller()
    if not caller.may(Role.OPERATOR):
        return ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
    return [ua.Variant(caller.name, ua.VariantType.String)]


class ProbedOutput(OpcUaOutput):
    """The gateway's output plus two methods that report / check the caller."""

    async def prepare(self) -> tuple[Server, AddressSpace]:
        server, space = await super().prepare()
        objects = server.nodes.objects
        await objects.add_method(space.namespace, "WhoAmI", _who_am_i, [], [ua.VariantType.String])
        await objects.add_method(space.namespace, "OperatorOnly", _operator_only, [], [ua.VariantType.String])
        return server, space


@dataclass(frozen=True)
class Pki:
    root: Path
    scada: ClientIdentity  # trusted
    users_file: Path

    def security(self, **changes: object) -> OpcUaSecuritySettings:
        values: dict[str, object] = {
            "certificate": self.root / "own" / "cert.der", "private_key": self.root / "own" / "key.pem",
            "trusted_clients_dir": self.root / "trusted", "users_file": self.users_file}
        values.update(changes)
        return OpcUaSecuritySettings.model_validate(values)


def make_pki(root: Path) -> Pki:
    scada = make_client(root / "clients", "scada")
    (root / "trusted").mkdir(parents=True)
    (root / "trusted" / "scada.der").write_bytes(scada.der())
    return Pki(root, scada, write_users(root / "users.toml", USERS))


@asynccontextmanager
async def serving(node_map: NodeMap, security: OpcUaSecuritySettings) -> AsyncIterator[OpcUaOutput]:
    settings = OpcUaSettings(host="127.0.0.1", port=free_tcp_port(), update_interval_s=UPDATE_INTERVAL_S,
                             security=security)
    output = ProbedOutput(settings, SnapshotHub(), node_map, ("pack-01",), SITE)
    task = await start_output(output)
    try:
        yield output
    finally:
        await stop_output(task)


@asynccontextmanager
async def session(url: str, identity: ClientIdentity | None = None, user: str | None = None,
                  password: str | None = None, policy: str = "Basic256Sha256", mode: str = "SignAndEncrypt",
                  client_class: type[Client] = Client) -> AsyncIterator[Client]:
    client = client_class(url, timeout=5)
    client.session_timeout = 60_000
    if identity is not None:
        client.application_uri = identity.application_uri
        await client.set_security_string(identity.security_string(policy, mode))
    if user is not None:
        client.set_user(user)
        client.set_password(password or "")
    async with client:
        yield client


async def call(client: Client, method: str) -> str:
    namespace = await client.get_namespace_index("urn:bms-gateway:site")
    result = await client.nodes.objects.call_method(f"{namespace}:{method}")
    assert isinstance(result, str)
    return result


async def site_browse_name(client: Client) -> str:
    namespace = await client.get_namespace_index("urn:bms-gateway:site")
    return str((await client.get_node(f"ns={namespace};s=site").read_browse_name()).Name)


async def endpoints(url: str) -> list[ua.EndpointDescription]:
    client = Client(url, timeout=5)
    result: list[ua.EndpointDescription] = await client.connect_and_get_server_endpoints()
    return result


@dataclass(frozen=True)
class Secured:
    output: OpcUaOutput
    pki: Pki

    @property
    def url(self) -> str:
        return self.output.endpoint


@pytest_asyncio.fixture(scope="module", loop_scope="module", name="secured")
async def secured_fixture(native_node_map: NodeMap, tmp_path_factory: pytest.TempPathFactory
                          ) -> AsyncIterator[Secured]:
    pki = make_pki(tmp_path_factory.mktemp("opcua-pki"))
    async with serving(native_node_map, pki.security()) as output:
        yield Secured(output, pki)


# --- the server certificate -----------------------------------------------------------------------------

async def test_server_certificate_is_created_on_first_start_and_reused(native_node_map: NodeMap,
                                                                       tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    security = pki.security()
    assert not security.certificate.exists()
    async with serving(native_node_map, security) as output:
        first = {e.ServerCertificate for e in await endpoints(output.endpoint) if e.SecurityPolicyUri != NONE_URI}
    der = security.certificate.read_bytes()
    assert first == {der}
    assert stat.S_IMODE(security.private_key.stat().st_mode) == 0o600
    certificate = x509.load_der_x509_certificate(der)
    key = serialization.load_pem_private_key(security.private_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert certificate.public_key() == key.public_key()
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [APPLICATION_URI]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.digital_signature, usage.content_commitment, usage.key_encipherment, usage.data_encipherment,
            usage.key_cert_sign) == (True, True, True, True, True)
    extended = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(extended) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    lifetime = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert lifetime > datetime.timedelta(days=9 * 365)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"bms-gateway {SITE}"

    async with serving(native_node_map, security) as output:  # second start: the same certificate
        second = {e.ServerCertificate for e in await endpoints(output.endpoint) if e.SecurityPolicyUri != NONE_URI}
        async with session(output.endpoint, pki.scada, "alice", "alice-secret") as client:
            assert await site_browse_name(client) == SITE
    assert second == {der}
    assert security.certificate.read_bytes() == der


# --- secure channels and users --------------------------------------------------------------------------

@shared
@pytest.mark.parametrize(("policy", "mode"), [("Basic256Sha256", "Sign"), ("Basic256Sha256", "SignAndEncrypt"),
                                              ("Aes256Sha256RsaPss", "Sign"),
                                              ("Aes256Sha256RsaPss", "SignAndEncrypt")])
async def test_trusted_client_and_valid_user_connect_on_every_signed_endpoint(secured: Secured, policy: str,
                                                                              mode: str) -> None:
    async with session(secured.url, secured.pki.scada, "alice", "alice-secret", policy, mode) as client:
        assert client.security_policy.Mode == getattr(ua.MessageSecurityMode, mode)
        assert await site_browse_name(client) == SITE
        assert await call(client, "WhoAmI") == "operator:alice"


@shared
async def test_untrusted_client_is_refused_and_its_certificate_kept_in_rejected(secured: Secured,
                                                                                tmp_path: Path) -> None:
    newcomer = make_client(tmp_path, "newcomer")
    with pytest.raises(BadSecurityChecksFailed):
        async with session(secured.url, newcomer, "alice", "alice-secret"):
            pass
    rejected = secured.pki.root / "rejected"
    kept = [path for path in rejected.iterdir() if path.read_bytes() == newcomer.der()]
    assert len(kept) == 1
    assert kept[0].name.startswith("newcomer [")
    assert kept[0].suffix == ".der"

    kept[0].rename(secured.pki.root / "trusted" / kept[0].name)  # what the administrator does: no restart
    async with session(secured.url, newcomer, "alice", "alice-secret") as client:
        assert await call(client, "WhoAmI") == "operator:alice"


class CertificateHidingClient(Client):
    """Opens a signed channel with its certificate, then sends none in CreateSession, where asyncua runs the
    certificate validator: a client trying to skip the trust check."""

    async def create_session(self) -> ua.CreateSessionResult:
        send = self.uaclient.create_session

        async def without_certificate(params: ua.CreateSessionParameters) -> ua.CreateSessionResult:
            params.ClientCertificate = None
            return await send(params)

        self.uaclient.create_session = without_certificate  # type: ignore[method-assign]
        return await super().create_session()


@shared
async def test_an_untrusted_channel_is_refused_even_without_a_certificate_in_create_session(
        secured: Secured, tmp_path: Path) -> None:
    stranger = make_client(tmp_path, "stranger")
    with pytest.raises(BadUserAccessDenied):
        async with session(secured.url, stranger, "alice", "alice-secret", client_class=CertificateHidingClient):
            pass
    async with session(secured.url, secured.pki.scada, "alice", "alice-secret",  # the same trick, trusted
                       client_class=CertificateHidingClient) as client:
        assert await call(client, "WhoAmI") == "operator:alice"


@shared
@pytest.mark.parametrize(("user", "password"), [("alice", "wrong-password"), ("alice", ""),
                                                ("mallory", "alice-secret"), ("ALICE", "alice-secret")])
async def test_wrong_password_or_unknown_user_is_refused(secured: Secured, user: str, password: str) -> None:
    with pytest.raises(BadUserAccessDenied):
        async with session(secured.url, secured.pki.scada, user, password):
            pass


@shared
async def test_anonymous_is_refused_unless_configured(secured: Secured) -> None:
    for described in await endpoints(secured.url):
        token_types = {token.TokenType for token in described.UserIdentityTokens}
        assert token_types == {ua.UserTokenType.UserName}, described.SecurityPolicyUri
    with pytest.raises(BadIdentityTokenRejected):
        async with session(secured.url, secured.pki.scada):
            pass
    with pytest.raises(BadIdentityTokenRejected):
        async with session(secured.url):  # policy None
            pass


@shared
async def test_a_user_logs_in_over_policy_none_with_an_encrypted_password(secured: Secured) -> None:
    none = next(e for e in await endpoints(secured.url) if e.SecurityPolicyUri == NONE_URI)
    username = next(t for t in none.UserIdentityTokens if t.TokenType == ua.UserTokenType.UserName)
    assert username.SecurityPolicyUri == BASIC256SHA256_URI  # the password is encrypted for the server
    async with session(secured.url, None, "victor", "victor-secret") as client:
        assert await call(client, "WhoAmI") == "viewer:victor"


@shared
async def test_no_role_may_write_or_change_the_address_space(secured: Secured) -> None:
    async with session(secured.url, secured.pki.scada, "erin", "erin-secret") as client:
        assert await call(client, "WhoAmI") == "engineer:erin"
        namespace = await client.get_namespace_index("urn:bms-gateway:site")
        soc = client.get_node(f"ns={namespace};s=site/soc")
        with pytest.raises(BadUserAccessDenied):
            await soc.write_value(ua.DataValue(ua.Variant(0.5, ua.VariantType.Double)))
        with pytest.raises(BadUserAccessDenied):
            await client.nodes.objects.add_folder(namespace, "Intruder")
        with pytest.raises(BadUserAccessDenied):
            await client.delete_nodes([soc])


# --- roles inside method callbacks ----------------------------------------------------------------------

async def test_each_caller_sees_its_own_role_in_method_callbacks(native_node_map: NodeMap, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with serving(native_node_map, pki.security(anonymous=True)) as output:
        url = output.endpoint
        async with (session(url, pki.scada, "alice", "alice-secret") as alice,
                    session(url, pki.scada, "erin", "erin-secret", "Aes256Sha256RsaPss") as erin,
                    session(url, None, "victor", "victor-secret") as victor,
                    session(url) as anonymous):
            clients = {"operator:alice": alice, "engineer:erin": erin, "viewer:victor": victor,
                       "viewer:(anonymous)": anonymous}
            for _ in range(3):  # interleaved, and concurrently: each request carries its own caller
                answers = await asyncio.gather(*(call(client, "WhoAmI") for client in clients.values()))
                assert answers == list(clients)
            assert await call(alice, "OperatorOnly") == "alice"
            assert await call(erin, "OperatorOnly") == "erin"
            for refused in (victor, anonymous):
                with pytest.raises(BadUserAccessDenied):
                    await call(refused, "OperatorOnly")
            assert await site_browse_name(anonymous) == SITE  # the anonymous viewer reads and browses
            namespace = await anonymous.get_namespace_index("urn:bms-gateway:site")
            site = anonymous.get_node(f"ns={namespace};s=site")
            assert "Packs" in [str((await c.read_browse_name()).Name) for c in await site.get_children()]
            subscription = await anonymous.create_subscription(100, None)
            await subscription.delete()


def test_outside_a_request_there_is_no_caller() -> None:
    caller = current_caller()
    assert caller.role is None
    assert not caller.may(Role.VIEWER)


# --- endpoints --------------------------------------------------------------------------------------------

SIGNED = {(uri, mode) for uri in (BASIC256SHA256_URI, AES256_PSS_URI)
          for mode in (ua.MessageSecurityMode.Sign, ua.MessageSecurityMode.SignAndEncrypt)}
NONE = {(NONE_URI, ua.MessageSecurityMode.None_)}


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, SIGNED | NONE),
    ({"none_endpoint": False}, SIGNED),
    ({"signed_endpoints": False, "users_file": None, "anonymous": True}, NONE),
])
async def test_the_endpoint_list_shows_exactly_the_configured_policies(
        native_node_map: NodeMap, tmp_path: Path, changes: dict[str, object],
        expected: set[tuple[str, ua.MessageSecurityMode]]) -> None:
    pki = make_pki(tmp_path)
    security = pki.security(**changes)
    async with serving(native_node_map, security) as output:
        described = await endpoints(output.endpoint)
    assert {(e.SecurityPolicyUri, e.SecurityMode) for e in described} == expected
    assert len(described) == len(expected)
    assert security.certificate.exists() == security.signed_endpoints  # no certificate without signed endpoints


class NoneAnywayClient(Client):
    """Creates its session on a channel with policy None although no endpoint offers it (asyncua's client
    would stop at CreateSession's endpoint list; asyncua's server has accepted that channel)."""

    async def create_session(self) -> ua.CreateSessionResult:
        params = ua.CreateSessionParameters()
        params.ClientNonce = os.urandom(32)
        params.ClientDescription = ua.ApplicationDescription(ApplicationUri=self.application_uri,
                                                             ApplicationType=ua.ApplicationType.Client)
        params.EndpointUrl = self.server_url.geturl()
        params.SessionName = "none anyway"
        params.RequestedSessionTimeout = self.session_timeout
        response: ua.CreateSessionResult = await self.uaclient.create_session(params)
        self._server_nonce = response.ServerNonce
        self.security_policy.peer_certificate = response.ServerCertificate
        self._policy_ids = response.ServerEndpoints[0].UserIdentityTokens
        return response


async def test_a_none_channel_is_refused_when_policy_none_is_off(native_node_map: NodeMap, tmp_path: Path) -> None:
    """asyncua's server accepts a channel with policy None even when that policy is not configured: the
    session on it must not be activated."""
    pki = make_pki(tmp_path)
    async with serving(native_node_map, pki.security(none_endpoint=False)) as output:
        with pytest.raises(BadUserAccessDenied):
            async with session(output.endpoint, None, "alice", "alice-secret", client_class=NoneAnywayClient):
                pass
        async with session(output.endpoint, pki.scada, "alice", "alice-secret") as client:
            assert await call(client, "WhoAmI") == "operator:alice"


# --- configuration errors ----------------------------------------------------------------------------------

async def _start_error(node_map: NodeMap, security: OpcUaSecuritySettings) -> ConfigError:
    settings = OpcUaSettings(host="127.0.0.1", port=free_tcp_port(), security=security)
    with pytest.raises(ConfigError) as raised:
        await asyncio.wait_for(OpcUaOutput(settings, SnapshotHub(), node_map, ("pack-01",), SITE).run(), 30)
    return raised.value


@pytest.mark.parametrize(("content", "key"), [
    (None, "opcua.security.users_file"),
    ("[users.alice\n", "(syntax)"),
    ('[users.alice]\nrole = "admin"\npassword_hash = "x"\n', "users.alice.role"),
    ('[users.alice]\nrole = "operator"\npassword_hash = "alice-secret"\n', "users.alice.password_hash"),
    ('[users.alice]\nrole = "operator"\n', "users.alice.password_hash"),
    ('[users."bad name"]\nrole = "operator"\npassword_hash = "x"\n', "users.bad name"),
    ('[users.alice]\nrole = "operator"\npassword = "alice-secret"\n', "users.alice.password"),
])
def test_a_bad_users_file_is_a_config_error_naming_file_and_key(tmp_path: Path, content: str | None,
                                                                key: str) -> None:
    users = tmp_path / "bad-users.toml"
    if content is not None:
        users.write_text(content)
    with pytest.raises(ConfigError) as raised:
        load_users(users)
    problem = raised.value.problems[0]
    assert (problem.source, problem.key) == (str(users), key)
    assert problem.fix


async def test_the_server_does_not_start_with_an_unusable_users_file(native_node_map: NodeMap,
                                                                     tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    missing = tmp_path / "no-such-users.toml"
    error = await _start_error(native_node_map, pki.security(users_file=missing))
    [problem] = error.problems
    assert (problem.source, problem.key) == (str(missing), "opcua.security.users_file")
    assert "bms-gateway opcua-user" in problem.fix


def _break(security: OpcUaSecuritySettings, broken: str, foreign_key: Path) -> None:
    if broken == "key":
        security.private_key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    elif broken == "certificate":
        security.certificate.write_bytes(b"\x30\x03garbage")
    elif broken == "missing key":
        security.private_key.unlink()
    else:
        security.private_key.write_bytes(foreign_key.read_bytes())


@pytest.mark.parametrize("broken", ["key", "certificate", "missing key", "foreign key"])
def test_an_unusable_certificate_or_key_is_a_config_error_naming_file_and_key(tmp_path: Path, broken: str) -> None:
    pki = make_pki(tmp_path)
    security = pki.security()
    server_credentials(security, APPLICATION_URI, "127.0.0.1", "bms-gateway test")  # creates both
    original = security.certificate.read_bytes()
    _break(security, broken, pki.scada.private_key)
    with pytest.raises(ConfigError) as raised:
        server_credentials(security, APPLICATION_URI, "127.0.0.1", "bms-gateway test")
    [problem] = raised.value.problems
    setting, path = (("opcua.security.certificate", security.certificate) if broken == "certificate"
                     else ("opcua.security.private_key", security.private_key))
    assert (problem.source, problem.key) == (str(path), setting)
    assert "delete" in problem.fix or "give" in problem.fix
    if broken != "certificate":
        assert security.certificate.read_bytes() == original  # never replaced silently


async def test_the_server_does_not_start_with_an_unusable_key(native_node_map: NodeMap, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    security = pki.security()
    server_credentials(security, APPLICATION_URI, "127.0.0.1", "bms-gateway test")
    _break(security, "key", pki.scada.private_key)
    error = await _start_error(native_node_map, security)
    [problem] = error.problems
    assert (problem.source, problem.key) == (str(security.private_key), "opcua.security.private_key")


async def test_a_file_in_the_trusted_folder_that_is_no_certificate_is_a_config_error(native_node_map: NodeMap,
                                                                                      tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    (pki.root / "trusted" / "notes.pem").write_text("not a certificate")
    error = await _start_error(native_node_map, pki.security())
    [problem] = error.problems
    assert (problem.source, problem.key) == (str(pki.root / "trusted" / "notes.pem"),
                                             "opcua.security.trusted_clients_dir")


def test_settings_refuse_configurations_without_endpoint_or_with_plain_text_passwords(tmp_path: Path) -> None:
    from gateway.config_loader import load_settings

    site = tmp_path / "site.toml"
    site.write_text("[opcua.security]\nnone_endpoint = false\nsigned_endpoints = false\n")
    with pytest.raises(ConfigError, match="no endpoint is left"):
        load_settings(site)
    site.write_text(f'[opcua.security]\nsigned_endpoints = false\nusers_file = "{tmp_path / "users.toml"}"\n')
    with pytest.raises(ConfigError, match="plain text"):
        load_settings(site)


# --- trust list, password hashes ---------------------------------------------------------------------------

def _authority_and_client() -> tuple[x509.Certificate, x509.Certificate]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plant CA")])
    authority = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
                 .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(
                     now + datetime.timedelta(days=30))
                 .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                 .sign(ca_key, hashes.SHA256()))
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hmi")]))
              .issuer_name(ca_name).public_key(client_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30)).sign(ca_key, hashes.SHA256()))
    return authority, client


def test_a_trusted_ca_trusts_the_clients_it_issued_but_a_client_certificate_is_no_ca(tmp_path: Path) -> None:
    authority, issued = _authority_and_client()
    scada = make_client(tmp_path / "clients", "scada")
    trust = ClientTrust(tmp_path / "trusted")
    trust.prepare()
    assert not trust.is_trusted(issued)
    (tmp_path / "trusted" / "plant-ca.pem").write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    assert trust.is_trusted(issued)
    assert trust.rejected_dir == tmp_path / "rejected"
    assert trust.rejected_dir.is_dir()

    # a self-signed application certificate (CA flag, keyCertSign, clientAuth) signing another: not trusted
    scada_key = serialization.load_pem_private_key(scada.private_key.read_bytes(), password=None)
    assert isinstance(scada_key, rsa.RSAPrivateKey)
    scada_certificate = x509.load_der_x509_certificate(scada.der())
    now = datetime.datetime.now(datetime.UTC)
    minted = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minted")]))
              .issuer_name(scada_certificate.subject).public_key(scada_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now)
              .not_valid_after(now + datetime.timedelta(days=1)).sign(scada_key, hashes.SHA256()))
    (tmp_path / "trusted" / "scada.der").write_bytes(scada.der())
    assert trust.is_trusted(scada_certificate)
    assert not trust.is_trusted(minted)


def test_password_hashes() -> None:
    stored = hash_password("correct horse", iterations=1000)
    scheme, iterations, _, _ = stored.split("$")
    assert (scheme, iterations) == ("pbkdf2-sha256", "1000")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horse ", stored)
    assert not verify_password("correct horse", "correct horse")  # a plain password is no hash
    assert hash_password("correct horse", iterations=1000) != stored  # salted
    assert hash_password("x").split("$")[1] == "600000"


# --- the CLI and check-config -----------------------------------------------------------------------------

def _gateway(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BMSGW_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), environment.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "gateway", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=environment, cwd=cwd, check=False)


async def test_the_opcua_user_command_writes_a_hash_the_server_accepts(native_node_map: NodeMap,
                                                                       tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    users = tmp_path / "cli-users.toml"
    added = _gateway("opcua-user", "olga", "--role", "operator", "--users-file", str(users), "--password-stdin",
                     stdin="olga-password-1\n")
    assert added.returncode == 0, added.stderr
    site = tmp_path / "site.toml"
    site.write_text(f'[opcua.security]\nusers_file = "{users}"\n')
    replaced = _gateway("opcua-user", "olga", "--role", "engineer", "--config", str(site), "--password-stdin",
                        stdin="olga-password-2\n")
    assert replaced.returncode == 0, replaced.stderr
    assert _gateway("opcua-user", "vic", "--role", "viewer", "--users-file", str(users), "--password-stdin",
                    stdin="vic-password\n").returncode == 0
    text = users.read_text()
    assert "olga-password" not in text
    assert "$600000$" in text
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    accounts = load_users(users)
    assert {name: account.role for name, account in accounts.items()} == {"olga": Role.ENGINEER, "vic": Role.VIEWER}

    async with serving(native_node_map, pki.security(users_file=users)) as output:
        async with session(output.endpoint, pki.scada, "olga", "olga-password-2") as client:
            assert await call(client, "WhoAmI") == "engineer:olga"
        with pytest.raises(BadUserAccessDenied):
            async with session(output.endpoint, pki.scada, "olga", "olga-password-1"):
                pass


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("--password-stdin",), "short\n", "shorter than 8"),
    ((), "olga-password\n", "not a terminal"),
])
def test_the_opcua_user_command_refuses_bad_password_input(tmp_path: Path, args: tuple[str, ...], stdin: str,
                                                           message: str) -> None:
    users = tmp_path / "users.toml"
    result = _gateway("opcua-user", "olga", "--role", "viewer", "--users-file", str(users), *args, stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    assert not users.exists()


def test_check_config_summarises_opcua_security_and_names_a_bad_users_file(tmp_path: Path) -> None:
    users = write_users(tmp_path / "users.toml", USERS)
    site = tmp_path / "site.toml"
    site.write_text(f'[opcua.security]\nusers_file = "{users}"\ntrusted_clients_dir = "{tmp_path / "trusted"}"\n'
                    f'certificate = "{tmp_path / "own" / "cert.der"}"\n'
                    f'private_key = "{tmp_path / "own" / "key.pem"}"\n')
    result = _gateway("check-config", str(site), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "opcua security" in line]
    assert "endpoints None, Basic256Sha256 and Aes256_Sha256_RsaPss" in line
    assert "created at the first start" in line
    assert "(1 viewer, 1 operator, 1 engineer)" in line
    assert "no anonymous sessions" in line
    assert not (tmp_path / "own").exists()  # check-config creates nothing

    users.write_text('[users.alice]\nrole = "boss"\npassword_hash = "x"\n')
    result = _gateway("check-config", str(site), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{users}: users.alice.role" in result.stderr
