"""Modbus/TCP Security: the TLS context (mutual certificates) and the client's role from its certificate.

The spec (MB-TCP-Security v36) asks for TLS 1.2 or later, a client certificate verified against the
operator's CA, and the client's role in the certificate extension 1.3.6.1.4.1.50316.802.1, an ASN.1
UTF8String. pymodbus's TLS server would accept any client (CERT_NONE), so the context is built here.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError, Problem
from gateway.settings import ModbusSecuritySettings, ModbusSettings

log = logging.getLogger(__name__)

ROLE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.50316.802.1")
UTF8_STRING_TAG = 0x0C
EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    subject: str
    role: str | None


def server_tls_context(settings: ModbusSecuritySettings) -> ssl.SSLContext:
    """TLS 1.2+, the gateway's certificate, client certificates required and verified against client_ca."""
    certificate, private_key, client_ca = settings.certificate, settings.private_key, settings.client_ca
    if certificate is None or private_key is None or client_ca is None:
        raise ConfigError([Problem("settings", "modbus.security", "needs certificate, private_key and client_ca",
                                   "set all three to PEM file paths")])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(certfile=certificate, keyfile=private_key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError([_problem(certificate, "modbus.security.certificate / private_key", error,
                                    "give a PEM certificate and the unencrypted PEM private key that belongs to it")]
                          ) from error
    try:
        context.load_verify_locations(cafile=client_ca)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError([_problem(client_ca, "modbus.security.client_ca", error,
                                    "give the PEM certificate(s) of the CA that signs the clients' certificates")]
                          ) from error
    _warn_if_expiring(certificate)
    return context


def modbus_security_summary(modbus: ModbusSettings) -> str:
    """One line for check-config, after loading every file as the server will (ConfigError if one is unusable)."""
    security = modbus.security
    server_tls_context(security)
    assert security.certificate is not None
    certificate = x509.load_pem_x509_certificate(security.certificate.read_bytes())
    plain = f"plain TCP {modbus.port} read-only" if security.plain_tcp else "plain TCP off"
    return (f"modbus security: TLS {modbus.host}:{security.port}, certificate {certificate.subject.rfc4514_string()} "
            f"valid until {certificate.not_valid_after_utc.date()}, client CA {security.client_ca}, "
            f"write roles {', '.join(security.write_roles) or '(none)'}, {plain}")


def peer_certificate(transport: object) -> PeerCertificate | None:
    """The verified client certificate of a TLS connection (None on plain TCP)."""
    get_extra_info = getattr(transport, "get_extra_info", None)
    ssl_object = None if get_extra_info is None else get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        return None
    certificate = x509.load_der_x509_certificate(der)
    return PeerCertificate(certificate.subject.rfc4514_string(), role_of(certificate))


def role_of(certificate: x509.Certificate) -> str | None:
    """The Modbus role of a certificate; None without the extension or when it is not a UTF8String."""
    try:
        extension = certificate.extensions.get_extension_for_oid(ROLE_OID)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension):
        return None
    return _utf8_string(value.value)


def _utf8_string(der: bytes) -> str | None:
    """One DER UTF8String (tag, definite length, contents) and nothing after it."""
    if len(der) < 2 or der[0] != UTF8_STRING_TAG:
        return None
    length, start = der[1], 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 2 or len(der) < 2 + size:
            return None
        length, start = int.from_bytes(der[2:2 + size], "big"), 2 + size
    if len(der) != start + length:
        return None
    try:
        return der[start:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _warn_if_expiring(path: Path) -> None:
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    left = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else certificate.subject.rfc4514_string()
    if left.total_seconds() <= 0:
        log.warning("Modbus/TCP Security: the gateway certificate %s (%s) expired on %s; clients will refuse it",
                    path, name, certificate.not_valid_after_utc.date())
    elif left.days < EXPIRY_WARNING_DAYS:
        log.warning("Modbus/TCP Security: the gateway certificate %s (%s) expires in %d day(s), on %s",
                    path, name, left.days, certificate.not_valid_after_utc.date())


def _problem(path: Path, key: str, error: Exception, fix: str) -> Problem:
    reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or str(error)
    return Problem(str(path), key, f"cannot be loaded: {reason}", fix)
