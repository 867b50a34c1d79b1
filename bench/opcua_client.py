"""One OPC UA client of the benchmark, in its own process: subscribes to every listed node, times each notification.

    python -m bench.opcua_client --url opc.tcp://127.0.0.1:P/bms-gateway/ --nodes FILE --out FILE
                                 [--interval-ms 1000] [--batch 20000] [--cpus 1]

An asyncua Client creates one subscription (publishing interval `--interval-ms`) and monitors the Value of every
NodeId in FILE (one per line), in CreateMonitoredItems calls of `--batch` items (by default one call for a whole
site: a busy server answers few calls), queue size 1 (the latest value), sampling interval 0 (on every write). It
then prints one JSON line ({"subscribed": n, ...}) and waits for a line `window T0 T1` (monotonic seconds) on
stdin. Each data-change notification received in the window is timed: latency = wall time at receipt - the value's
SourceTimestamp (server and client share the machine's clock). After T1 it writes the latencies (float64 seconds)
to `--out`, prints one JSON line of counts and CPU time, then closes its session and exits.

Receipt is when asyncua hands over the decoded PublishResponse. Decoding is bench.opcua_wire's lean decoder
(handle and SourceTimestamp only), hooked into asyncua's session: asyncua's own decoder would cost these client
processes more CPU than the machine has. Anything the lean decoder does not expect goes through asyncua's decoder
and the subscription handler below, and is timed the same way (counted as `slow_path`). The client's health probe
waits up to 60 s for the server (asyncua gives a connection up after 1 s by default): a busy server shows in the
latencies, not as a lost client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from asyncua import ua
from asyncua.client import ua_session
from asyncua.client.client import Client

from bench.event_loop import run as run_event_loop
from bench.opcua_wire import EPOCH_OFFSET_S, TICKS_PER_S, DataChanges, decode_publish_response

SUBSCRIBE_TIMEOUT_S = 600.0
REQUEST_TIMEOUT_S = 60.0
EPOCH_TICKS = EPOCH_OFFSET_S * TICKS_PER_S


class Recorder:
    """Latencies of the notifications received between `start` and `end` (monotonic seconds)."""

    def __init__(self) -> None:
        self.start = float("inf")
        self.end = float("inf")
        self.latencies: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        self.received = 0  # notifications, whole run
        self.publishes = 0  # PublishResponses carrying notifications, in the window
        self.largest = 0  # notifications in one PublishResponse, in the window
        self.without_timestamp = 0
        self.slow_path = 0
        self.status_changes: list[str] = []  # the subscription's status changes (e.g. BadTimeout), whole run
        self.cpu_start = 0.0
        self.cpu_end = 0.0

    def changes(self, changes: DataChanges) -> None:
        received_wall, received = time.time(), time.monotonic()
        count = len(changes.handles)
        self.received += count
        if not self.start <= received <= self.end or not count:
            return
        ticks = np.asarray(changes.source_ticks, dtype=np.int64)
        self.latencies.append(received_wall - (ticks - EPOCH_TICKS) / TICKS_PER_S)
        self.publishes += 1
        self.largest = max(self.largest, count)
        self.without_timestamp += changes.without_timestamp

    def one(self, source_time: Any) -> None:
        """A notification that went through asyncua's own decoder and handler."""
        received_wall, received = time.time(), time.monotonic()
        self.received += 1
        self.slow_path += 1
        if not self.start <= received <= self.end:
            return
        if source_time is None:
            self.without_timestamp += 1
            return
        self.latencies.append(np.array([received_wall - source_time.timestamp()]))


class Handler:
    """asyncua's subscription handler: only reached by notifications the lean decoder left to asyncua."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self._recorder.one(data.monitored_item.Value.SourceTimestamp)

    def status_change_notification(self, status: Any) -> None:
        self._recorder.status_changes.append(str(status.Status))


def hook_decoder(recorder: Recorder) -> None:
    """Decode PublishResponses with bench.opcua_wire inside asyncua's session (this process only)."""
    original = vars(ua_session)["struct_from_binary"]

    def decode(objtype: Any, data: Any) -> Any:
        if objtype is ua.PublishResponse:
            changes = decode_publish_response(data)
            if changes is not None:
                recorder.changes(changes)
                return changes.response
        return original(objtype, data)

    vars(ua_session)["struct_from_binary"] = decode


def subscription_parameters(interval_ms: float) -> Any:
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = interval_ms
    params.RequestedLifetimeCount = 10_000
    params.RequestedMaxKeepAliveCount = max(1, round(60_000 / interval_ms))  # a keep-alive every ~60 s
    params.MaxNotificationsPerPublish = 0  # no limit: one PublishResponse per interval carries every change
    params.PublishingEnabled = True
    params.Priority = 0
    return params


async def _read_window() -> tuple[float, float] | None:
    """The window the benchmark asks for; None when it closed our stdin instead (it gave up)."""
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if not line:
        return None
    command, start, end = line.split()
    if command != "window":
        raise ValueError(f"expected 'window T0 T1', got {line!r}")
    return float(start), float(end)


async def run(args: argparse.Namespace) -> None:
    """Subscribe, report, time the window, report; the benchmark may kill this process from then on (a busy server
    can take long to close a session)."""
    recorder = Recorder()
    hook_decoder(recorder)
    node_ids = [line.strip() for line in Path(args.nodes).read_text().splitlines() if line.strip()]
    started = time.monotonic()
    client = Client(args.url, timeout=REQUEST_TIMEOUT_S, watchdog_intervall=REQUEST_TIMEOUT_S)
    async with client:
        subscription = await client.create_subscription(subscription_parameters(args.interval_ms),
                                                        Handler(recorder))
        failed = 0
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            for first in range(0, len(node_ids), args.batch):
                nodes = [client.get_node(ua.NodeId.from_string(n)) for n in node_ids[first:first + args.batch]]
                results = await subscription.subscribe_data_change(nodes, queuesize=1,
                                                                 sampling_interval=ua.Double(0.0))
                failed += sum(1 for r in results if isinstance(r, ua.StatusCode))
        setup_s = time.monotonic() - started
        print(json.dumps({"subscribed": len(node_ids) - failed, "failed": failed, "setup_s": setup_s}), flush=True)
        window = await _read_window()
        if window is None:
            return
        recorder.start, recorder.end = window
        await asyncio.sleep(max(0.0, recorder.start - time.monotonic()))
        recorder.cpu_start = time.process_time()
        await asyncio.sleep(max(0.0, recorder.end - time.monotonic()))
        recorder.cpu_end = time.process_time()
        latencies = np.concatenate(recorder.latencies) if recorder.latencies else np.zeros(0)
        latencies.astype(np.float64).tofile(args.out)
        print(json.dumps({"monitored_items": len(node_ids) - failed, "failed": failed, "setup_s": setup_s,
                          "notifications": int(latencies.size), "received_total": recorder.received,
                          "publishes": recorder.publishes, "largest_publish": recorder.largest,
                          "without_timestamp": recorder.without_timestamp, "slow_path": recorder.slow_path,
                          "status_changes": recorder.status_changes,
                          "cpu_s": recorder.cpu_end - recorder.cpu_start}), flush=True)
        logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # closing while the server is busy: noise only



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.opcua_client", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--nodes", required=True, help="file of NodeIds, one per line (ns=2;s=site/soc)")
    parser.add_argument("--out", required=True, help="latencies of the window, float64 seconds")
    parser.add_argument("--interval-ms", type=float, default=1000.0, help="requested publishing interval")
    parser.add_argument("--batch", type=int, default=20_000,
                        help="monitored items per CreateMonitoredItems call (a busy server answers few calls)")
    parser.add_argument("--cpus", type=lambda s: {int(c) for c in s.split(",")}, default=None)
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    run_event_loop(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
