"""`bms-gateway opcua-user NAME --role ROLE (--users-file FILE | --config FILE) [--password-stdin]`: add or
replace an OPC UA user in the users file, with the password hashed (adapters/opcua_users.py). The password
is asked twice on the terminal, or read as one line from standard input. The running server reads the
file at its start: restart the gateway for the change to take effect."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from gateway.adapters.opcua_users import MIN_PASSWORD_LENGTH, Role, save_user
from gateway.config_loader import load_settings
from gateway.errors import ConfigError, Problem

OPCUA_USER_COMMAND = "opcua-user"


def add_opcua_user_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(OPCUA_USER_COMMAND, help="add or replace an OPC UA user (role, hashed password)")
    parser.add_argument("name", metavar="NAME", help="the user name the OPC UA client logs in with")
    parser.add_argument("--role", required=True, choices=[role.label for role in Role],
                        help="viewer: read, browse, subscribe, history; operator: also acknowledge, confirm, reset; "
                             "engineer: also set SoC, admit, block")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--users-file", type=Path, metavar="FILE", help="the users file (created when missing)")
    where.add_argument("--config", type=Path, metavar="FILE",
                       help="site configuration whose [opcua.security] users_file to edit")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input instead of the terminal")


def run_opcua_user_command(arguments: argparse.Namespace) -> int:
    path = _users_file(arguments)
    password = _read_password(arguments.password_stdin)
    role = Role.from_label(arguments.role)
    save_user(path, arguments.name, role, password)
    print(f"{path}: user {arguments.name!r} saved with role {role.label}; restart the gateway to apply it")
    return 0


def _users_file(arguments: argparse.Namespace) -> Path:
    if arguments.users_file is not None:
        return Path(arguments.users_file)
    settings = load_settings(arguments.config)
    users_file = settings.opcua.security.users_file
    if users_file is None:
        raise ConfigError([Problem(str(arguments.config), "opcua.security.users_file", "is not set",
                                   'set users_file = "<path>" in the [opcua.security] section, or give --users-file')])
    return users_file


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise _password_problem("cannot be asked: standard input is not a terminal",
                                    "run the command in a terminal, or pass --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise _password_problem("differs between the two entries", "run the command again")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _password_problem(f"is shorter than {MIN_PASSWORD_LENGTH} characters", "choose a longer password")
    return password


def _password_problem(message: str, fix: str) -> ConfigError:
    return ConfigError([Problem("password", "(input)", message, fix)])
