"""`bms-gateway ack|reset --pack ID --operator NAME`: an operator command to the running gateway, through its
store (adapters/command_queue.py), waiting for the outcome."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from contextlib import closing
from pathlib import Path

from gateway.adapters.command_queue import CommandQueue
from gateway.errors import AdapterError
from gateway.event_command import configured_store
from gateway.runtime.operator_commands import OperatorAction

_HELP = {
    OperatorAction.ACKNOWLEDGE: "acknowledge a pack's present alarms",
    OperatorAction.RESET: "reset a pack's latched trips (refused for a trip whose condition is still present)",
}
COMMAND_NAMES = {"ack": OperatorAction.ACKNOWLEDGE, "reset": OperatorAction.RESET}


def add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, action in COMMAND_NAMES.items():
        parser = commands.add_parser(name, help=_HELP[action])
        parser.add_argument("--pack", required=True, metavar="ID", help="the pack's id in the site configuration")
        parser.add_argument("--operator", default=getpass.getuser(), help="who asks (logged; default: the login)")
        parser.add_argument("--wait", type=float, default=5.0, metavar="S",
                            help="seconds to wait for the gateway's outcome (0: queue and return)")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--store", type=Path, metavar="PATH", help="the gateway's database file")
        source.add_argument("--config", type=Path, metavar="FILE", help="site configuration whose [store] to use "
                            "(default: the built-in demo's)")


def run_operator_command(arguments: argparse.Namespace) -> int:
    path = arguments.store if arguments.store is not None else configured_store(arguments.config)
    if not path.is_file():
        raise AdapterError(f"store {path}: no such database file; fix: give the running gateway's [store] path "
                           "with --store PATH, or its site configuration with --config FILE")
    action = COMMAND_NAMES[arguments.command]
    with closing(CommandQueue(path)) as queue:
        command_id = queue.submit(arguments.pack, action.value, arguments.operator)
        deadline = time.monotonic() + arguments.wait
        while time.monotonic() < deadline:
            outcome = queue.outcome(command_id)
            if outcome is not None:
                print(f"{action.value} pack {arguments.pack}: {outcome}")
                return 0 if outcome == "done" else 1
            time.sleep(0.1)
    if arguments.wait > 0:
        print(f"{action.value} pack {arguments.pack}: queued as command {command_id}, no outcome within "
              f"{arguments.wait:g} s (is the gateway running with this store?)", file=sys.stderr)
        return 3
    print(f"{action.value} pack {arguments.pack}: queued as command {command_id}")
    return 0
