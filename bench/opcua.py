"""Benchmark the OPC UA output: a full site updated every second, ten clients subscribed to every variable.

    python -m bench.opcua [--packs 64] [--buses 4] [--clients 10] [--interval-ms 1000] [--update-interval 1.0]
                          [--seconds 20] [--warmup 5] [--alarms 6] [--no-pin] [--no-spin-control]
                          [--what-if NAME,...] [--profile-opcua FILE] [--quick]

Three servers, one after the other, each in its own process (issue 6, item 7):

1. gateway, OPC UA off: the real gateway (bench.opcua_gateway: build_gateway + run_gateway, Modbus TCP and
   Prometheus on, nobody reading them) with every pack on virtual CAN buses at its normal rates (the CAN load of
   bench.modbus). Baseline of the event-loop lag, the engine tick, CAN ingest and the alarm latency; measured
   alone, then with a busy-looping process on each other CPU (what any neighbour costs the gateway here).
2. gateway + OPC UA: the same with OPC UA on in its child process (`opcua.separate_process = true`,
   `opcua.update_interval_s` = `--update-interval`): measured first without a client, then with `--clients` client
   processes (bench.opcua_client), each subscribed (publishing interval `--interval-ms`) to every variable the
   output writes: the site's, every pack's, every cell's and every sensor's, by the documented NodeIds.
3. bare asyncua: a plain asyncua server in a process of its own (bench.opcua_bare) writing the same number of
   Double variables once per second, nothing else, with the same clients. Baseline of the notification latency.

Notification latency = receipt by the client - SourceTimestamp (the wall time of the snapshot, or of the bare
server's write pass). During each gateway window, `--alarms` faults are injected one after the other on the CAN
bus (bench.opcua_faults) and the time from the frame to the alarm in the snapshot is measured. By default the
gateway process is pinned to CPU 0 and the OPC UA child, the bare server and the clients to the other CPU(s).
Targets (issue 6): notification latency p99 <= publishing interval + 100 ms; event-loop lag p99 <= 5 ms; CAN
ingest and alarm latency unaffected. Results and what limits them: docs/opcua-benchmark.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.line_process import LineProcess
from bench.machine import cpu_arguments
from bench.modbus import busy_cpu_s, free_port, sleep_until
from bench.opcua_child import WHAT_IFS, what_ifs
from bench.opcua_figures import ClientResult, notification_figures
from bench.opcua_probe import process_cpu_s
from bench.opcua_report import GatewayCase, NotificationCase, Report, print_report

Pins = tuple[set[int] | None, set[int] | None]  # CPUs of the gateway process; of everything else
SPIN_CASE = "OPC UA off, other CPU(s) spinning"
QUICK = {"packs": 2, "buses": 1, "clients": 2, "seconds": 3.0, "warmup": 2.0, "alarms": 2}


_STARTED = time.monotonic()


def progress(message: str) -> None:
    """Where the run is, on stderr (the report goes to stdout)."""
    print(f"[bench.opcua {time.monotonic() - _STARTED:4.0f} s] {message}", file=sys.stderr, flush=True)


class CaseFailed(Exception):
    """A process under test stopped: the case ends, the report says why, the other cases still run."""


class Server(LineProcess):
    """A benchmark server process (bench.opcua_gateway or bench.opcua_bare), commanded line by line.

    Its stderr goes to a file, copied to ours when it stops; the last error line in it explains a failure."""

    def __init__(self, name: str, command: list[str], tmp: Path) -> None:
        self.name = name
        self._stderr_path = tmp / f"{name.replace(' ', '-')}.stderr"
        self._stderr = self._stderr_path.open("w")
        super().__init__(command, self._stderr, stop_timeout_s=60.0)
        progress(f"{name}: starting")
        self.info = self.read()
        progress(f"{name}: ready")

    def exited(self, code: int) -> Exception:
        return CaseFailed(f"{self.name} stopped (exit code {code}): {self.last_error()}")

    def last_error(self) -> str:
        self._stderr.flush()
        lines = [line.strip(" |") for line in self._stderr_path.read_text(errors="replace").splitlines()]
        errors = [line for line in lines if "Error" in line.split(":", 1)[0]]
        return errors[-1] if errors else "see its stderr"

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._stderr.close()
            sys.stderr.write(self._stderr_path.read_text(errors="replace"))


class Client(LineProcess):
    """One bench.opcua_client process."""

    def exited(self, code: int) -> Exception:
        return CaseFailed(f"an OPC UA client stopped (exit code {code}; its stderr is above)")


class Clients:
    """`count` bench.opcua_client processes subscribed to the NodeIds in `nodes`."""

    def __init__(self, count: int, url: str, nodes: Path, args: argparse.Namespace, cpus: set[int] | None,
                 tmp: Path) -> None:
        self._outs = [tmp / f"latencies-{k}.bin" for k in range(count)]
        self._clients = [
            Client([sys.executable, "-m", "bench.opcua_client", "--url", url, "--nodes", str(nodes), "--out", str(out),
                    "--interval-ms", str(args.interval_ms), *cpu_arguments(cpus)])
            for out in self._outs]
        progress(f"{count} client(s): subscribing")
        self.subscribed = [client.read() for client in self._clients]
        progress(f"{count} client(s): subscribed")

    def window(self, start_s: float, end_s: float) -> None:
        for client in self._clients:
            client.send(f"window {start_s!r} {end_s!r}")

    def results(self) -> list[ClientResult]:
        """Each client's window; then the clients are killed (closing sessions on a busy server takes long)."""
        results = [ClientResult(client.read(), np.fromfile(out, dtype=np.float64))
                   for client, out in zip(self._clients, self._outs, strict=True)]
        self.kill()
        return results

    def kill(self) -> None:
        for client in self._clients:
            client.kill()


def _alarms_in_window(server: Server, count: int, end_s: float) -> list[dict[str, Any]]:
    """`count` alarms, one after the other, spread over the rest of the window."""
    results: list[dict[str, Any]] = []
    for k in range(count):
        sleep_until(time.monotonic() + max(0.0, (end_s - time.monotonic()) / (count - k + 1)))
        if time.monotonic() >= end_s:
            break
        results.append(server.command("alarm"))
    return results


@dataclass
class Window:
    """What one measured window gave: the server's reply, the clients' results, CPU shares of one core."""

    reply: dict[str, Any]
    results: list[ClientResult]
    cpu: dict[str, float]  # per server process named in `measure`
    other_cpu: float  # everything else on the machine: processes outside the benchmark
    alarms: list[dict[str, Any]]


def measure(server: Server, pids: dict[str, int], args: argparse.Namespace, clients: Clients | None,
            alarms: int, profile: Path | None = None) -> Window:
    """Warm-up, then one window of `args.seconds` with `alarms` faults injected (gateway only) and the clients;
    with `profile`, the OPC UA child is profiled during the window into that file."""
    start_s = time.monotonic() + args.warmup
    end_s = start_s + args.seconds
    progress(f"{server.name}: window of {args.seconds:g} s after {args.warmup:g} s of warm-up")
    if clients is not None:
        clients.window(start_s, end_s)
    sleep_until(start_s)
    busy_start, cpu_start = busy_cpu_s(), {name: process_cpu_s(pid) for name, pid in pids.items()}
    if profile is not None:
        server.command("profile start")
    injected = _alarms_in_window(server, alarms, end_s)
    sleep_until(end_s)
    elapsed = time.monotonic() - start_s
    if profile is not None:
        progress(f"{server.name}: {server.command(f'profile stop {profile}')}")
    busy = (busy_cpu_s() - busy_start) / elapsed
    cpu = {name: (process_cpu_s(pid) - cpu_start[name]) / elapsed for name, pid in pids.items()}
    reply = server.command(f"window {start_s!r} {end_s!r}")
    results = clients.results() if clients is not None else []
    clients_cpu = sum(r.counts["cpu_s"] for r in results) / args.seconds
    return Window(reply, results, cpu, busy - sum(cpu.values()) - clients_cpu, injected)


def measure_gateway(server: Server, name: str, args: argparse.Namespace, clients: Clients | None) -> tuple[
        GatewayCase, list[ClientResult]]:
    """One window of the gateway (with `clients` subscribed, if any): its figures, the clients' results."""
    pids = {"gateway": server.info["pid"]}
    if server.info["opcua_pid"] is not None:
        pids["opcua"] = server.info["opcua_pid"]
    profile = None
    if args.profile_opcua and "opcua" in pids:
        profile = profile_path(args.profile_opcua, len(clients.subscribed) if clients else 0)
    window = measure(server, pids, args, clients, args.alarms, profile)
    case = GatewayCase(name, len(window.results), window.reply["figures"], window.reply["lag_ms"],
                       window.cpu["gateway"], window.cpu.get("opcua", math.nan), window.alarms, window.other_cpu)
    return case, window.results


def profile_path(path: Path, clients: int) -> Path:
    """Where the OPC UA child's profile of a window goes: `path` with the clients, beside it without."""
    return path.resolve() if clients else path.resolve().with_suffix(".no-client" + path.suffix)


def _gateway_command(args: argparse.Namespace, nodes: Path, opcua: bool, cpus: Pins) -> list[str]:
    command = [sys.executable, "-m", "bench.opcua_gateway", "--packs", str(args.packs), "--buses", str(args.buses),
               "--nodes-out", str(nodes), "--modbus-port", str(free_port()), "--prometheus-port", str(free_port()),
               "--update-interval", str(args.update_interval), "--alarms", str(args.alarms), *cpu_arguments(cpus[0])]
    if opcua:
        command += ["--opcua-port", str(free_port())]
        if cpus[1]:
            command += ["--opcua-cpus", ",".join(map(str, sorted(cpus[1])))]
        if args.what_if:
            command += ["--what-if", ",".join(args.what_if)]
        if args.profile_opcua:
            command += ["--opcua-profile", str(Path(tempfile.gettempdir()) / f"bench-opcua-{os.getpid()}.prof")]
    return command


def run_all(args: argparse.Namespace, pins: Pins, tmp: Path) -> Report:
    report = Report(args, pins)
    for case in (gateway_without_opcua, gateway_with_opcua, bare_asyncua):
        try:
            case(args, pins, tmp, report)
        except CaseFailed as failure:
            report.failures.append(str(failure))
    return report


def gateway_without_opcua(args: argparse.Namespace, pins: Pins, tmp: Path, report: Report) -> None:
    """Alone, then with the other CPU(s) kept busy by spinning processes: what the gateway loses to a neighbour
    that has nothing to do with it (the OPC UA child and the clients run there in the next case)."""
    server = Server("gateway (OPC UA off)", _gateway_command(args, tmp / "no-nodes.txt", False, pins), tmp)
    try:
        report.offered_frames_per_s = server.info["offered_frames_per_s"]
        case, _ = measure_gateway(server, "OPC UA off", args, None)
        report.gateway.append(case)
        if args.spin_control:
            with spinning(pins[1]):
                case, _ = measure_gateway(server, SPIN_CASE, args, None)
            report.gateway.append(case)
        report.totals["OPC UA off"] = server.command("drain")
    finally:
        server.stop()


@contextlib.contextmanager
def spinning(cpus: set[int] | None) -> Iterator[None]:
    """One busy-looping process pinned to each CPU of `cpus` (unpinned: one per CPU but one), until the block ends."""
    spinners = []
    try:
        for cpu in sorted(cpus) if cpus else [None] * max(1, (os.cpu_count() or 2) - 1):
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            spinners.append(spinner)
            if cpu is not None:
                os.sched_setaffinity(spinner.pid, {cpu})
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def gateway_with_opcua(args: argparse.Namespace, pins: Pins, tmp: Path, report: Report) -> None:
    """No client first, then the clients."""
    nodes = tmp / "gateway-nodes.txt"
    server = Server("gateway (OPC UA on)", _gateway_command(args, nodes, True, pins), tmp)
    clients: Clients | None = None
    try:
        report.variables = server.info["variables"]
        case, _ = measure_gateway(server, "OPC UA on, no client", args, None)
        report.gateway.append(case)
        started = time.monotonic()
        clients = Clients(args.clients, server.info["url"], nodes, args, pins[1], tmp)
        report.subscribe_s["gateway + OPC UA child"] = time.monotonic() - started
        case, results = measure_gateway(server, f"OPC UA on, {args.clients} clients", args, clients)
        report.gateway.append(case)
        report.notifications.append(NotificationCase(
            "gateway + OPC UA child", notification_figures(results, args.seconds), case.opcua_cpu, case.other_cpu,
            clients.subscribed))
        report.totals["OPC UA on"] = server.command("drain")
    finally:
        if clients is not None:
            clients.kill()
        server.stop()


def bare_asyncua(args: argparse.Namespace, pins: Pins, tmp: Path, report: Report) -> None:
    """As many variables as the gateway has, the same clients."""
    if not report.variables:
        raise CaseFailed("bare asyncua: not run, the gateway with OPC UA did not list its variables")
    bare_nodes = tmp / "bare-nodes.txt"
    command = [sys.executable, "-m", "bench.opcua_bare", "--port", str(free_port()), "--variables",
               str(report.variables), "--nodes-out", str(bare_nodes), "--interval", str(args.update_interval),
               *cpu_arguments(pins[1])]
    if args.what_if:
        command += ["--what-if", ",".join(args.what_if)]
    server = Server("bare asyncua", command, tmp)
    clients: Clients | None = None
    try:
        started = time.monotonic()
        clients = Clients(args.clients, server.info["url"], bare_nodes, args, pins[1], tmp)
        report.subscribe_s["bare asyncua"] = time.monotonic() - started
        window = measure(server, {"bare": server.info["pid"]}, args, clients, 0)
        report.bare = window.reply
        report.notifications.append(NotificationCase(
            "bare asyncua", notification_figures(window.results, args.seconds), window.cpu["bare"], window.other_cpu,
            clients.subscribed))
    finally:
        if clients is not None:
            clients.kill()
        server.stop()


def _pinning(args: argparse.Namespace) -> Pins:
    available = sorted(os.sched_getaffinity(0))
    if args.no_pin or len(available) < 2:
        return None, None
    return {available[0]}, set(available[1:])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.opcua", description=__doc__.split("\n")[0])
    parser.add_argument("--packs", type=int, default=64)
    parser.add_argument("--buses", type=int, default=4, help="virtual CAN buses (16 packs use ~52%% of 500 kbit/s)")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--interval-ms", type=float, default=1000.0, help="the clients' publishing interval")
    parser.add_argument("--update-interval", type=float, default=1.0, help="opcua.update_interval_s")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per window")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured time before each window")
    parser.add_argument("--alarms", type=int, default=6, help="faults injected per gateway window")
    parser.add_argument("--no-pin", action="store_true", help="let the OS place every process")
    parser.add_argument("--no-spin-control", dest="spin_control", action="store_false",
                        help="skip the gateway window with the other CPU(s) kept busy by spinning processes")
    parser.add_argument("--what-if", type=what_ifs, default=(),
                        help="experiments, comma-separated: " + ", ".join(sorted(WHAT_IFS)) + " (bench.opcua_child)")
    parser.add_argument("--profile-opcua", type=Path, default=None,
                        help="cProfile the OPC UA child during the window with the clients into this file (and "
                             "during the window without client beside it: NAME.no-client.prof); print their tops")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run, other defaults: " + ", ".join(f"--{k} {v}" for k, v in QUICK.items()))
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(**QUICK)  # options given explicitly still win
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pins = _pinning(args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-opcua-") as tmp:
        report = run_all(args, pins, Path(tmp))
    report.took_s = time.monotonic() - started
    print_report(report)
    return 0

if __name__ == "__main__":
    sys.exit(main())
