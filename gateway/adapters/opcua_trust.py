"""Which client certificates the OPC UA server accepts on a signed endpoint: the trusted folder.

A client is trusted when its certificate is in `trusted_clients_dir` (DER or PEM, any file name ending in
.der, .pem, .crt or .cer), or was issued directly by a CA certificate there (BasicConstraints CA and no
extended key usage: an application's own self-signed certificate is never taken for a CA). The folder
is read again for each new session, so moving a certificate in takes effect without a restart. A refused
client's certificate is copied to the `rejected` folder beside it (`<common name> [<SHA-1 thumbprint>].der`,
the name UaExpert uses): the administrator moves it to the trusted folder to accept that client.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from gateway.adapters.opcua_types import StatusCodes
from gateway.errors import ConfigError, Problem

log = logging.getLogger(__name__)

SETTINGS_KEY = "opcua.security.trusted_clients_dir"
CERTIFICATE_SUFFIXES = (".der", ".pem", ".crt", ".cer")
_UNSAFE = re.compile(r"[^A-Za-z0-9 _.@-]+")


@dataclass(frozen=True, slots=True)
class TrustList:
    certificates: tuple[x509.Certificate, ...]
    unreadable: tuple[tuple[Path, str], ...]  # file, reason

    def trusts(self, certificate: x509.Certificate) -> bool:
        return any(certificate == trusted or _issued_by(certificate, trusted) for trusted in self.certificates)


class ClientTrust:
    """The trusted and rejected folders; also the certificate validator asyncua calls on CreateSession."""

    def __init__(self, trusted_dir: Path) -> None:
        self.trusted_dir = trusted_dir
        self.rejected_dir = trusted_dir.parent / "rejected"
        self._reported: set[tuple[Path, str]] = set()

    def prepare(self) -> TrustList:
        """Create both folders when missing and read the trusted one; ConfigError for an unusable file."""
        for folder in (self.trusted_dir, self.rejected_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ConfigError([Problem(str(folder), SETTINGS_KEY, f"cannot be created ({error.strerror})",
                                           "choose a folder the gateway may write to")]) from error
        return self.checked()

    def checked(self) -> TrustList:
        """The trusted folder read; ConfigError naming every file that is not a certificate."""
        trust = self.read()
        if trust.unreadable:
            raise ConfigError([Problem(str(path), SETTINGS_KEY, f"is not a certificate ({reason})",
                                       "remove the file, or replace it with the client's X.509 certificate (DER or "
                                       "PEM)") for path, reason in trust.unreadable])
        return trust

    def read(self) -> TrustList:
        certificates: list[x509.Certificate] = []
        unreadable: list[tuple[Path, str]] = []
        try:
            files = sorted(p for p in self.trusted_dir.iterdir() if p.suffix.lower() in CERTIFICATE_SUFFIXES)
        except OSError as error:
            return TrustList((), ((self.trusted_dir, error.strerror or str(error)),))
        for path in files:
            try:
                certificates.append(load_certificate(path.read_bytes()))
            except (OSError, ValueError) as error:
                unreadable.append((path, getattr(error, "strerror", None) or str(error)))
        return TrustList(tuple(certificates), tuple(unreadable))

    def is_trusted(self, certificate: x509.Certificate) -> bool:
        trust = self.read()
        for entry in trust.unreadable:
            if entry not in self._reported:
                self._reported.add(entry)
                log.warning("OPC UA: %s in the trusted clients folder is skipped: not a certificate (%s)", *entry)
        return trust.trusts(certificate)

    async def validate(self, certificate: x509.Certificate, application: ua.ApplicationDescription) -> None:
        """asyncua's CertificateValidatorMethod: raise ServiceError to refuse the session."""
        name = common_name(certificate)
        if not self.is_trusted(certificate):
            copy = self._reject(certificate)
            log.warning("OPC UA: client %r (%s) refused: its certificate is not trusted. To accept it, move %s into "
                        "%s", name, application.ApplicationUri, copy or "its certificate", self.trusted_dir)
            raise ServiceError(StatusCodes.BadSecurityChecksFailed)
        now = datetime.datetime.now(datetime.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            log.warning("OPC UA: client %r refused: its certificate is valid from %s to %s only", name,
                        certificate.not_valid_before_utc, certificate.not_valid_after_utc)
            raise ServiceError(StatusCodes.BadCertificateTimeInvalid)
        if application.ApplicationUri not in application_uris(certificate):
            log.warning("OPC UA: client %r refused: its application URI %s is not in its certificate (%s)", name,
                        application.ApplicationUri, ", ".join(application_uris(certificate)) or "none")
            raise ServiceError(StatusCodes.BadCertificateUriInvalid)

    def _reject(self, certificate: x509.Certificate) -> Path | None:
        der = certificate.public_bytes(Encoding.DER)
        thumbprint = hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
        path = self.rejected_dir / f"{_UNSAFE.sub('_', common_name(certificate))[:64]} [{thumbprint}].der"
        try:
            self.rejected_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(der)
        except OSError as error:
            log.warning("OPC UA: cannot keep the refused client certificate in %s (%s)", path, error.strerror)
            return None
        return path


def load_certificate(data: bytes) -> x509.Certificate:
    """One X.509 certificate, PEM or DER (ValueError otherwise)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def application_uris(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(names.get_values_for_type(x509.UniformResourceIdentifier))


def _issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    if not _is_authority(authority) or certificate.issuer != authority.subject:
        return False
    try:
        certificate.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_authority(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    try:
        certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return constraints.ca
    return False
