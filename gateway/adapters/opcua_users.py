"""The OPC UA users file: user names, roles and password hashes (TOML, edited by `bms-gateway opcua-user`).

    # bms-gateway OPC UA users (docs/opcua.md, Security)
    [users.alice]
    role = "operator"
    password_hash = "pbkdf2-sha256$600000$<salt, base64>$<hash, base64>"

Hashes are PBKDF2-HMAC-SHA256 (standard library), compared in constant time; the iteration count is part
of each hash, so stronger hashes can be introduced without invalidating the old ones. Standard library
only: the CLI writes this file without loading the OPC UA stack.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from pathlib import Path

from gateway.errors import ConfigError, Problem

SETTINGS_KEY = "opcua.security.users_file"
HASH_SCHEME = "pbkdf2-sha256"
ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256 (2023); about 0.2 s per login here
SALT_BYTES = 16
MIN_PASSWORD_LENGTH = 8
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADER = ("# bms-gateway OPC UA users (docs/opcua.md, Security). Add or replace a user with\n"
           "#   bms-gateway opcua-user NAME --role viewer|operator|engineer --users-file THIS_FILE\n"
           "# Roles: viewer (read, browse, subscribe, history), operator (also acknowledge, confirm, reset),\n"
           "# engineer (also set SoC, admit or block a pack).\n")


class Role(IntEnum):
    """What an OPC UA user may do; each role includes the ones below it."""

    VIEWER = 1    # read, browse, subscribe, read history
    OPERATOR = 2  # also acknowledge / confirm alarms, reset latched trips
    ENGINEER = 3  # also set a pack's SoC, admit or block a pack

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Role:
        try:
            return cls[label.upper()]
        except KeyError:
            raise ValueError(f"unknown role {label!r}: use one of {', '.join(r.label for r in cls)}") from None


@dataclass(frozen=True, slots=True)
class UserAccount:
    name: str
    role: Role
    password_hash: str

    def verify(self, password: str) -> bool:
        return verify_password(password, self.password_hash)


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{HASH_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, password_hash: str) -> bool:
    """True when `password` produces `password_hash` (constant-time compare); False for a malformed hash."""
    try:
        iterations, salt, expected = _parse_hash(password_hash)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def spend_verification_time(password: str) -> None:
    """As long as verifying a real user's password, so an unknown name does not answer faster."""
    verify_password(password, _dummy_hash())


@cache
def _dummy_hash() -> str:
    return hash_password("not a password")


def load_users(path: Path) -> dict[str, UserAccount]:
    """Every account of the file; ConfigError naming the file, the entry and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError([Problem(str(path), SETTINGS_KEY, f"cannot be read ({reason})",
                                   "correct the path, or create the file with `bms-gateway opcua-user NAME --role "
                                   f"ROLE --users-file {path}`")]) from error
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([Problem(str(path), "(syntax)", f"is not valid TOML ({error})",
                                   "fix the TOML syntax at the line shown")]) from error
    problems: list[Problem] = []
    unknown = sorted(set(document) - {"users"})
    if unknown:
        problems.append(Problem(str(path), ", ".join(unknown), "unknown top-level key(s)",
                                "keep only [users.<name>] tables"))
    users = document.get("users", {})
    if not isinstance(users, dict):
        raise ConfigError([Problem(str(path), "users", "is not a table", "write one [users.<name>] table per user")])
    accounts: dict[str, UserAccount] = {}
    for name, entry in users.items():
        account = _account(path, name, entry, problems)
        if account is not None:
            accounts[name] = account
    if problems:
        raise ConfigError(problems)
    return accounts


def save_user(path: Path, name: str, role: Role, password: str) -> None:
    """Add or replace one user (the file is rewritten in a fixed layout; other users are kept)."""
    if not USER_NAME.match(name):
        raise ConfigError([Problem("command line", "NAME", f"{name!r} is not a valid user name",
                                   "use 1 to 64 letters, digits, '_', '.', '@' or '-', starting with a letter or "
                                   "digit")])
    accounts = load_users(path) if path.exists() else {}
    accounts[name] = UserAccount(name, role, hash_password(password))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)  # a leftover of an interrupted run, perhaps with another mode
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(render_users(accounts.values()))
    os.replace(temporary, path)


def render_users(accounts: Iterable[UserAccount]) -> str:
    blocks = [_HEADER]
    for account in sorted(accounts, key=lambda a: a.name):
        key = account.name if _BARE_KEY.match(account.name) else f'"{account.name}"'
        blocks.append(f"[users.{key}]\nrole = \"{account.role.label}\"\npassword_hash = \"{account.password_hash}\"\n")
    return "\n".join(blocks)


def _account(path: Path, name: str, entry: object, problems: list[Problem]) -> UserAccount | None:
    key = f"users.{name}"
    if not USER_NAME.match(name):
        problems.append(Problem(str(path), key, "is not a valid user name",
                                "use 1 to 64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"))
        return None
    if not isinstance(entry, Mapping):
        problems.append(Problem(str(path), key, "is not a table", 'write role = "..." and password_hash = "..."'))
        return None
    unknown = sorted(set(entry) - {"role", "password_hash"})
    if unknown:
        problems.append(Problem(str(path), f"{key}.{unknown[0]}", "unknown key", "keep only role and password_hash"))
    role_label, password_hash = entry.get("role"), entry.get("password_hash")
    try:
        role = Role.from_label(role_label) if isinstance(role_label, str) else None
    except ValueError as error:
        problems.append(Problem(str(path), f"{key}.role", str(error), 'write role = "viewer", "operator" or '
                                                                         '"engineer"'))
        return None
    if role is None:
        problems.append(Problem(str(path), f"{key}.role", "is missing or not a string",
                                'write role = "viewer", "operator" or "engineer"'))
        return None
    if not isinstance(password_hash, str):
        problems.append(Problem(str(path), f"{key}.password_hash", "is missing or not a string",
                                f"set it with `bms-gateway opcua-user {name} --role {role.label} --users-file {path}`"))
        return None
    try:
        _parse_hash(password_hash)
    except ValueError as error:
        problems.append(Problem(str(path), f"{key}.password_hash", f"is not a usable hash ({error})",
                                f"set it again with `bms-gateway opcua-user {name} --role {role.label} --users-file "
                                f"{path}` (never write a plain password here)"))
        return None
    return UserAccount(name, role, password_hash)


def _parse_hash(password_hash: str) -> tuple[int, bytes, bytes]:
    parts = password_hash.split("$")
    if len(parts) != 4 or parts[0] != HASH_SCHEME:
        raise ValueError(f"expected {HASH_SCHEME}$<iterations>$<salt>$<hash>")
    try:
        iterations = int(parts[1])
        salt, digest = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
    except (ValueError, binascii.Error) as error:
        raise ValueError(f"expected {HASH_SCHEME}$<iterations>$<salt>$<hash> in base64") from error
    if iterations < 1 or not salt or len(digest) != hashlib.sha256().digest_size:
        raise ValueError("iterations, salt or hash length out of range")
    return iterations, salt, digest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
