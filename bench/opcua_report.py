"""The Markdown report of the OPC UA benchmark: setup, notification latency, the gateway process, the targets."""

from __future__ import annotations

import argparse
import math
import os
import platform
import pstats
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import code_version, cpu_model, package_version
from bench.modbus_report import BITS_PER_FRAME
from bench.modbus_site import BITRATE
from bench.opcua_figures import NotificationFigures, percentiles_ms

LATENCY_MARGIN_MS = 100.0  # p99 <= publishing interval + this
TARGET_LAG_MS = 5.0


@dataclass(frozen=True)
class GatewayCase:
    name: str
    clients: int
    figures: dict[str, Any]  # bench.modbus_figures.ServerFigures of the window
    lag_ms: dict[str, float]  # event-loop lag: count, p50, p99, max
    gateway_cpu: float  # of one core, the gateway process (the CAN load thread included)
    opcua_cpu: float  # of one core, the OPC UA child (NaN: none)
    alarms: list[dict[str, Any]]  # bench.opcua_gateway.AlarmProbe.inject results
    other_cpu: float  # of one core, what processes outside the benchmark used meanwhile


@dataclass(frozen=True)
class NotificationCase:
    server: str
    figures: NotificationFigures
    server_cpu: float  # of one core: the OPC UA child, or the bare server process
    other_cpu: float
    subscribed: list[dict[str, Any]]  # per client: subscribed, failed, setup_s


@dataclass
class Report:
    args: argparse.Namespace
    pins: tuple[set[int] | None, set[int] | None]
    offered_frames_per_s: float = 0.0
    variables: int = 0
    gateway: list[GatewayCase] = field(default_factory=list)
    notifications: list[NotificationCase] = field(default_factory=list)
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)  # CAN totals after draining, per gateway run
    subscribe_s: dict[str, float] = field(default_factory=dict)
    bare: dict[str, Any] = field(default_factory=dict)  # the bare server's window
    failures: list[str] = field(default_factory=list)  # cases that ended early, and why
    took_s: float = 0.0








def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0%}"


def print_setup(report: Report) -> None:
    args = report.args
    gateway_cpus, other_cpus = report.pins
    per_bus = report.offered_frames_per_s / args.buses
    print(f"# OPC UA benchmark ({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(f"- machine: {os.cpu_count()} CPU(s) (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}; Python "
          f"{platform.python_version()}, asyncua {_version('asyncua')}, uvloop {_version('uvloop')} in every "
          "server and client")
    if gateway_cpus is None:
        print("- CPU placement: not pinned; the OS schedules every process on every CPU")
    else:
        print(f"- CPU placement: gateway process (event loop, python-can receive threads, the CAN load thread) pinned "
              f"to CPU {sorted(gateway_cpus)}; the OPC UA child, the bare asyncua server and the client processes "
              f"pinned to CPU(s) {sorted(other_cpus or ())}. CPU columns are shares of one core; 'other' is what "
              "processes outside the benchmark used meanwhile (anything above a few % disturbs the figures)")
    print(f"- site: {args.packs} packs x 32 cells x 8 temperature sensors on {args.buses} virtual CAN bus(es), "
          f"{report.offered_frames_per_s:,.0f} frames/s offered ({per_bus:,.0f} per bus, >= "
          f"{per_bus * BITS_PER_FRAME / BITRATE:.0%} of {BITRATE // 1000} kbit/s each); engine at 10 Hz; Modbus TCP "
          "and Prometheus on (no client); OPC UA in its child process (`opcua.separate_process = true`, "
          f"`opcua.update_interval_s = {args.update_interval:g}`), security None, anonymous")
    print(f"- clients: {args.clients} processes, each an asyncua Client with one subscription (publishing interval "
          f"{args.interval_ms:g} ms, no limit of notifications per publish) monitoring the Value of each of the "
          f"{report.variables:,} variables the OPC UA output writes (site, packs, cells, sensors, histograms, "
          "identity; the documented NodeIds), queue size 1, sampling interval 0; PublishResponses decoded by "
          "bench.opcua_wire (handles and SourceTimestamps only). Latency = wall time at receipt - SourceTimestamp")
    print(f"- bare asyncua: {report.variables:,} Double variables written once per {args.update_interval:g} s by "
          "`Server.write_attribute_value` from the server's event loop, nothing else in the process")
    if args.what_if:
        print(f"- what-if: `{','.join(args.what_if)}` (bench.opcua_child: in the OPC UA child, and those that change "
              "asyncua in the bare server too; not what the gateway does today)")
    print(f"- code: {code_version()}")
    print(f"- each window: {args.warmup:g} s warm-up, then {args.seconds:g} s measured; {args.alarms} fault(s) "
          "injected per gateway window\n")


def print_notifications(report: Report) -> None:
    interval = report.args.interval_ms
    print(f"## Notification latency (publishing interval {interval:g} ms, target p99 <= "
          f"{interval + LATENCY_MARGIN_MS:g} ms)\n")
    print("| server | clients x monitored items | notifications/s, all clients | per client | p50 ms | p99 ms | "
          "max ms | worst client p99 ms | server CPU | clients CPU | other CPU | subscribing took |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in report.notifications:
        f = case.figures
        per_client = f"{min(f.per_client_per_s):,.0f}-{max(f.per_client_per_s):,.0f}"
        print(f"| {case.server} | {f.clients} x {f.monitored_items:,} | {f.per_s:,.0f} | {per_client} | "
              f"{_ms(f.latency_ms['p50'])} | {_ms(f.latency_ms['p99'])} | {_ms(f.latency_ms['max'])} | "
              f"{_ms(f.worst_client_p99_ms)} | {_share(case.server_cpu)} | {_share(f.clients_cpu_share)} | "
              f"{_share(case.other_cpu)} | {report.subscribe_s.get(case.server, math.nan):.0f} s |")
    failed = sum(c["failed"] for case in report.notifications for c in case.subscribed)
    slow = sum(case.figures.slow_path for case in report.notifications)
    untimed = sum(case.figures.without_timestamp for case in report.notifications)
    print(f"\nMonitored items refused: {failed}; notifications without SourceTimestamp: {untimed}; decoded by "
          f"asyncua instead of the lean decoder: {slow}.")
    if report.bare:
        passes = report.bare["write_pass_ms"]
        print(f"Bare server: a write pass over all variables took p50 {_ms(passes['p50'])} ms, max "
              f"{_ms(passes['max'])} ms ({passes['count']} passes); its loop lag p99 "
              f"{_ms(report.bare['lag_ms']['p99'])} ms.")


def _alarm_cells(alarms: list[dict[str, Any]]) -> str:
    """Two cells: latency min / p50 / max (n); seen by the next tick, that tick's start -> snapshot max."""
    raised = [a for a in alarms if a["raised"]]
    missed = len(alarms) - len(raised)
    if not raised:
        return (f"- ({missed} not raised)" if missed else "-") + " | -"
    latencies = [a["latency_s"] for a in raised]
    figures = percentiles_ms(latencies)
    text = f"{min(latencies) * 1e3:.0f} / {figures['p50']:.0f} / {figures['max']:.0f} ({len(raised)})"
    text += f", {missed} not raised" if missed else ""
    next_tick = sum(1 for a in raised if a["later_ticks"] == 0)
    return f"{text} | {next_tick}/{len(raised)}, {max(a['tick_s'] for a in raised) * 1e3:.0f} ms"


def print_gateway(report: Report) -> None:
    print("\n## The gateway process (CAN ingest, engine, alarms)\n")
    print("| case | loop lag p50 / p99 / max ms | tick duration p50 / p99 ms | tick jitter p99 ms | frames sent | "
          "received | dropped | rejected | alarm latency min / p50 / max ms (n) | alarms in the next tick, its "
          "start -> snapshot max | gateway CPU (CAN load thread) | OPC UA child CPU | other CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in report.gateway:
        f, lag = case.figures, case.lag_ms
        print(f"| {case.name} | {_ms(lag['p50'])} / {_ms(lag['p99'])} / {_ms(lag['max'])} | "
              f"{_ms(f['tick_p50_ms'])} / {_ms(f['tick_p99_ms'])} | {_ms(f['jitter_p99_ms'])} | "
              f"{f['frames_sent']:,} | {f['frames_received']:,} | {f['frames_dropped']} | {f['frames_rejected']} | "
              f"{_alarm_cells(case.alarms)} | {_share(case.gateway_cpu)} ({_share(f['load_cpu_share'])}) | "
              f"{_share(case.opcua_cpu)} | {_share(case.other_cpu)} |")
    spinning = any("spinning" in case.name for case in report.gateway)
    print("\n" + ("'other CPU' of the spinning case includes the spinning process(es). " if spinning else "") +
          "Loop lag: how late a 10 ms timer of the gateway's event loop fired (uvloop timers have 1 ms resolution). "
          "Alarm latency: from the first CAN frame carrying a pack fault flag to the first snapshot with the "
          "`pack_reported_fault` alarm (delay 0 s). It includes waiting for the next engine tick (0-100 ms; the "
          "faults go to packs spread over the CAN load's period, so over the tick's phase): 'in the next tick' counts "
          "the alarms the first tick after the frame already showed, and the time from that tick's start to its "
          "snapshot is the gateway's own processing. Frames are counted between the first and last tick of each "
          "window (a few dozen in flight at the edges).")
    for name, totals in report.totals.items():
        lost = totals["frames_sent"] - totals["frames_received"]
        print(f"\nCAN totals of the gateway run with {name}, after draining: {totals['frames_sent']:,} sent, "
              f"{totals['frames_received']:,} received ({lost} not received), {totals['frames_dropped']} dropped "
              f"(queue full), {totals['frames_rejected']} rejected")


def verdict(report: Report) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, bool, str]] = []
    limit = report.args.interval_ms + LATENCY_MARGIN_MS
    for case in report.notifications:
        if case.server.startswith("gateway"):
            p99 = case.figures.latency_ms["p99"]
            checks.append((f"notification latency p99 <= {limit:g} ms ({case.figures.clients} clients x "
                           f"{case.figures.monitored_items:,} items)", p99 <= limit, f"{p99:,.0f} ms"))
    loaded = [c for c in report.gateway if c.clients]
    if loaded:
        lag = max(c.lag_ms["p99"] for c in loaded)
        checks.append((f"event-loop lag p99 <= {TARGET_LAG_MS:g} ms with the clients subscribed",
                       lag <= TARGET_LAG_MS, f"{lag:.2f} ms"))
    lost = {name: t["frames_sent"] - t["frames_received"] for name, t in report.totals.items()}
    rejected = {name: t["frames_rejected"] for name, t in report.totals.items()}
    checks.append(("no CAN frame dropped, lost or rejected", not any(lost.values()) and not any(rejected.values()),
                   ", ".join(f"{name}: {lost[name]} not received, {rejected[name]} rejected" for name in lost)))
    base = next((c for c in report.gateway if c.name == "OPC UA off"), None)
    if base is not None and loaded:
        def worst(case: GatewayCase) -> float:
            return max((a["latency_s"] for a in case.alarms if a["raised"]), default=math.nan) * 1e3

        allowed = 1e3 / 10 + base.figures["tick_p99_ms"] + TARGET_LAG_MS  # the next tick, its duration, the lag
        values = [worst(c) for c in loaded]
        raised = all(a["raised"] for c in loaded for a in c.alarms)
        checks.append((f"every alarm raised within one engine period + tick p99 without OPC UA + {TARGET_LAG_MS:g} "
                       f"ms (= {allowed:.0f} ms)", raised and all(v <= allowed for v in values),
                       f"worst {max(values):.0f} ms; without OPC UA {worst(base):.0f} ms"))
    return checks


def print_verdict(report: Report) -> None:
    print("\n## Targets\n")
    for failure in report.failures:
        print(f"- MISSED: every case ran to its end ({failure})")
    for text, met, value in verdict(report):
        print(f"- {'met' if met else 'MISSED'}: {text} (measured {value})")
    print(f"\n(run took {report.took_s:.0f} s)")


def print_profile(path: Path, window: str) -> None:
    print(f"\n## cProfile of the OPC UA child, window {window} ({path}; profiling slows it, so the figures above "
          "are not representative in this run)\n")
    print("```")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)
    print("```")


def print_report(report: Report) -> None:
    print_setup(report)
    print_notifications(report)
    print_gateway(report)
    print_verdict(report)
    if report.args.profile_opcua:
        path = Path(report.args.profile_opcua).resolve()
        for window, profile in (("with the clients", path), ("without client", path.with_suffix(
                ".no-client" + path.suffix))):
            if profile.exists():
                print_profile(profile, window)


def _version(package: str) -> str:
    return package_version(package) or "not installed"
