"""The real gateway of the OPC UA benchmark, in its own process, fed the CAN load and commanded over stdin / stdout.

    python -m bench.opcua_gateway --packs 64 --buses 4 --nodes-out FILE [--opcua-port P] [--update-interval 1.0]
                                  [--cpus 0] [--opcua-cpus 1] [--opcua-profile FILE] [--what-if NAME,...]

`build_gateway` + `run_gateway` on the bench site (bench.modbus_site: packs of 32 cells and 8 sensors, Modbus TCP
and Prometheus on, nobody reading them) with OPC UA served by its child process (`opcua.separate_process = true`,
update interval `--update-interval`, security None with anonymous sessions) when `--opcua-port` is given, and off
otherwise. The CAN load (bench.modbus_canload) plays every pack at its normal rates. Measured here: every engine
tick (start, duration, CPU, CAN counters: bench.modbus_figures.Sample), the event loop's lag (a 10 ms timer), the
CPU time of this process and of the OPC UA child, and on command the alarm latency (bench.opcua_faults).

Prints one JSON line when every pack is online and the OPC UA child has had time to add every node listed in
`--nodes-out` (NodeIds of every variable the OPC UA output writes: the site's, each pack's, each cell's and
sensor's, from the node map and the latest snapshot). Then answers each line on stdin with one JSON line:
`window T0 T1` (figures between those monotonic times), `alarm` (a fault on the next pack: wait for the alarm,
then for its clearing), `profile start` / `profile stop FILE` (with --opcua-profile: cProfile the OPC UA child
meanwhile, bench.opcua_child), `drain` (stop the CAN load, count every frame in), `stop`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import opcua_child
from bench.event_loop import run as run_event_loop
from bench.modbus_canload import frames_per_second, record
from bench.modbus_figures import Sample, server_figures
from bench.modbus_gateway import can_totals, until_ready
from bench.modbus_gc import GcPauses
from bench.modbus_site import simulated_packs, site_settings
from bench.opcua_faults import FaultLoad, faulty
from bench.opcua_figures import percentiles_ms
from bench.opcua_probe import LoopLag, commands, reply
from gateway.adapters.opcua_process import OpcUaProcessOutput
from gateway.app import build_gateway, run_gateway
from gateway.codec.node_map import load_node_map
from gateway.codec.node_model import pack_path, site_path
from gateway.codec.node_values import pack_values, site_values
from gateway.codec.protocol import load_protocol
from gateway.domain.alarms import AlarmCode
from gateway.domain.snapshot import GatewaySnapshot
from gateway.runtime.engine import Engine
from gateway.runtime.hub import SnapshotHub
from gateway.settings import GatewaySettings, OpcUaSettings

ONLINE_TIMEOUT_S = 60.0
ALARM_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 5.0
NODE_SETTLE_UPDATES = 2  # update intervals after every pack is online: the child has added every element


def bench_settings(args: argparse.Namespace, store: Path) -> GatewaySettings:
    base = site_settings(args.packs, args.buses, args.modbus_port, store, tag=f"opcua-{os.getpid()}",
                         opcua_port=args.opcua_port, prometheus_port=args.prometheus_port)
    opcua: dict[str, Any] = {"enabled": args.opcua_port is not None, "port": args.opcua_port or 4840,
                             "update_interval_s": args.update_interval, "separate_process": True}
    if "security" in OpcUaSettings.model_fields:  # the issue-6 security settings: None endpoint, anonymous
        wanted = {"none_endpoint": True, "signed_endpoints": False, "anonymous": True,
                  "certificate": store.parent / "pki" / "cert.der", "private_key": store.parent / "pki" / "key.pem",
                  "trusted_clients_dir": store.parent / "pki" / "trusted"}
        security_type = OpcUaSettings.model_fields["security"].annotation
        known = getattr(security_type, "model_fields", {})
        opcua["security"] = {key: value for key, value in wanted.items() if key in known}
    return base.model_copy(update={"opcua": OpcUaSettings.model_validate(opcua)})


def variable_node_ids(settings: GatewaySettings, snapshot: GatewaySnapshot, namespace: int) -> list[str]:
    """Every variable the OPC UA output writes for this snapshot: the documented NodeId scheme."""
    node_map = load_node_map(settings.mappings_dir, settings.opcua.map)
    paths = [f"{site_path()}/{key}" for key in site_values(node_map, snapshot.site)]
    for pack in snapshot.packs:
        paths += [f"{pack_path(pack.pack_id)}/{key}" for key in pack_values(node_map, pack)]
    return [f"ns={namespace};s={path}" for path in paths]


class AlarmProbe:
    """Injects a pack fault through the CAN load and waits for the alarm in the snapshots (checked every tick).

    The k-th of n faults goes to pack k * packs / n: the CAN load sends each pack at its own phase of the 100 ms
    period, so the faults arrive at phases spread over the engine's period, and the wait for the next tick with them.
    """

    def __init__(self, settings: GatewaySettings, load: FaultLoad, recorded: list[Any], hub: SnapshotHub,
                 count: int) -> None:
        self._settings = settings
        self._load = load
        self._recorded = recorded
        self._hub = hub
        self._count = max(count, 1)
        self._next = 0
        self._watch: tuple[str, bool, asyncio.Event] | None = None  # pack id, alarm wanted present?, reached
        self._tick_starts: list[float] = []  # of the ticks while watching
        self.seen_at = 0.0  # when the snapshot that showed it was published
        self.seen_tick = 0.0  # when the tick that built it started

    def after_tick(self, start: float, done: float) -> None:
        if self._watch is None or self._hub.latest is None:
            return
        self._tick_starts.append(start)
        pack_id, present, reached = self._watch
        alarmed = AlarmCode.PACK_REPORTED_FAULT in self._hub.latest.pack(pack_id).alarms
        if alarmed == present and not reached.is_set():
            self.seen_at, self.seen_tick = done, start
            reached.set()

    async def _until(self, pack_id: str, present: bool) -> bool:
        reached = asyncio.Event()
        self._tick_starts = []
        self._watch = (pack_id, present, reached)
        try:
            async with asyncio.timeout(ALARM_TIMEOUT_S):
                await reached.wait()
        except TimeoutError:
            return False
        finally:
            self._watch = None
        return True

    async def inject(self) -> dict[str, Any]:
        packs = len(self._recorded)
        index = (self._next % self._count) * packs // self._count + self._next // self._count % packs
        index %= packs
        self._next += 1
        pack = self._settings.packs[index]
        original = self._recorded[index]
        protocol = load_protocol(self._settings.mappings_dir, pack.protocol)
        self._load.play(index, faulty(original, protocol))
        raised = await self._until(pack.id, True)
        sent = self._load.first_sent
        result: dict[str, Any] = {"pack": pack.id, "raised": raised and sent is not None}
        if raised and sent is not None:
            after = [start for start in self._tick_starts if start >= sent]
            result |= {"latency_s": self.seen_at - sent,  # frame on the bus -> snapshot with the alarm
                       "next_tick_s": after[0] - sent if after else float("nan"),  # waiting for the next tick
                       "later_ticks": sum(1 for start in after if start < self.seen_tick),  # 0: the next one saw it
                       "tick_s": self.seen_at - self.seen_tick}  # that tick's start -> its snapshot published
        self._load.play(index, original)
        result["cleared"] = await self._until(pack.id, False)
        return result


def _sample_ticks(engine: Engine, hub: SnapshotHub, load: FaultLoad, samples: list[Sample],
                  alarms: AlarmProbe) -> None:
    tick = engine.tick

    async def sampled(now: float, dt_s: float) -> None:
        await tick(now, dt_s)
        done = time.monotonic()
        totals = can_totals(hub)
        samples.append(Sample(now, done - now, time.process_time(), load.cpu_s, load.sent, totals.received,
                              totals.dropped, totals.rejected))
        alarms.after_tick(now, done)

    engine.tick = sampled  # type: ignore[method-assign]  # the bench observes; the engine is not changed


def _pin_process(pid: int, cpus: set[int]) -> None:
    """Every thread of process `pid` (sched_setaffinity on a pid moves only its main thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


async def _online(hub: SnapshotHub, packs: int) -> GatewaySnapshot:
    async with asyncio.timeout(ONLINE_TIMEOUT_S):
        sequence = -1
        while True:
            snapshot = await hub.wait_newer(sequence)
            sequence = snapshot.sequence
            if snapshot.site.packs_online == packs:
                return snapshot


async def _drain(hub: SnapshotHub, load: FaultLoad, period_s: float) -> dict[str, Any]:
    load.stop()
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    totals = can_totals(hub)
    while totals.received + totals.dropped < load.sent and time.monotonic() < deadline:
        await asyncio.sleep(period_s)
        totals = can_totals(hub)
    return {"frames_sent": load.sent, "frames_received": totals.received, "frames_dropped": totals.dropped,
            "frames_rejected": totals.rejected}


async def serve(args: argparse.Namespace, tmp: Path) -> None:
    settings = bench_settings(args, tmp / "state.sqlite")
    recorded = record(settings, simulated_packs(settings))
    gateway = build_gateway(settings)
    period_s = 1.0 / settings.engine.tick_hz
    load = FaultLoad(recorded, period_s)
    samples: list[Sample] = []
    alarms = AlarmProbe(settings, load, recorded, gateway.hub, args.alarms)
    _sample_ticks(next(s for s in gateway.services if isinstance(s, Engine)), gateway.hub, load, samples, alarms)
    opcua = next((s for s in gateway.services if isinstance(s, OpcUaProcessOutput)), None)
    stop = asyncio.Event()
    running = asyncio.create_task(run_gateway(gateway, stop))
    lag, gc_pauses = LoopLag(), GcPauses()
    probes = [asyncio.create_task(lag.run())]
    try:
        await until_ready(gateway, running)
        if opcua is not None and opcua.pid is not None and args.opcua_cpus:
            _pin_process(opcua.pid, args.opcua_cpus)
        load.start()
        snapshot = await _online(gateway.hub, args.packs)
        node_ids: list[str] = []
        if opcua is not None:
            node_ids = variable_node_ids(settings, snapshot, opcua.namespace_index or 2)
            await asyncio.sleep(NODE_SETTLE_UPDATES * args.update_interval + 1.0)
        Path(args.nodes_out).write_text("".join(f"{n}\n" for n in node_ids))
        gc_pauses.install()
        reply({"ready": True, "pid": os.getpid(), "opcua_pid": opcua.pid if opcua else None,
               "url": opcua.endpoint if opcua else None, "variables": len(node_ids),
               "offered_frames_per_s": frames_per_second(recorded)})
        await _control(samples, period_s, lag, gc_pauses, alarms, gateway.hub, load, opcua.pid if opcua else None,
                       Path(args.opcua_profile).resolve() if args.opcua_profile else None)
    finally:
        load.stop()
        stop.set()
        for probe in probes:
            probe.cancel()
        await running


async def _profile(pid: int | None, profile: Path | None, arguments: Sequence[str]) -> dict[str, Any]:
    if pid is None or profile is None:
        return {"error": "the OPC UA child is not profiled (--opcua-profile)"}
    if arguments[0] == "start":
        opcua_child.start_profile(pid)
        return {"profiling": True}
    written = await asyncio.to_thread(opcua_child.stop_profile, pid, profile)
    if written:
        os.replace(profile, arguments[1])
    return {"profiling": False, "written": written}


async def _control(samples: list[Sample], period_s: float, lag: LoopLag, gc_pauses: GcPauses, alarms: AlarmProbe,
                   hub: SnapshotHub, load: FaultLoad, opcua_pid: int | None, profile: Path | None) -> None:
    async for command, arguments in commands():
        if command == "window":
            start_s, end_s = (float(a) for a in arguments)
            figures = server_figures(samples, start_s, end_s, period_s, gc_pauses.pauses, load.lateness)
            reply({"figures": dataclasses.asdict(figures), "lag_ms": percentiles_ms(lag.window(start_s, end_s))})
        elif command == "alarm":
            reply(await alarms.inject())
        elif command == "profile":  # profile start | profile stop FILE (the child's profile is moved there)
            reply(await _profile(opcua_pid, profile, arguments))
        elif command == "drain":
            _QUIET_EVENTS.add("communication_loss")  # the packs fall silent with the CAN load
            reply(await _drain(hub, load, period_s))
        else:
            reply({"error": f"unknown command {command!r}"})


_QUIET_EVENTS = {"pack_reported_fault"}


def _not_injected(record: logging.LogRecord) -> bool:
    """The safety events the benchmark causes (the injected faults, the silence after the load) are not logged."""
    message = record.getMessage()
    return not any(code in message for code in _QUIET_EVENTS)



def _cpus(text: str) -> set[int]:
    return {int(c) for c in text.split(",")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.opcua_gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--packs", type=int, default=64)
    parser.add_argument("--buses", type=int, default=4)
    parser.add_argument("--nodes-out", required=True)
    parser.add_argument("--opcua-port", type=int, default=None, help="serve OPC UA on this port (else: off)")
    parser.add_argument("--modbus-port", type=int, required=True)
    parser.add_argument("--prometheus-port", type=int, required=True)
    parser.add_argument("--alarms", type=int, default=6, help="faults per window: spread over the packs")
    parser.add_argument("--update-interval", type=float, default=1.0, help="opcua.update_interval_s")
    parser.add_argument("--cpus", type=_cpus, default=None, help="pin this process to these CPUs")
    parser.add_argument("--opcua-cpus", type=_cpus, default=None, help="pin the OPC UA child to these CPUs")
    parser.add_argument("--opcua-profile", default=None, help="cProfile the OPC UA child into this file")
    parser.add_argument("--what-if", type=opcua_child.what_ifs, default=(),
                        help="comma-separated bench.opcua_child what-ifs for the OPC UA child (experiments)")
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("gateway.runtime.engine").addFilter(_not_injected)
    opcua_child.instrument(args.opcua_profile, args.what_if)
    with tempfile.TemporaryDirectory(prefix="bench-opcua-") as tmp:
        run_event_loop(serve(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
