"""A raw Modbus TCP client for robustness tests: hand-built frames over a plain asyncio stream.

pymodbus' own client can neither send a malformed frame nor show what the server did with one
(an answer, a closed connection, or silence); this one sends bytes and reports exactly that.

Also a load generator (`hammer`), runnable in its own process so that the load costs the
server's event loop and not the test's:

    python -m tests.adapters.modbus_raw PORT CONNECTIONS DURATION_S UNIT_ID MAP_VERSION

prints one JSON `HammerReport` on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id, length (unit id + PDU), unit id
MBAP_SIZE = MBAP.size
READ_INPUT_REGISTERS = 0x04
EXCEPTION_BIT = 0x80


def adu(transaction_id: int, unit_id: int, pdu: bytes, *, protocol_id: int = 0, length: int | None = None) -> bytes:
    """One Modbus TCP frame; `length` overrides the MBAP length field (unit id + PDU) to lie about it."""
    declared = len(pdu) + 1 if length is None else length
    return MBAP.pack(transaction_id, protocol_id, declared, unit_id) + pdu


def pdu(function_code: int, *words: int, tail: bytes = b"") -> bytes:
    return bytes([function_code]) + b"".join(struct.pack(">H", word) for word in words) + tail


def read_input_registers(transaction_id: int, unit_id: int, address: int, count: int) -> bytes:
    return adu(transaction_id, unit_id, pdu(READ_INPUT_REGISTERS, address, count))


def exception_reply(transaction_id: int, unit_id: int, function_code: int, exception_code: int) -> bytes:
    """The exact exception response the Modbus TCP spec asks for (function code echoed with bit 7 set)."""
    return adu(transaction_id, unit_id, bytes([function_code | EXCEPTION_BIT, exception_code]))


def registers_reply(transaction_id: int, unit_id: int, registers: list[int],
                    function_code: int = READ_INPUT_REGISTERS) -> bytes:
    payload = bytes([function_code, 2 * len(registers)]) + struct.pack(f">{len(registers)}H", *registers)
    return adu(transaction_id, unit_id, payload)


def split_frames(data: bytes) -> list[bytes]:
    """Cut a stream of responses into whole frames (a trailing partial frame is an error)."""
    frames: list[bytes] = []
    while data:
        if len(data) < MBAP_SIZE:
            raise ValueError(f"{len(data)} trailing byte(s), less than an MBAP header: {data.hex(' ')}")
        _, _, length, _ = MBAP.unpack_from(data)
        size = MBAP_SIZE - 1 + length
        if length < 2 or len(data) < size:
            raise ValueError(f"broken frame: {data[:size].hex(' ')}")
        frames.append(data[:size])
        data = data[size:]
    return frames


@dataclass(frozen=True)
class Outcome:
    """What the server did after a request: the bytes it sent, and whether it closed the connection."""

    data: bytes
    closed: bool

    @property
    def silent(self) -> bool:
        return not self.data and not self.closed

    def __str__(self) -> str:
        fate = "closed" if self.closed else "open"
        return f"{self.data.hex(' ') or 'nothing'} received, connection {fate}"


class RawConnection:
    """One TCP connection that sends exactly the bytes it is given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = 2.0) -> bytes:
        """Exactly one MBAP-framed response (raises on timeout or a closed connection)."""
        async with asyncio.timeout(timeout):
            header = await self.reader.readexactly(MBAP_SIZE)
            _, _, length, _ = MBAP.unpack(header)
            return header + await self.reader.readexactly(length - 1)

    async def outcome(self, window: float, *, quiet: float | None = None) -> Outcome:
        """Everything the server sends within `window` seconds, or until it closes the connection, or
        (with `quiet`) until it has sent something and then nothing for `quiet` seconds."""
        received = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window
        try:
            while (left := deadline - loop.time()) > 0:
                wait = left if quiet is None or not received else min(left, quiet)
                try:
                    chunk = await asyncio.wait_for(self.reader.read(65536), timeout=wait)
                except TimeoutError:
                    break
                if not chunk:
                    return Outcome(received, closed=True)
                received += chunk
        except ConnectionError:
            return Outcome(received, closed=True)
        return Outcome(received, closed=False)

    async def is_open(self) -> bool:
        """Still connected: no EOF or reset is waiting (does not consume data the server sent)."""
        await asyncio.sleep(0)
        return not self.reader.at_eof() and self.reader.exception() is None and not self.writer.is_closing()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def raw_connection(port: int, *, receive_buffer: int | None = None) -> AsyncIterator[RawConnection]:
    """A connection to 127.0.0.1:`port`; `receive_buffer` shrinks SO_RCVBUF (a client that reads slowly)."""
    if receive_buffer is None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
    connection = RawConnection(reader, writer)
    try:
        yield connection
    finally:
        await connection.close()


@dataclass
class HammerReport:
    """What `hammer` saw: every connection's reads, checked against the site unit's first registers."""

    connections: int
    connected: int = 0
    reads: int = 0
    failures: list[str] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)  # distinct snapshot sequences seen, sorted
    slowest_connect_s: float = 0.0
    slowest_read_s: float = 0.0


async def hammer(port: int, connections: int, *, reads: int, duration_s: float, unit_id: int,
                 map_version: int) -> HammerReport:
    """Open `connections` connections at once, then on each read input registers 0-3 of `unit_id`
    back to back, `reads` times or until `duration_s` has passed, checking every answer."""
    report = HammerReport(connections)
    sequences: set[int] = set()
    start = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def one(index: int) -> None:
        began = time.perf_counter()
        try:
            async with raw_connection(port) as connection:
                report.connected += 1
                report.slowest_connect_s = max(report.slowest_connect_s, time.perf_counter() - began)
                await start.wait()
                deadline = loop.time() + duration_s
                for count in range(reads):
                    if loop.time() > deadline:
                        break
                    transaction_id = (index * 7 + count) % 0x10000
                    sent = time.perf_counter()
                    await connection.send(read_input_registers(transaction_id, unit_id, 0, 4))
                    answer = await connection.response(timeout=5.0)
                    report.slowest_read_s = max(report.slowest_read_s, time.perf_counter() - sent)
                    header, body = answer[:MBAP_SIZE], answer[MBAP_SIZE:]
                    tid, protocol, length, unit = MBAP.unpack(header)
                    if (tid, protocol, length, unit) != (transaction_id, 0, 11, unit_id) or body[:2] != b"\x04\x08":
                        raise AssertionError(f"unexpected answer {answer.hex(' ')}")
                    version, _, high, low = struct.unpack(">4H", body[2:])
                    if version != map_version:
                        raise AssertionError(f"map_version {version} != {map_version}")
                    sequences.add(high << 16 | low)
                    report.reads += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError, AssertionError) as error:
            report.failures.append(f"connection {index}: {type(error).__name__}: {error}")

    tasks = [asyncio.create_task(one(index)) for index in range(connections)]
    async with asyncio.timeout(30.0):
        while report.connected + len(report.failures) < connections:
            await asyncio.sleep(0.005)
        start.set()
        await asyncio.gather(*tasks)
    report.sequences = sorted(sequences)
    return report


def main(argv: list[str]) -> None:
    port, connections, duration_s, unit_id, map_version = argv
    report = asyncio.run(hammer(int(port), int(connections), reads=10**9, duration_s=float(duration_s),
                                unit_id=int(unit_id), map_version=int(map_version)))
    print(json.dumps(dataclasses.asdict(report)))


if __name__ == "__main__":
    main(sys.argv[1:])
