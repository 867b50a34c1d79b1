"""One server under test of the Modbus benchmark, in its own process, driven over stdin / stdout.

    python -m bench.modbus_server gateway --port P [--packs 32 --buses 2 --opcua-port P2 --prometheus-port P3]
    python -m bench.modbus_server static --port P [--registers 312]
    (both: [--cpus 0] [--profile FILE] [--gc-freeze])

`gateway` is the real gateway with the CAN load (bench.modbus_gateway); `static` is a plain pymodbus
ModbusTcpServer serving one static block of input registers to every unit id, with a probe loop that sleeps
like the engine (same period) so its timer jitter can be compared with the engine's tick jitter.

Prints one JSON line when serving, then answers each command line on stdin with one JSON line:
`window T0 T1` (server figures between monotonic times T0 and T1, and when its loop stalled), `drain` (stop
the CAN load and count every frame in: totals), `stop`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from bench.event_loop import run as run_event_loop
from bench.modbus_figures import Sample, server_figures, stalls
from bench.modbus_gc import GcPauses

PROBE_PERIOD_S = 0.1  # the engine's default tick


class Target(Protocol):
    samples: list[Sample]
    period_s: float
    offered_frames_per_s: float  # by the CAN load

    @property
    def load_late(self) -> list[tuple[float, float]]: ...

    async def drain(self) -> dict[str, float]: ...


@dataclass
class RunningStatic:
    samples: list[Sample]
    period_s: float
    offered_frames_per_s: float = 0.0

    @property
    def load_late(self) -> list[tuple[float, float]]:
        return []

    async def drain(self) -> dict[str, float]:
        return {}


async def _probe(samples: list[Sample], period_s: float) -> None:
    """Sleep from tick to tick on the same schedule as the engine and sample like it, doing nothing else."""
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while True:
        next_tick += period_s
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
        samples.append(Sample(time.monotonic(), 0.0, time.process_time(), 0.0, 0, 0, 0, 0))


@asynccontextmanager
async def running_static(port: int, registers: int) -> AsyncIterator[RunningStatic]:
    # pymodbus 3.11's device context adds 1 to the request address: a block starting at 1 serves address 0.
    # (SimDevice / SimData, which replace these classes in later versions, are only stubs in 3.11.)
    block = ModbusSequentialDataBlock(1, [i % 0x10000 for i in range(registers)])  # type: ignore[no-untyped-call]
    device = ModbusDeviceContext(ir=block, hr=block)
    server = ModbusTcpServer(ModbusServerContext(devices=device, single=True),  # type: ignore[no-untyped-call]
                             address=("127.0.0.1", port))
    if not await server.listen():
        raise RuntimeError(f"plain pymodbus server cannot listen on 127.0.0.1:{port}")
    samples: list[Sample] = []
    probe = asyncio.create_task(_probe(samples, PROBE_PERIOD_S))
    try:
        yield RunningStatic(samples, PROBE_PERIOD_S)
    finally:
        probe.cancel()
        await server.shutdown()  # type: ignore[no-untyped-call]


async def _stdin() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _reply(values: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(values) + "\n")
    sys.stdout.flush()


async def control(target: Target, gc_pauses: GcPauses, profiler: cProfile.Profile | None) -> None:
    reader = await _stdin()
    while line := (await reader.readline()).decode():
        command, *arguments = line.split()
        if command == "window":
            start_s, end_s = (float(a) for a in arguments)
            figures = server_figures(target.samples, start_s, end_s, target.period_s, gc_pauses.pauses,
                                     target.load_late)
            _reply({"figures": dataclasses.asdict(figures),
                    "stalls": stalls(target.samples, gc_pauses.pauses, start_s, end_s)})
        elif command == "drain":
            if profiler is not None:
                profiler.disable()
            _reply(await target.drain())
        elif command == "stop":
            return
        else:
            _reply({"error": f"unknown command {command!r}"})


async def serve(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-modbus-") as tmp:
        target: AbstractAsyncContextManager[Target]
        if args.kind == "gateway":
            from bench.modbus_gateway import running_gateway  # the plain server's process stays plain

            target = running_gateway(args.port, args.packs, args.buses, Path(tmp) / "state.sqlite",
                                     opcua_port=args.opcua_port, prometheus_port=args.prometheus_port)
        else:
            target = running_static(args.port, args.registers)
        async with target as running:
            info = {"ready": True, "pid": os.getpid(), "offered_frames_per_s": running.offered_frames_per_s}
            if args.gc_freeze:
                gc.collect()
                gc.freeze()  # what the startup built moves to the permanent generation: full collections skip it
            profiler = cProfile.Profile() if args.profile else None
            gc_pauses = GcPauses()
            gc_pauses.install()
            _reply(info)
            if profiler is not None:
                profiler.enable()
            try:
                await control(running, gc_pauses, profiler)
            finally:
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(args.profile)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_server", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("gateway", "static"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--packs", type=int, default=32)
    parser.add_argument("--buses", type=int, default=2)
    parser.add_argument("--registers", type=int, default=312, help="static: size of the input register block")
    parser.add_argument("--opcua-port", type=int, default=None, help="gateway: enable OPC UA on this port")
    parser.add_argument("--prometheus-port", type=int, default=None, help="gateway: enable Prometheus on this port")
    parser.add_argument("--cpus", type=lambda s: {int(c) for c in s.split(",")}, default=None,
                        help="pin this process (and the threads it starts) to these CPUs")
    parser.add_argument("--profile", default=None, help="write cProfile stats of the event-loop thread here")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once serving (what-if experiment)")
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_event_loop(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
