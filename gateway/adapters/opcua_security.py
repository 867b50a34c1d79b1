"""OPC UA security for the gateway's server: endpoints, certificate, trusted clients, users and roles.

`apply_security` sets up an asyncua Server before it starts, from `[opcua.security]`:

- endpoints: policy None (`none_endpoint`) and, with `signed_endpoints`, Basic256Sha256 and
  Aes256_Sha256_RsaPss, each in mode Sign and SignAndEncrypt;
- the server certificate (opcua_certificate.py: created on first start);
- client certificates checked against the trusted folder, refused ones copied to `rejected`
  (opcua_trust.py); the check runs on CreateSession and again on ActivateSession, against the
  certificate of the secure channel itself;
- identity tokens: UserName with a users file (opcua_users.py), Anonymous only with `anonymous`;
  asyncua's default user manager, which accepts any password, is replaced;
- roles: every request passes RolePermissions (opcua_roles.py), which refuses what the role may not use
  and makes the caller visible to method callbacks through `current_caller()`.

Roles, `Caller` and `current_caller` are re-exported here for the method callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User
from asyncua.server.user_managers import UserManager
from cryptography import x509

from gateway.adapters.opcua_certificate import existing_credentials, server_credentials, thumbprint
from gateway.adapters.opcua_roles import (
    ANONYMOUS_NAME,
    NO_CALLER,
    Caller,
    GatewayUser,
    RolePermissions,
    current_caller,
)
from gateway.adapters.opcua_trust import ClientTrust, common_name
from gateway.adapters.opcua_types import Server
from gateway.adapters.opcua_users import Role, UserAccount, load_users, spend_verification_time
from gateway.settings import OpcUaSecuritySettings, OpcUaSettings

__all__ = ["NO_CALLER", "Caller", "GatewayUserManager", "Role", "apply_security", "current_caller",
           "opcua_security_summary", "security_policies"]

log = logging.getLogger(__name__)

_SIGNED = (ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt, ua.SecurityPolicyType.Basic256Sha256_Sign,
           ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt, ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign)


def security_policies(settings: OpcUaSecuritySettings) -> list[ua.SecurityPolicyType]:
    """The endpoints offered, most secure first (asyncua encrypts passwords with the first SignAndEncrypt one)."""
    policies = list(_SIGNED) if settings.signed_endpoints else []
    if settings.none_endpoint:
        policies.append(ua.SecurityPolicyType.NoSecurity)
    return policies


async def apply_security(server: Server, settings: OpcUaSecuritySettings, application_uri: str, host: str,
                         name: str) -> None:
    """Configure `server` (initialised, not started): policies, certificate, validator, tokens, users, roles.

    `name` is the application name, the common name of a certificate created here. ConfigError (naming the
    file, the settings key and the fix) when the certificate, key, trusted folder or users file is unusable.
    """
    trust: ClientTrust | None = None
    if settings.signed_endpoints:
        credentials = server_credentials(settings, application_uri, host, name)
        await server.load_certificate(credentials.certificate_der(), "der")
        await server.load_private_key(credentials.private_key_der(), None, "der")
        trust = ClientTrust(settings.trusted_clients_dir)
        trust.prepare()
        server.set_certificate_validator(trust.validate)
    accounts = load_users(settings.users_file) if settings.users_file is not None else {}
    tokens: list[type] = []
    if settings.anonymous:
        tokens.append(ua.AnonymousIdentityToken)
    if settings.users_file is not None:
        tokens.append(ua.UserNameIdentityToken)
    if not tokens:
        log.warning("OPC UA: no users_file and anonymous = false in [opcua.security]: every session will be "
                    "refused. Set users_file (see `bms-gateway opcua-user`) or anonymous = true")
    server.set_identity_tokens(tokens)
    server.iserver.set_user_manager(GatewayUserManager(accounts, anonymous=settings.anonymous,
                                                       none_channel=settings.none_endpoint, trust=trust))
    permissions = RolePermissions(server.iserver.lookup_external_session)
    server.set_security_policy(security_policies(settings), permission_ruleset=permissions)


class GatewayUserManager(UserManager):
    """Sessions for the users of the users file (and anonymous viewers when allowed), nobody else.

    asyncua calls `get_user` on ActivateSession with the secure channel's client certificate (empty on a
    None channel), so this is also where a channel the configuration does not offer is refused: asyncua
    accepts a None channel even when policy None is not configured.
    """

    def __init__(self, accounts: Mapping[str, UserAccount], *, anonymous: bool, none_channel: bool,
                 trust: ClientTrust | None) -> None:
        self._accounts = dict(accounts)
        self._anonymous = anonymous
        self._none_channel = none_channel
        self._trust = trust

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if not self._channel_allowed(certificate):
            return None
        if username is None:
            if not self._anonymous:
                log.warning("OPC UA: anonymous session refused (set [opcua.security] anonymous = true to allow it)")
                return None
            return GatewayUser.of(ANONYMOUS_NAME, Role.VIEWER)
        account = self._accounts.get(username)
        if account is None:
            spend_verification_time(password or "")
        elif account.verify(password or ""):
            return GatewayUser.of(account.name, account.role)
        log.warning("OPC UA: login refused for user %r: unknown user or wrong password", username)
        return None

    def _channel_allowed(self, certificate: Any) -> bool:
        if not certificate:
            if not self._none_channel:
                log.warning("OPC UA: session on a channel without security refused (none_endpoint = false)")
            return self._none_channel
        if not isinstance(certificate, bytes):
            return False
        try:
            client = x509.load_der_x509_certificate(certificate)
        except ValueError:
            return False
        if self._trust is None or not self._trust.is_trusted(client):
            log.warning("OPC UA: session refused: the channel's client certificate %r is not trusted",
                        common_name(client))
            return False
        return True


def opcua_security_summary(opcua: OpcUaSettings) -> str:
    """One line for check-config, after loading every file as the server will (ConfigError if one is unusable).
    Creates nothing: a missing certificate is reported as created at the first start."""
    security = opcua.security
    policies = (["None"] if security.none_endpoint else []) + (
        ["Basic256Sha256 and Aes256_Sha256_RsaPss (Sign, SignAndEncrypt)"] if security.signed_endpoints else [])
    parts = [f"opcua security: endpoints {', '.join(policies)}"]
    if security.signed_endpoints:
        credentials = existing_credentials(security)
        if credentials is None:
            parts.append(f"certificate {security.certificate} created at the first start")
        else:
            certificate = credentials.certificate
            parts.append(f"certificate {security.certificate} ({common_name(certificate)}, SHA-1 "
                         f"{thumbprint(certificate)}, valid until {certificate.not_valid_after_utc.date()})")
        trust = ClientTrust(security.trusted_clients_dir)
        trusted = len(trust.checked().certificates) if trust.trusted_dir.is_dir() else 0
        parts.append(f"{trusted} trusted client certificate(s) in {trust.trusted_dir}")
    if security.users_file is None:
        parts.append("no users file")
    else:
        accounts = load_users(security.users_file)
        counts = {role: sum(1 for a in accounts.values() if a.role is role) for role in Role}
        parts.append(f"users {security.users_file} (" + ", ".join(
            f"{count} {role.label}" for role, count in counts.items()) + ")")
    parts.append("anonymous viewers allowed" if security.anonymous else "no anonymous sessions")
    if security.users_file is None and not security.anonymous:
        parts.append("WARNING: every session will be refused")
    return ", ".join(parts)
