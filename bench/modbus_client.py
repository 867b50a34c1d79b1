"""A lean Modbus TCP load client: connections that each keep one read (function code 04) outstanding.

    python -m bench.modbus_client --port 5020 --connections 10 --start-at T --warmup 2 --seconds 10 --out FILE

Raw asyncio protocol (MBAP header + PDU packed with struct, no pymodbus), so that one client core drives
more requests than the server under test can answer. Every connection sends its first request at monotonic
time `--start-at` (common to all client processes of a case) and the next one as soon as the answer is
complete. Only answers completed inside the window [start + warmup, start + warmup + seconds) count.
Prints one JSON line (answers, errors, the window, the CPU seconds this process used in it) and writes every
counted answer to --out as a pair of native int64: when its request was sent (monotonic ns), its latency (ns).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time
from array import array
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

READ_INPUT_REGISTERS = 4
REQUEST = struct.Struct(">HHHBBHH")  # transaction id, protocol id 0, length 6, unit id, function, address, count
MBAP_PREFIX = 6  # transaction id, protocol id, length (which counts the bytes after it)


@dataclass
class Tally:
    """What all connections of this process saw inside the window."""

    window_start_ns: int
    window_end_ns: int
    answers: int = 0
    errors: int = 0
    lost_connections: int = 0


class LoadConnection(asyncio.Protocol):
    def __init__(self, unit_id: int, address: int, count: int, tally: Tally, timings: array[int],
                 finished: asyncio.Future[None]) -> None:
        self._unit_id = unit_id
        self._address = address
        self._count = count
        self._answer_size = MBAP_PREFIX + 3 + 2 * count  # unit id, function, byte count, registers
        self._tally = tally
        self._timings = timings
        self._finished = finished
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._transaction = 0
        self._sent_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def begin(self) -> None:
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._transaction = (self._transaction + 1) & 0xFFFF
        request = REQUEST.pack(self._transaction, 0, 6, self._unit_id, READ_INPUT_REGISTERS, self._address,
                               self._count)
        self._sent_ns = time.monotonic_ns()
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        while len(buffer) >= MBAP_PREFIX:
            size = MBAP_PREFIX + int.from_bytes(buffer[4:6], "big")
            if len(buffer) < size:
                break
            self._answered(buffer[:size])
            buffer = buffer[size:]
        self._buffer = buffer

    def _answered(self, frame: bytes) -> None:
        now = time.monotonic_ns()
        tally = self._tally
        ok = (len(frame) == self._answer_size and int.from_bytes(frame[0:2], "big") == self._transaction
              and frame[7] == READ_INPUT_REGISTERS)
        if tally.window_start_ns <= now < tally.window_end_ns:
            if ok:
                tally.answers += 1
                self._timings.extend((self._sent_ns, now - self._sent_ns))
            else:
                tally.errors += 1
        if now < tally.window_end_ns:
            self._send()
        else:
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._finished.done():
            self._tally.lost_connections += 1
        self._close()

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if not self._finished.done():
            self._finished.set_result(None)


async def run_load(host: str, port: int, unit_ids: list[int], address: int, count: int, start_at: float,
                   warmup_s: float, seconds: float) -> tuple[Tally, array[int], float]:
    """One connection per unit id in `unit_ids`; returns the tally, the (sent, latency) pairs and the CPU seconds
    used inside the window."""
    loop = asyncio.get_running_loop()
    window_start = start_at + warmup_s
    tally = Tally(round(window_start * 1e9), round((window_start + seconds) * 1e9))
    timings: array[int] = array("q")
    connections: list[LoadConnection] = []
    finished: list[asyncio.Future[None]] = []
    for unit_id in unit_ids:
        done: asyncio.Future[None] = loop.create_future()
        connection = LoadConnection(unit_id, address, count, tally, timings, done)
        await loop.create_connection(_returning(connection), host, port)
        connections.append(connection)
        finished.append(done)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    for connection in connections:
        connection.begin()
    await asyncio.sleep(max(0.0, window_start - time.monotonic()))
    cpu_start = time.process_time()
    await asyncio.sleep(max(0.0, window_start + seconds - time.monotonic()))
    cpu_s = time.process_time() - cpu_start
    await asyncio.wait_for(asyncio.gather(*finished), timeout=max(5.0, 2 * seconds))
    return tally, timings, cpu_s


def _returning(connection: LoadConnection) -> Callable[[], LoadConnection]:
    return lambda: connection


def _run(coroutine: Coroutine[Any, Any, tuple[Tally, array[int], float]]) -> tuple[Tally, array[int], float]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    result: tuple[Tally, array[int], float] = uvloop.run(coroutine)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_client", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--units", type=lambda s: [int(u) for u in s.split(",")], required=True,
                        help="one connection per unit id, comma separated (repeat an id for more connections)")
    parser.add_argument("--address", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--start-at", type=float, required=True, help="monotonic time of the first requests")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cpus", type=lambda s: {int(c) for c in s.split(",")}, default=None,
                        help="pin this process to these CPUs")
    parser.add_argument("--out", required=True, help="answers file: (sent, latency) int64 ns pairs")
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    tally, timings, cpu_s = _run(run_load(args.host, args.port, args.units, args.address, args.count,
                                            args.start_at, args.warmup, args.seconds))
    with open(args.out, "wb") as out:
        timings.tofile(out)
    json.dump({"answers": tally.answers, "errors": tally.errors, "lost_connections": tally.lost_connections,
               "window_s": args.seconds, "cpu_s": cpu_s}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
