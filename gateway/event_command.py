"""`bms-gateway events`: print the safety event log from the store's database file (offline, read-only)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from contextlib import closing
from datetime import UTC, datetime

from gateway.adapters.event_log import EventLog
from gateway.event_formats import RENDERERS
from gateway.store_location import add_store_arguments, existing_store

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_EPOCH = re.compile(r"\d+(?:\.\d+)?")
_SECONDS_PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_TIME_FORMATS = ("ISO-8601 (2026-11-21T10:00:00Z, naive means UTC), epoch seconds, or a duration back from now "
                 "(90s, 30m, 2h, 7d)")


def parse_time(text: str, now: float) -> float:
    """Seconds since the epoch from ISO-8601, epoch seconds or a duration back from `now`."""
    text = text.strip()
    if duration := _DURATION.fullmatch(text):
        return now - float(duration[1]) * _SECONDS_PER_UNIT[duration[2]]
    if _EPOCH.fullmatch(text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time; use {_TIME_FORMATS}") from None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def add_event_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = commands.add_parser("events", help="print the safety event log (alarms, trips, acknowledgements, "
                                 "resets, admissions, commands)")
    events.add_argument("--pack", metavar="ID", help="only this pack's events")
    events.add_argument("--since", type=time_argument, metavar="T",
                        help=f"only events at or after this time: {_TIME_FORMATS}")
    events.add_argument("--until", type=time_argument, metavar="T",
                        help="only events at or before this time (same formats)")
    events.add_argument("--limit", type=_positive_int, metavar="N", help="only the newest N of the matching events")
    events.add_argument("--format", choices=sorted(RENDERERS), default="table", help="default: table")
    add_store_arguments(events)


def run_event_command(arguments: argparse.Namespace) -> int:
    with closing(EventLog(existing_store(arguments), create=False)) as log:
        events = log.query(arguments.pack, arguments.since, arguments.until, arguments.limit)
    sys.stdout.write(RENDERERS[arguments.format](events))
    return 0


def time_argument(text: str) -> float:
    try:
        return parse_time(text, time.time())
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)
