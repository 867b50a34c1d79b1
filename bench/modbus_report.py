"""The Markdown report of the Modbus benchmark: setup, the two tables, the targets, and an optional profile."""

from __future__ import annotations

import argparse
import os
import platform
import pstats
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import code_version, cpu_model, package_version
from bench.modbus_figures import ClientFigures
from bench.modbus_site import BITRATE

BITS_PER_FRAME = 131  # extended id, 8 data bytes, interframe space, no stuff bits: a lower bound of bus load
FIRST_PACK_UNIT = 2  # ModbusSettings.first_pack_unit_id
TARGET_RPS, TARGET_P99_MS, TARGET_JITTER_MS = 15_000.0, 10.0, 5.0


@dataclass(frozen=True)
class Case:
    server: str  # gateway | static
    clients: ClientFigures | None  # None: no client ran (the gateway with its CAN load only)
    figures: dict[str, Any]  # the server's, during the window (bench.modbus_figures.ServerFigures)
    other_cpu_share: float  # of one core: what processes outside the benchmark used during the window
    tail: dict[str, float] = field(default_factory=dict)  # slowest requests: share overlapping each stall kind
    overall: dict[str, float] = field(default_factory=dict)  # the same for all requests (what chance gives)








def _client_count(case: Case) -> int:
    return case.clients.clients if case.clients else 0


def _ms(value: float) -> str:
    return f"{value:.2f}"


def print_setup(args: argparse.Namespace, offered: float, pins: tuple[set[int] | None, set[int] | None]) -> None:
    server_cpus, client_cpus = pins
    per_bus = offered / args.buses
    print(f"# Modbus TCP benchmark ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(f"- machine: {os.cpu_count()} CPU(s), {cpu_model()}; Python {platform.python_version()}, "
          f"pymodbus {package_version('pymodbus')}, {_loop_name()} in both servers and the clients")
    if server_cpus is None:
        print("- CPU sharing: not pinned; servers and clients share all CPUs as the OS schedules them")
    else:
        print(f"- CPU sharing: server process pinned to CPU {sorted(server_cpus)} (its event loop, the python-can "
              f"receive threads and the CAN load thread share that core and the GIL); client processes pinned to "
              f"CPU(s) {sorted(client_cpus or ())}. CPU columns are shares of one core; 'other' is what processes "
              "outside the benchmark used meanwhile (anything above a few % disturbs the figures)")
    print(f"- site: {args.packs} packs x 32 cells on {args.buses} virtual CAN bus(es), {offered:,.0f} frames/s offered "
          f"({per_bus:,.0f} per bus, >= {per_bus * BITS_PER_FRAME / BITRATE:.0%} of {BITRATE // 1000} kbit/s each); "
          "engine at 10 Hz; " + ("OPC UA and Prometheus enabled too (no client reads them)" if args.all_outputs
                                  else "Modbus TCP is the gateway's only output"))
    print(f"- requests: function code 04, {args.count} input registers from address {args.address} of pack unit ids "
          f"{FIRST_PACK_UNIT}..{FIRST_PACK_UNIT + args.packs - 1} (dealt round-robin; the plain server answers every "
          f"unit from one static block); one request outstanding per connection; {args.client_processes} client "
          f"process(es) with raw asyncio sockets")
    if args.gc_freeze:
        print("- what-if: both server processes called gc.freeze() once serving (not what the gateway does today)")
    print(f"- code: {code_version()}")
    print(f"- each case: {args.warmup:g} s warm-up, then {args.seconds:g} s measured\n")


def print_tables(cases: list[Case]) -> None:
    print("| clients | server | requests/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU | clients CPU "
          "| other CPU | loop jitter p99 ms | full GCs (longest pause ms) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in sorted(cases, key=lambda c: (_client_count(c), c.server)):
        c, f = case.clients, case.figures
        name = "gateway + CAN load" if case.server == "gateway" else "plain pymodbus, static"
        client_columns = (f"{c.clients} | {name} | {c.requests_per_s:,.0f} | {_ms(c.p50_ms)} | {_ms(c.p99_ms)} | "
                          f"{_ms(c.p999_ms)} | {c.errors} | {f['cpu_share']:.0%} | {c.cpu_share:.0%}"
                          if c else f"0 | {name} | - | - | - | - | - | {f['cpu_share']:.0%} | -")
        print(f"| {client_columns} | {case.other_cpu_share:.0%} | {_ms(f['jitter_p99_ms'])} | {f['gc_full']} "
              f"({f['gc_max_ms']:.0f}) |")
    print("\nLoop jitter: for the gateway, the engine's tick starts; for the plain server, a probe task sleeping on "
          "the same 100 ms schedule. CAN ingest during the gateway cases (frames counted between the first and last "
          "tick of each window; a difference of a few dozen between sent and received is frames in flight at the "
          "edges):\n")
    print("| clients | frames sent | received | dropped | rejected | backlog max | tick jitter p50 / p99 / max ms "
          "| tick duration p50 / p99 ms | CAN load thread CPU, latest burst ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in sorted((c for c in cases if c.server == "gateway"), key=_client_count):
        f = case.figures
        print(f"| {_client_count(case)} | {f['frames_sent']:,} | {f['frames_received']:,} | "
              f"{f['frames_dropped']} | {f['frames_rejected']} | {f['backlog_max']} | {_ms(f['jitter_p50_ms'])} / "
              f"{_ms(f['jitter_p99_ms'])} / {_ms(f['jitter_max_ms'])} | {_ms(f['tick_p50_ms'])} / "
              f"{_ms(f['tick_p99_ms'])} | {f['load_cpu_share']:.0%}, {f['load_late_max_ms']:.0f} |")


def print_tail(cases: list[Case]) -> None:
    measured = sorted((c for c in cases if c.clients is not None and c.tail),
                      key=lambda c: (_client_count(c), c.server))
    if not measured:
        return
    print("\nWhere the slowest 1 % of requests (latency >= p99) waited: the share whose time in flight overlapped an "
          "engine tick (the loop runs nothing else meanwhile), a garbage-collector pause of 1 ms or more, or "
          "neither (queueing behind other requests, the Modbus output encoding the images of a new snapshot, "
          "CAN ingest, GIL hand-offs). In brackets, the same share among all requests: what chance alone gives.\n")
    print("| clients | server | overlapped an engine tick | a GC pause | neither |")
    print("|---:|---|---:|---:|---:|")
    for case in measured:
        tail, overall = case.tail, case.overall
        name = "gateway + CAN load" if case.server == "gateway" else "plain pymodbus, static"
        shares = [f"{tail[kind]:.0%} ({overall[kind]:.0%})" for kind in ("engine tick", "GC pause", "neither")]
        if case.server != "gateway":
            shares[0] = "-"
        print(f"| {_client_count(case)} | {name} | {' | '.join(shares)} |")


def print_verdict(cases: list[Case], totals: dict[str, Any]) -> None:
    gateway = [c for c in cases if c.server == "gateway"]
    measured = [c.clients for c in gateway if c.clients is not None]
    if not gateway or not totals:
        return
    lost = totals["frames_sent"] - totals["frames_received"]  # dropped ones included
    print(f"\nCAN totals over the whole gateway run, after draining: {totals['frames_sent']:,} sent, "
          f"{totals['frames_received']:,} received, {totals['frames_dropped']} dropped (queue full), "
          f"{totals['frames_rejected']} rejected; {totals['identity_answers']} identity requests answered\n")
    checks = []
    if measured:
        top = max(measured, key=lambda c: c.clients)
        checks += [
            (f"requests/s at {top.clients} clients >= {TARGET_RPS:,.0f}", top.requests_per_s >= TARGET_RPS,
             f"{top.requests_per_s:,.0f}"),
            (f"p99 at {top.clients} clients <= {TARGET_P99_MS:g} ms", top.p99_ms <= TARGET_P99_MS,
             f"{top.p99_ms:.2f} ms"),
        ]
    checks += [
        ("no CAN frame dropped, lost or rejected", lost == 0 and totals["frames_rejected"] == 0,
         f"{lost} not received, {totals['frames_rejected']} rejected over the run"),
        (f"tick jitter p99 <= {TARGET_JITTER_MS:g} ms in every case",
         all(c.figures["jitter_p99_ms"] <= TARGET_JITTER_MS for c in gateway),
         f"worst {max(c.figures['jitter_p99_ms'] for c in gateway):.2f} ms"),
    ]
    for text, met, value in checks:
        print(f"- {'met' if met else 'MISSED'}: {text} (measured {value})")


def print_profile(path: Path) -> None:
    print(f"\ncProfile of the gateway's event-loop thread over all gateway cases ({path}; profiling slows the "
          "server, so the figures above are not representative in this run):\n")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(30)


def _loop_name() -> str:
    uvloop = package_version("uvloop")
    return f"uvloop {uvloop}" if uvloop else "asyncio"
