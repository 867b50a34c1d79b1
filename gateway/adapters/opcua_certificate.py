"""The OPC UA server's application instance certificate: loaded, or created on first start.

Created self-signed (OPC 10000-6, 6.2.2): RSA 2048, SHA-256, SubjectAltName with the application URI
plus this machine's host name and the configured host, the key usages the RSA security policies need,
ExtendedKeyUsage serverAuth + clientAuth, valid 10 years. The key is written unencrypted, mode 0600.
A certificate is never replaced silently: clients have trusted it.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.adapters.opcua_trust import application_uris, load_certificate
from gateway.errors import ConfigError, Problem
from gateway.settings import OpcUaSecuritySettings

log = logging.getLogger(__name__)

KEY_SIZE = 2048
MIN_KEY_SIZE = 2048  # Basic256Sha256 and Aes256_Sha256_RsaPss: 2048 to 4096 bits
MAX_KEY_SIZE = 4096
VALIDITY = datetime.timedelta(days=3650)
CERTIFICATE_KEY = "opcua.security.certificate"
PRIVATE_KEY_KEY = "opcua.security.private_key"


@dataclass(frozen=True, slots=True)
class ServerCredentials:
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    created: bool

    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def private_key_der(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())


def server_credentials(settings: OpcUaSecuritySettings, application_uri: str, host: str,
                       name: str) -> ServerCredentials:
    """The configured certificate and key; both created when both are missing. ConfigError names the file."""
    credentials = existing_credentials(settings)
    certificate_path, key_path = settings.certificate, settings.private_key
    if credentials is None:
        credentials = create_credentials(application_uri, host, name)
        _write(credentials, certificate_path, key_path)
        log.info("OPC UA: created the server certificate %s (%s, SHA-1 thumbprint %s) and its key %s",
                 certificate_path, application_uri, thumbprint(credentials.certificate), key_path)
    elif application_uri not in application_uris(credentials.certificate):
        log.warning("OPC UA: the server certificate %s does not carry the application URI %s (site renamed?); "
                    "clients will refuse it. Delete %s and %s to have a new one created", certificate_path,
                    application_uri, certificate_path, key_path)
    return credentials


def existing_credentials(settings: OpcUaSecuritySettings) -> ServerCredentials | None:
    """The configured certificate and key, or None when both are missing (ConfigError when one is, or unusable)."""
    certificate_path, key_path = settings.certificate, settings.private_key
    have_certificate, have_key = certificate_path.exists(), key_path.exists()
    if not have_certificate and not have_key:
        return None
    if have_certificate != have_key:
        present, missing, key = ((certificate_path, key_path, PRIVATE_KEY_KEY) if have_certificate
                                 else (key_path, certificate_path, CERTIFICATE_KEY))
        raise ConfigError([Problem(str(missing), key, f"does not exist, but {present} does",
                                   "restore the missing file, or delete both to have a new certificate created at "
                                   "the next start (clients that trusted the old one must then trust the new one)")])
    return load_credentials(certificate_path, key_path)


def load_credentials(certificate_path: Path, key_path: Path) -> ServerCredentials:
    try:
        certificate = load_certificate(certificate_path.read_bytes())
    except (OSError, ValueError) as error:
        raise ConfigError([_problem(certificate_path, CERTIFICATE_KEY, error,
                                    "give the server's X.509 certificate (DER or PEM), or delete it together with "
                                    "its private key to have both created at the next start")]) from error
    try:
        key = _load_key(key_path.read_bytes())
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError([_problem(key_path, PRIVATE_KEY_KEY, error,
                                    "give the certificate's unencrypted RSA private key (PEM or DER), or delete it "
                                    "together with the certificate to have both created at the next start")]
                          ) from error
    if not isinstance(key, rsa.RSAPrivateKey) or not MIN_KEY_SIZE <= key.key_size <= MAX_KEY_SIZE:
        raise ConfigError([Problem(str(key_path), PRIVATE_KEY_KEY, "is not an RSA key of 2048 to 4096 bits",
                                   "OPC UA's RSA security policies need one: give such a key and its certificate")])
    if certificate.public_key() != key.public_key():
        raise ConfigError([Problem(str(key_path), PRIVATE_KEY_KEY,
                                   f"does not belong to the certificate {certificate_path}",
                                   "give the key the certificate was issued for (or delete both)")])
    return ServerCredentials(certificate, key, created=False)


def create_credentials(application_uri: str, host: str, name: str) -> ServerCredentials:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bms-gateway")])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .add_extension(x509.SubjectAlternativeName(_alternative_names(application_uri, host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)  # self-signed, signs itself
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                     data_encipherment=True, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256()))
    return ServerCredentials(certificate, key, created=True)


def thumbprint(certificate: x509.Certificate) -> str:
    """The SHA-1 thumbprint OPC UA clients show (UaExpert, open62541), upper-case hex."""
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # identification, not security


def _alternative_names(application_uri: str, host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    dns_names = [socket.gethostname()]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        dns_names.append(host)
    else:
        if not address.is_unspecified:
            names.append(x509.IPAddress(address))
    for dns_name in dict.fromkeys(n for n in dns_names if n):
        names.append(x509.DNSName(dns_name))
    return names


def _write(credentials: ServerCredentials, certificate_path: Path, key_path: Path) -> None:
    key_pem = credentials.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())
    certificate_bytes = (credentials.certificate.public_bytes(serialization.Encoding.PEM)
                         if certificate_path.suffix.lower() == ".pem" else credentials.certificate_der())
    for path, data, mode, key in ((key_path, key_pem, 0o600, PRIVATE_KEY_KEY),
                                  (certificate_path, certificate_bytes, 0o644, CERTIFICATE_KEY)):
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        except OSError as error:
            raise ConfigError([_problem(path, key, error, "choose a path the gateway may write to, or create the "
                                                          "certificate and key yourself")]) from error


def _load_key(data: bytes) -> object:
    if data.lstrip().startswith(b"-----BEGIN"):
        return serialization.load_pem_private_key(data, password=None)
    return serialization.load_der_private_key(data, password=None)


def _problem(path: Path, key: str, error: Exception, fix: str) -> Problem:
    reason = getattr(error, "strerror", None) or str(error)
    return Problem(str(path), key, f"cannot be used ({reason})", fix)
