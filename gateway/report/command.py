"""`bms-gateway report --pack ID`: a pack's health report as one self-contained HTML file (offline, read-only)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gateway.errors import AdapterError
from gateway.event_command import time_argument
from gateway.store_location import add_store_arguments, existing_store

REPORT_COMMAND = "report"


def add_report_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(REPORT_COMMAND, help="write a pack's health report (HTML with plots: SoC and SoH "
                                 "history, cell voltage spread, per-cell R0, temperatures, recent events)")
    report.add_argument("--pack", required=True, metavar="ID", help="the pack's id")
    report.add_argument("--since", type=time_argument, metavar="T", default=None,
                        help="start of the window: ISO-8601, epoch seconds or a duration back from now (default: 30d)")
    report.add_argument("--until", type=time_argument, metavar="T", default=None, help="end (default: now)")
    report.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="where to write it (default: <pack>-health.html; - for standard output)")
    add_store_arguments(report)


def run_report_command(arguments: argparse.Namespace) -> int:
    from gateway.report.data import read_report_data  # matplotlib loads only for this command
    from gateway.report.html import render_report

    now = time.time()
    until = now if arguments.until is None else arguments.until
    since = until - 30 * 86_400.0 if arguments.since is None else arguments.since
    if since >= until:
        raise AdapterError("report: --since is not before --until; fix: give an earlier --since")
    html = render_report(read_report_data(existing_store(arguments), arguments.pack, since, until), now)
    output: Path = arguments.output or Path(f"{arguments.pack}-health.html")
    if str(output) == "-":
        sys.stdout.write(html)
        return 0
    try:
        output.write_text(html, encoding="utf-8")
    except OSError as error:
        raise AdapterError(f"report: cannot write {output} ({error.strerror}); fix: --output to a writable "
                           "place") from error
    print(f"{output}: health report of {arguments.pack}")
    return 0
