"""`bms-gateway ack|reset|admit --pack ID --operator NAME`: an operator command to the running gateway, through its
store (adapters/command_queue.py), waiting for the outcome."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from contextlib import closing

from gateway.adapters.command_queue import CommandQueue
from gateway.domain.operator_actions import OperatorAction
from gateway.store_location import add_store_arguments, existing_store

_HELP = {
    OperatorAction.ACKNOWLEDGE: "acknowledge a pack's present alarms",
    OperatorAction.RESET: "reset a pack's latched trips (refused for a trip whose condition is still present)",
    OperatorAction.ADMIT: "admit a pack the admission gate refuses (never a blocked pack or one that does not fit "
                          "its slot)",
}
COMMAND_NAMES = {"ack": OperatorAction.ACKNOWLEDGE, "reset": OperatorAction.RESET, "admit": OperatorAction.ADMIT}


def add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, action in COMMAND_NAMES.items():
        parser = commands.add_parser(name, help=_HELP[action])
        parser.add_argument("--pack", required=True, metavar="ID", help="the pack's id in the site configuration")
        parser.add_argument("--operator", default=getpass.getuser(), help="who asks (logged; default: the login)")
        parser.add_argument("--wait", type=float, default=5.0, metavar="S",
                            help="seconds to wait for the gateway's outcome (0: queue and return)")
        add_store_arguments(parser)


def run_operator_command(arguments: argparse.Namespace) -> int:
    action = COMMAND_NAMES[arguments.command]
    with closing(CommandQueue(existing_store(arguments))) as queue:
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
