"""Test PKI for OPC UA: self-signed client application certificates as OPC UA clients make them (RSA 2048,
application URI in SubjectAltName, the RSA key usages, clientAuth), and a users file with cheap hashes."""

from __future__ import annotations

import datetime
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.adapters.opcua_users import Role, UserAccount, hash_password, render_users

DAY = datetime.timedelta(days=1)
TEST_ITERATIONS = 1000  # the file records the count; real hashes use 600 000 (0.2 s per login)


@dataclass(frozen=True)
class ClientIdentity:
    application_uri: str
    certificate: Path  # DER
    certificate_pem: Path
    private_key: Path  # PEM, PKCS#8, unencrypted

    def security_string(self, policy: str = "Basic256Sha256", mode: str = "SignAndEncrypt") -> str:
        return f"{policy},{mode},{self.certificate},{self.private_key}"

    def der(self) -> bytes:
        return self.certificate.read_bytes()


def make_client(directory: Path, name: str, *, valid_days: float = 365.0) -> ClientIdentity:
    """A self-signed client certificate for application URI urn:bms-gateway-test:<name>."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    uri = f"urn:bms-gateway-test:{name}"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY).not_valid_after(now + valid_days * DAY)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri),
                                                    x509.DNSName(socket.gethostname())]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                     data_encipherment=True, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256()))
    der, pem = directory / f"{name}.der", directory / f"{name}.pem"
    der.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path = directory / f"{name}-key.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ClientIdentity(uri, der, pem, key_path)


def write_users(path: Path, users: dict[str, tuple[Role, str]]) -> Path:
    """A users file: name -> (role, password), hashed with few iterations (fast tests)."""
    accounts = [UserAccount(name, role, hash_password(password, iterations=TEST_ITERATIONS))
                for name, (role, password) in users.items()]
    path.write_text(render_users(accounts), encoding="utf-8")
    return path
