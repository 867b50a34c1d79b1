"""Benchmark the Modbus TCP output under a full CAN load, beside a plain pymodbus server measured in the same run.

    python -m bench.modbus [--seconds 10] [--warmup 2] [--clients 0,1,10,50] [--packs 32] [--buses 2]
                           [--client-processes 1] [--no-pin] [--all-outputs] [--gc-freeze] [--profile FILE]

For each server and each client count: N connections each read `--count` input registers (function code 04)
from a pack unit (units dealt round-robin), one request outstanding per connection, for `--warmup` + `--seconds`;
requests/s and latency percentiles come from the answers completed in the last `--seconds`.

- gateway + CAN load: the real gateway (`build_gateway`, uvloop, Modbus TCP as its only output) in its own
  process, while simulated packs send at their normal rates on virtual CAN buses (bench.modbus_canload); tick
  starts, CAN counters and CPU time are sampled every engine tick.
- plain pymodbus: a pymodbus ModbusTcpServer serving a static block, in its own process, same loop.

Clients are bench.modbus_client processes (raw asyncio sockets, no pymodbus). By default the server process is
pinned to CPU 0 and the clients to the other CPUs, so that client and server do not share a core; the report
states the CPU share each side used. Targets (issue): >= 15,000 requests/s and p99 <= 10 ms at 50 clients with
the CAN load running; no CAN frame dropped; engine tick jitter p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.line_process import LineProcess
from bench.machine import cpu_arguments
from bench.modbus_figures import client_figures, tail_causes
from bench.modbus_report import (
    FIRST_PACK_UNIT,
    Case,
    print_profile,
    print_setup,
    print_tables,
    print_tail,
    print_verdict,
)

CLIENT_START_S = 1.0  # from spawning the client processes to their first request
TAIL_QUANTILE = 99.0  # the slow requests whose waits are attributed to stalls


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port




class ServerProcess(LineProcess):
    """A bench.modbus_server process, commanded line by line."""

    def __init__(self, kind: str, port: int, args: argparse.Namespace, cpus: set[int] | None) -> None:
        command = [sys.executable, "-m", "bench.modbus_server", kind, "--port", str(port), "--packs", str(args.packs),
                   "--buses", str(args.buses), *cpu_arguments(cpus)]
        if kind == "gateway" and args.profile:
            command += ["--profile", str(args.profile)]
        if kind == "gateway" and args.all_outputs:
            command += ["--opcua-port", str(free_port()), "--prometheus-port", str(free_port())]
        if args.gc_freeze:
            command.append("--gc-freeze")
        self.kind = kind
        self.port = port
        super().__init__(command)
        self.info = self.read()

    def exited(self, code: int) -> Exception:
        return RuntimeError(f"{self.kind} server exited with {code} (its stderr is above)")


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (all CPUs, all processes; /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def run_case(server: ServerProcess, clients: int, args: argparse.Namespace, cpus: set[int] | None,
             tmp: Path) -> Case:
    """`clients` connections (none: the server alone) for warm-up + measured time; the figures of the window."""
    units = [FIRST_PACK_UNIT + i % args.packs for i in range(clients)]
    shares = [share for share in (units[k::args.client_processes] for k in range(args.client_processes)) if share]
    start_at = time.monotonic() + CLIENT_START_S
    window_start, window_end = start_at + args.warmup, start_at + args.warmup + args.seconds
    processes = []
    for k, share in enumerate(shares):
        command = [sys.executable, "-m", "bench.modbus_client", "--port", str(server.port),
                   "--units", ",".join(map(str, share)), "--count", str(args.count), "--address", str(args.address),
                   "--start-at", repr(start_at), "--warmup", str(args.warmup), "--seconds", str(args.seconds),
                   "--out", str(tmp / f"answers-{k}.bin"), *cpu_arguments(cpus)]
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    sleep_until(window_start)
    busy_start = busy_cpu_s()
    sleep_until(window_end)
    busy_s = busy_cpu_s() - busy_start
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=args.seconds + 60)
        if process.returncode:
            raise RuntimeError(f"client process exited with {process.returncode} (its stderr is above)")
        results.append(json.loads(out))
    window = server.command(f"window {window_start!r} {window_end!r}")
    figures = window["figures"]
    client_cpu_s = sum(r["cpu_s"] for r in results)
    other = (busy_s - client_cpu_s) / args.seconds - figures["cpu_share"]
    if not processes:
        return Case(server.kind, None, figures, other)
    timings = np.concatenate([np.fromfile(tmp / f"answers-{k}.bin", dtype=np.int64) for k in range(len(processes))])
    answers = sum(r["answers"] for r in results)
    errors = sum(r["errors"] + r["lost_connections"] for r in results)
    return Case(server.kind, client_figures(clients, timings, answers, errors, args.seconds, client_cpu_s),
                figures, other, tail_causes(timings, TAIL_QUANTILE, window["stalls"]),
                tail_causes(timings, 0.0, window["stalls"]))


def _pinning(args: argparse.Namespace) -> tuple[set[int] | None, set[int] | None]:
    available = sorted(os.sched_getaffinity(0))
    if args.no_pin or len(available) < 2:
        return None, None
    return {available[0]}, set(available[1:])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured time before each case")
    parser.add_argument("--clients", type=lambda s: [int(n) for n in s.split(",")], default=[0, 1, 10, 50],
                        help="client counts; 0 runs the gateway with its CAN load only (the plain server skips it)")
    parser.add_argument("--servers", type=lambda s: s.split(","), default=["gateway", "static"],
                        help="which servers to measure: gateway, static")
    parser.add_argument("--packs", type=int, default=32)
    parser.add_argument("--buses", type=int, default=2)
    parser.add_argument("--count", type=int, default=100, help="registers per request")
    parser.add_argument("--address", type=int, default=0)
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="let the OS place servers and clients")
    parser.add_argument("--all-outputs", action="store_true",
                        help="the gateway also serves OPC UA and Prometheus (nobody reads them; their own work only)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="what-if: both servers call gc.freeze() once serving (a proposed gateway change)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the gateway's event-loop thread into this file and print its top entries")
    args = parser.parse_args(argv)
    if not set(args.servers) <= {"gateway", "static"}:
        parser.error("--servers takes gateway and/or static")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pins = _pinning(args)
    started = time.monotonic()
    cases: list[Case] = []
    totals: dict[str, Any] = {}
    offered = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-modbus-") as tmp:
        for kind in args.servers:
            server = ServerProcess(kind, free_port(), args, pins[0])
            try:
                offered = max(offered, server.info["offered_frames_per_s"])
                for clients in args.clients:
                    if clients or kind == "gateway":
                        cases.append(run_case(server, clients, args, pins[1], Path(tmp)))
                if kind == "gateway":
                    totals = server.command("drain")
            finally:
                server.stop()
    print_setup(args, offered, pins)
    print_tables(cases)
    print_tail(cases)
    print_verdict(cases, totals)
    print(f"\n(run took {time.monotonic() - started:.0f} s)")
    if args.profile:
        print_profile(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
