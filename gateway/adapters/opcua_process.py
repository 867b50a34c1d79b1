"""The OPC UA output in a process of its own, so that serving OPC UA never delays the engine.

asyncua spends hundreds of milliseconds of CPU per pass over a 32-pack x 32-cell address space
(bench.modbus --all-outputs: 96 % of a core with no client, 100 ms engine stalls). In a child
process it has its own interpreter, GIL and event loop: a worker thread of the gateway only
pickles the latest snapshot (~0.5 ms for 32 packs) once per update interval and writes it to a pipe,
one at a time; a child that falls behind simply receives fewer snapshots.

The child runs the unchanged `OpcUaOutput` behind a hub and an event feed of its own. The pipe carries

    gateway -> child   ("update", snapshot, the engine's events since the previous update)
                       ("reply", request id, outcome)        the engine's answer to a command
    child -> gateway   ("ready", namespace index) or ("failed", message), once
                       ("command", request id, command)      from a method call (acknowledge, reset, set SoC, ...)
                       ("event", event)                      for the event log (confirm, a refused method call)

Each direction has a pipe of its own, read and written blocking on worker threads (a pipe registered with the
event loop becomes non-blocking, and a blocking send into it from a thread then fails as soon as the reader falls
behind). When the gateway stops or dies (even by kill -9), its end of the down pipe closes: the child sees
end-of-file and exits, which closes the up pipe and ends the gateway's reading thread. The child ignores SIGINT
and SIGTERM: its lifetime is the pipe's.
"""

from __future__ import annotations

import asyncio
import contextlib
import copyreg
import itertools
import logging
import multiprocessing
import signal
import time
import types
from collections.abc import Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.opcua_link import EngineLink, NoLink, PortLink
from gateway.adapters.opcua_server import OpcUaOutput, endpoint_url
from gateway.codec.node_map import load_node_map
from gateway.domain.events import BmsEvent
from gateway.errors import AdapterError
from gateway.log_setup import LogFormat, configure_logging, current_logging
from gateway.runtime.command_port import CommandPort
from gateway.runtime.condition_catalogue import ConditionSpec
from gateway.runtime.event_feed import EventFeed
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.operator_commands import OperatorCommand
from gateway.settings import OpcUaSettings

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # the child imports asyncua and builds the address space
STOP_TIMEOUT_S = 5.0
TRAFFIC_INTERVAL_S = 1.0  # how often the child sends its client counters (the metrics read the latest)


def _mapping_proxy(items: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(items)


# Snapshots keep their mappings read-only (MappingProxyType), which pickle cannot take as it is.
copyreg.pickle(types.MappingProxyType, lambda proxy: (_mapping_proxy, (dict(proxy),)))


class OpcUaProcessOutput:
    """Service: the OPC UA output served by a child process, fed every snapshot it can take."""

    name = "opcua"

    def __init__(self, settings: OpcUaSettings, hub: SnapshotHub, mappings_dir: Path, pack_ids: Sequence[str],
                 site_name: str, *, conditions: Sequence[ConditionSpec] = (), port: CommandPort | None = None,
                 tick_period_s: float = 0.0) -> None:
        """The node map `settings.map` is loaded from `mappings_dir` again in the child (its sources are
        closures, which do not pickle): load it here first to report a bad map before anything starts.
        `port`: the engine's, for the events that move the alarm conditions and the methods' commands;
        `tick_period_s`: the engine's, to send fresh snapshots (see `_send_updates`)."""
        self.ready = asyncio.Event()
        self.endpoint = endpoint_url(settings.host, settings.port)
        self.namespace_index: int | None = None
        self.pid: int | None = None  # the child's, while it runs
        self._hub = hub
        self._feed = port.follow_events() if port is not None else EventFeed()
        self._link: EngineLink = PortLink(port) if port is not None else NoLink()
        self._update_interval_s = settings.update_interval_s
        self._tick_period_s = tick_period_s
        self._arguments = (settings, mappings_dir, tuple(pack_ids), site_name, tuple(conditions))
        self._sending = asyncio.Lock()
        self._traffic = ClientTraffic()

    def traffic(self) -> ClientTraffic:
        """The child's latest count of its clients (sent every TRAFFIC_INTERVAL_S), for the metrics."""
        return self._traffic

    async def run(self) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of this process's threads, loop or sockets
        down_read, down = context.Pipe(duplex=False)
        up, up_write = context.Pipe(duplex=False)
        child = context.Process(target=serve_in_child, args=(down_read, up_write, *self._arguments,
                                                             *current_logging()),
                                name="bms-gateway-opcua", daemon=True)
        child.start()
        self.pid = child.pid
        down_read.close()
        up_write.close()
        try:
            self.namespace_index = await self._started(up)
            log.info("OPC UA output runs in process %d", child.pid)
            self.ready.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._send_updates(down, child))
                group.create_task(self._answer(up, down, child, group))
        finally:
            self.ready.clear()
            down.close()
            await asyncio.to_thread(_stop, child)
            up.close()
            self.pid = None

    async def _send_updates(self, connection: Connection, child: multiprocessing.process.BaseProcess) -> None:
        """Send the latest snapshot, with the events up to it, at most once per update interval (the child writes
        each as it arrives). After the wait, a snapshot older than half an engine tick is skipped for the next one:
        a value reaches the clients at most half a tick older than the engine's, not up to a whole tick."""
        loop = asyncio.get_running_loop()
        sequence = -1
        while True:
            snapshot = await self._hub.wait_newer(sequence)
            sent = loop.time()
            sequence = snapshot.sequence
            await self._send(connection, child, ("update", snapshot, self._feed.take()))
            await asyncio.sleep(max(0.0, self._update_interval_s - (loop.time() - sent)))
            waiting = self._hub.latest
            if waiting is not None and time.monotonic() - self._hub.published_at > self._tick_period_s / 2:
                sequence = max(sequence, waiting.sequence)

    async def _send(self, connection: Connection, child: multiprocessing.process.BaseProcess, message: Any) -> None:
        async with self._sending:
            try:
                await asyncio.to_thread(connection.send, message)
            except OSError as error:
                raise _exited(child, error) from error

    async def _answer(self, up: Connection, down: Connection, child: multiprocessing.process.BaseProcess,
                      group: asyncio.TaskGroup) -> None:
        """The child's commands (each answered when the engine has decided) and events."""
        while True:
            try:
                message = await asyncio.to_thread(up.recv)
            except (EOFError, OSError) as error:
                raise _exited(child, error) from error
            if message[0] == "command":
                group.create_task(self._execute(down, child, message[1], message[2]))
            elif message[0] == "event":
                self._link.record(message[1])
            elif message[0] == "traffic":
                self._traffic = message[1]

    async def _execute(self, connection: Connection, child: multiprocessing.process.BaseProcess, request: int,
                       command: OperatorCommand) -> None:
        outcome = await self._link.execute(command)
        await self._send(connection, child, ("reply", request, outcome))

    async def _started(self, connection: Connection) -> int:
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                kind, detail = await asyncio.to_thread(connection.recv)
        except (EOFError, OSError) as error:
            raise AdapterError("the OPC UA process exited before serving (see its log above)") from error
        except TimeoutError as error:
            raise AdapterError(f"the OPC UA process did not start serving within {START_TIMEOUT_S:g} s") from error
        if kind != "ready":
            raise AdapterError(str(detail))
        return int(detail)


def _exited(child: multiprocessing.process.BaseProcess, error: BaseException) -> AdapterError:
    return AdapterError(f"the OPC UA process (pid {child.pid}) exited with code {child.exitcode}: "
                        f"{error or type(error).__name__}")


def _stop(child: multiprocessing.process.BaseProcess) -> None:
    child.join(STOP_TIMEOUT_S)
    if child.is_alive():
        child.kill()
        child.join()


def serve_in_child(down: Connection, up: Connection, settings: OpcUaSettings, mappings_dir: Path,
                   pack_ids: tuple[str, ...], site_name: str, conditions: tuple[ConditionSpec, ...],
                   log_level: int, log_format: LogFormat = "text") -> None:
    """The child process: serve OPC UA until the gateway closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(log_level, log_format)
    try:
        import uvloop
        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_serve(down, up, settings, load_node_map(mappings_dir, settings.map), pack_ids, site_name,
                      conditions))


class PipeLink:
    """The child's way to the engine: commands and events up the pipe, the engine's outcomes back."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._sending = asyncio.Lock()
        self._requests = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def execute(self, command: OperatorCommand) -> str:
        request = next(self._requests)
        outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[request] = outcome
        try:
            await self.send(("command", request, replace(command, reply=None)))
            return await outcome
        finally:
            del self._waiting[request]

    def record(self, event: BmsEvent) -> None:
        task = asyncio.get_running_loop().create_task(self.send(("event", event)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def replied(self, request: int, outcome: str) -> None:
        waiting = self._waiting.get(request)
        if waiting is not None and not waiting.done():
            waiting.set_result(outcome)

    async def send(self, message: Any) -> None:
        async with self._sending:
            await asyncio.to_thread(self._connection.send, message)


async def _serve(down: Connection, up: Connection, settings: OpcUaSettings, node_map: Any, pack_ids: tuple[str, ...],
                 site_name: str, conditions: tuple[ConditionSpec, ...]) -> None:
    hub, feed, link = SnapshotHub(), EventFeed(), PipeLink(up)
    output = OpcUaOutput(settings, hub, node_map, pack_ids, site_name, conditions=conditions, feed=feed, link=link,
                         paced=False)
    serving = asyncio.create_task(output.run(), name="opcua")
    ready = asyncio.create_task(output.ready.wait())
    await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        error = serving.exception() if not serving.cancelled() else None
        await link.send(("failed", str(error) if error else "the OPC UA output stopped before serving"))
        return
    await link.send(("ready", output.namespace_index))
    reporting = asyncio.create_task(_report_traffic(output, link))
    try:
        while not serving.done():
            try:
                message = await asyncio.to_thread(down.recv)
            except (EOFError, OSError):
                return  # the gateway stopped (or died)
            if message[0] == "reply":
                link.replied(message[1], message[2])
                continue
            _, snapshot, events = message
            feed.push(events.events)  # a batch the gateway's feed lost is lost here too: the conditions resume
            if events.lost:
                feed.lose(events.lost)
            await hub.publish(snapshot)
        serving.result()  # the output failed: its error ends this process with a traceback in the log
    finally:
        reporting.cancel()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def _report_traffic(output: OpcUaOutput, link: PipeLink) -> None:
    while True:
        await asyncio.sleep(TRAFFIC_INTERVAL_S)
        await link.send(("traffic", output.traffic()))
