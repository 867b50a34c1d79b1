"""The OPC UA output in a process of its own, so that serving OPC UA never delays the engine.

asyncua spends hundreds of milliseconds of CPU per pass over a 32-pack x 32-cell address space
(bench.modbus --all-outputs: 96 % of a core with no client, 100 ms engine stalls). In a child
process it has its own interpreter, GIL and event loop: a worker thread of the gateway only
pickles the latest snapshot (~0.5 ms for 32 packs) once per update interval and writes it to a pipe,
one at a time; a child that falls behind simply receives fewer snapshots.

The child runs the unchanged `OpcUaOutput` behind a hub of its own. It reports ("ready",
namespace index) or ("failed", message) once, then reads snapshots until the pipe closes: when the
gateway stops or dies (even by kill -9), the child sees end-of-file and exits. The child ignores
SIGINT and SIGTERM: its lifetime is the pipe's.
"""

from __future__ import annotations

import asyncio
import contextlib
import copyreg
import logging
import multiprocessing
import signal
import types
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from gateway.adapters.opcua_server import OpcUaOutput, endpoint_url
from gateway.codec.node_map import load_node_map
from gateway.domain.snapshot import GatewaySnapshot
from gateway.errors import AdapterError
from gateway.runtime.hub import SnapshotHub
from gateway.settings import OpcUaSettings

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # the child imports asyncua and builds the address space
STOP_TIMEOUT_S = 5.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _mapping_proxy(items: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(items)


# Snapshots keep their mappings read-only (MappingProxyType), which pickle cannot take as it is.
copyreg.pickle(types.MappingProxyType, lambda proxy: (_mapping_proxy, (dict(proxy),)))


class OpcUaProcessOutput:
    """Service: the OPC UA output served by a child process, fed every snapshot it can take."""

    name = "opcua"

    def __init__(self, settings: OpcUaSettings, hub: SnapshotHub, mappings_dir: Path, pack_ids: Sequence[str],
                 site_name: str) -> None:
        """The node map `settings.map` is loaded from `mappings_dir` again in the child (its sources are
        closures, which do not pickle): load it here first to report a bad map before anything starts."""
        self.ready = asyncio.Event()
        self.endpoint = endpoint_url(settings.host, settings.port)
        self.namespace_index: int | None = None
        self.pid: int | None = None  # the child's, while it runs
        self._hub = hub
        self._update_interval_s = settings.update_interval_s
        self._arguments = (settings, mappings_dir, tuple(pack_ids), site_name)

    async def run(self) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of this process's threads, loop or sockets
        ours, theirs = context.Pipe()
        child = context.Process(target=serve_in_child, args=(theirs, *self._arguments, logging.getLogger().level),
                                name="bms-gateway-opcua", daemon=True)
        child.start()
        self.pid = child.pid
        theirs.close()
        try:
            self.namespace_index = await self._started(ours)
            log.info("OPC UA output runs in process %d", child.pid)
            self.ready.set()
            await self._feed(ours, child)
        finally:
            self.ready.clear()
            ours.close()
            await asyncio.to_thread(_stop, child)
            self.pid = None

    async def _feed(self, connection: Connection, child: multiprocessing.process.BaseProcess) -> None:
        """Send the latest snapshot at most once per update interval (the child writes no more often)."""
        loop = asyncio.get_running_loop()
        sequence = -1
        while True:
            snapshot = await self._hub.wait_newer(sequence)
            sent = loop.time()
            sequence = snapshot.sequence
            try:
                await asyncio.to_thread(connection.send, snapshot)
            except OSError as error:
                raise AdapterError(f"the OPC UA process (pid {child.pid}) exited with code "
                                   f"{child.exitcode}: {error}") from error
            await asyncio.sleep(max(0.0, self._update_interval_s - (loop.time() - sent)))

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


def _stop(child: multiprocessing.process.BaseProcess) -> None:
    child.join(STOP_TIMEOUT_S)
    if child.is_alive():
        child.kill()
        child.join()


def serve_in_child(connection: Connection, settings: OpcUaSettings, mappings_dir: Path, pack_ids: tuple[str, ...],
                   site_name: str, log_level: int) -> None:
    """The child process: serve OPC UA until the gateway closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format=LOG_FORMAT)
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, log_level))
    try:
        import uvloop
        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        hub = SnapshotHub()
        node_map = load_node_map(mappings_dir, settings.map)
        runner(_serve(connection, OpcUaOutput(settings, hub, node_map, pack_ids, site_name), hub))


async def _serve(connection: Connection, output: OpcUaOutput, hub: SnapshotHub) -> None:
    serving = asyncio.create_task(output.run(), name="opcua")
    ready = asyncio.create_task(output.ready.wait())
    await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        error = serving.exception() if not serving.cancelled() else None
        connection.send(("failed", str(error) if error else "the OPC UA output stopped before serving"))
        return
    connection.send(("ready", output.namespace_index))
    try:
        while not serving.done():
            try:
                snapshot: GatewaySnapshot = await asyncio.to_thread(connection.recv)
            except (EOFError, OSError):
                return  # the gateway stopped (or died)
            await hub.publish(snapshot)
        serving.result()  # the output failed: its error ends this process with a traceback in the log
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
