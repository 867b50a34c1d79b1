"""The baseline of the OPC UA benchmark: a bare asyncua server writing N variables once per interval, no gateway.

    python -m bench.opcua_bare --port P --variables N --nodes-out FILE [--interval 1.0] [--cpus 1]

N Double variables (BaseDataVariableType, NodeIds ns=2;s=bench/v00001 ...) in objects of 250, added in one
AddNodes call like the gateway's address space. Every `--interval` seconds every variable gets a new value through
`Server.write_attribute_value` (the call the gateway's OPC UA output uses), SourceTimestamp = the wall time the pass
started. So this is what asyncua itself costs for the same number of changing variables and the same clients, with
nothing else in the process. Prints one JSON line when serving ({"namespace", "variables", "pid"}) and answers
`window T0 T1` with the figures of that window: write-pass durations, event-loop lag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds

from bench.event_loop import run as run_event_loop
from bench.opcua_child import apply_asyncua_what_ifs, what_ifs
from bench.opcua_figures import percentiles_ms
from bench.opcua_probe import LoopLag, commands, reply

NAMESPACE_URI = "urn:bms-gateway:bench-bare"
GROUP = 250  # variables per object, about as many as a pack of the gateway has


def _ns0(identifier: int) -> ua.NodeId:
    return ua.NodeId(ua.Int32(identifier), ua.Int16(0))


async def _build(server: Any, namespace: int, count: int) -> list[ua.NodeId]:
    """`count` variables in objects of GROUP each (asyncua adds a child in time linear in its siblings)."""
    root = ua.NodeId(ua.String("bench"), ua.Int16(namespace))
    items = [_item(root, _ns0(ObjectIds.ObjectsFolder), "Bench", ua.NodeClass.Object, ua.ObjectAttributes(),
                   ObjectIds.BaseObjectType, ObjectIds.Organizes, namespace)]
    node_ids = []
    folder = root
    for n in range(1, count + 1):
        if (n - 1) % GROUP == 0:
            folder = ua.NodeId(ua.String(f"bench/g{n // GROUP:03d}"), ua.Int16(namespace))
            items.append(_item(folder, root, f"G{n // GROUP:03d}", ua.NodeClass.Object, ua.ObjectAttributes(),
                               ObjectIds.BaseObjectType, ObjectIds.HasComponent, namespace))
        node_id = ua.NodeId(ua.String(f"bench/v{n:05d}"), ua.Int16(namespace))
        attributes = ua.VariableAttributes()
        attributes.DataType = _ns0(ObjectIds.Double)
        attributes.Value = ua.Variant(0.0, ua.VariantType.Double)
        attributes.ValueRank = ua.ValueRank.Scalar
        attributes.AccessLevel = attributes.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        items.append(_item(node_id, folder, f"V{n:05d}", ua.NodeClass.Variable, attributes,
                           ObjectIds.BaseDataVariableType, ObjectIds.HasComponent, namespace))
        node_ids.append(node_id)
    for result in await server.iserver.isession.add_nodes(items):
        result.StatusCode.check()
    return node_ids


def _item(node_id: ua.NodeId, parent: ua.NodeId, name: str, node_class: Any, attributes: Any, type_id: int,
          reference: int, namespace: int) -> Any:
    attributes.DisplayName = ua.LocalizedText(name)
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node_id
    item.BrowseName = ua.QualifiedName(name, namespace)
    item.NodeClass = node_class
    item.ParentNodeId = parent
    item.ReferenceTypeId = _ns0(reference)
    item.TypeDefinition = _ns0(type_id)
    item.NodeAttributes = attributes
    return item


async def _write_passes(server: Any, node_ids: list[ua.NodeId], interval_s: float,
                        passes: list[tuple[float, float]]) -> None:
    """Every interval: a new value for every variable, all with the pass's wall time as SourceTimestamp."""
    loop = asyncio.get_running_loop()
    count = 0
    while True:
        started = loop.time()
        now = datetime.now(UTC)
        stamp = ua.DateTime.fromtimestamp(now.timestamp(), now.tzinfo)
        count += 1
        for n, node_id in enumerate(node_ids):
            value = ua.DataValue(ua.Variant(count + n * 1e-6, ua.VariantType.Double), SourceTimestamp=stamp,
                                 ServerTimestamp=stamp)
            await server.write_attribute_value(node_id, value)
        passes.append((time.monotonic(), loop.time() - started))
        await asyncio.sleep(max(0.0, interval_s - (loop.time() - started)))


async def serve(args: argparse.Namespace) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{args.port}/bench/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    namespace = await server.register_namespace(NAMESPACE_URI)
    node_ids = await _build(server, namespace, args.variables)
    Path(args.nodes_out).write_text("".join(f"{n.to_string()}\n" for n in node_ids))
    lag = LoopLag()
    passes: list[tuple[float, float]] = []
    async with server:
        tasks = [asyncio.create_task(lag.run()),
                 asyncio.create_task(_write_passes(server, node_ids, args.interval, passes))]
        reply({"ready": True, "pid": os.getpid(), "namespace": namespace, "variables": len(node_ids),
               "url": f"opc.tcp://127.0.0.1:{args.port}/bench/"})
        try:
            async for command, arguments in commands():
                if command == "window":
                    start_s, end_s = (float(a) for a in arguments)
                    durations = [d for when, d in passes if start_s <= when <= end_s]
                    reply({"lag_ms": percentiles_ms(lag.window(start_s, end_s)),
                           "write_pass_ms": percentiles_ms(durations)})
                else:
                    reply({"error": f"unknown command {command!r}"})
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.opcua_bare", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variables", type=int, required=True)
    parser.add_argument("--nodes-out", required=True, help="write the NodeIds here, one per line")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between write passes")
    parser.add_argument("--cpus", type=lambda s: {int(c) for c in s.split(",")}, default=None)
    parser.add_argument("--what-if", type=what_ifs, default=(), help="bench.opcua_child's what-ifs (comma-separated; "
                        "those that change asyncua apply here)")
    args = parser.parse_args(argv)
    apply_asyncua_what_ifs(args.what_if)
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua.server.server").setLevel(logging.ERROR)  # "no signing policy": None is asked for
    run_event_loop(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
