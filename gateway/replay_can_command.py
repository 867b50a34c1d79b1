"""`bms-gateway replay-can FILE`: a recorded CAN log through the full gateway, for post-mortems and tests.

The site configuration (`--config`, default the demo's) gives the buses, packs, protocols and rules; the log plays
its buses at the log's own time (runtime/log_player.py), so the states do not depend on `--speed`. The engine starts
from an empty store of its own (never the live gateway's) unless `--store` names one; its events land there, for
`bms-gateway events --store` and `report`. The outputs stay off unless `--outputs` (their ports may be in use by the
live gateway on the same machine); `--output STATES.csv` writes each pack's state every `--every` seconds of log time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from gateway.adapters.can_log import CanLog
from gateway.config_loader import load_settings
from gateway.demo import demo_settings_overrides
from gateway.domain.snapshot import GatewaySnapshot
from gateway.errors import ConfigError, GatewayError, Problem
from gateway.settings import GatewaySettings

REPLAY_CAN_COMMAND = "replay-can"
STATE_COLUMNS = ("time_s", "pack_id", "online", "state", "soc", "soc_sigma", "soh", "pack_voltage_v", "pack_current_a",
                 "cell_voltage_min_v", "cell_voltage_max_v", "temperature_max_c", "charge_current_limit_a",
                 "discharge_current_limit_a", "charge_voltage_limit_v", "discharge_voltage_limit_v", "alarms")


def add_replay_can_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(REPLAY_CAN_COMMAND, help="run a recorded CAN log (.log candump, .asc, .blf) "
                                 "through the full gateway")
    replay.add_argument("file", type=Path, help="the CAN log")
    replay.add_argument("--config", type=Path, metavar="FILE", help="site configuration (default: the demo's)")
    replay.add_argument("--speed", type=float, default=0.0, metavar="X",
                        help="X times real time; 0 (default): as fast as the engine computes")
    replay.add_argument("--bus", action="append", default=[], metavar="NAME|CHANNEL=NAME",
                        help="play the whole log onto bus NAME, or map a log channel to a bus (repeatable)")
    replay.add_argument("--output", type=Path, metavar="STATES.csv", help="each pack's state over log time")
    replay.add_argument("--every", type=float, default=1.0, metavar="S", help="seconds of log time between rows")
    replay.add_argument("--store", type=Path, metavar="PATH",
                        help="database file for the replayed engine's checkpoints and events (default: a fresh "
                        "temporary one)")
    replay.add_argument("--outputs", action="store_true",
                        help="serve the configured Modbus / OPC UA / Prometheus outputs during the replay")


def run_replay_can_command(arguments: argparse.Namespace) -> int:
    from gateway.cli import run_async

    if arguments.speed < 0 or not math.isfinite(arguments.speed):
        raise ConfigError([Problem("command line", "--speed", f"{arguments.speed} is not a speed",
                                   "give 0 (as fast as possible) or a positive factor")])
    if arguments.every <= 0:
        raise ConfigError([Problem("command line", "--every", f"{arguments.every} s", "give a positive interval")])
    return run_async(_replay(arguments))


def _channel_arguments(values: list[str]) -> tuple[dict[str, str], str | None]:
    channel_map: dict[str, str] = {}
    only: str | None = None
    for value in values:
        channel, equals, bus = value.partition("=")
        if equals:
            channel_map[channel] = bus
        else:
            only = value
    return channel_map, only


def _replay_settings(arguments: argparse.Namespace, store: Path) -> GatewaySettings:
    settings = (load_settings(arguments.config) if arguments.config is not None
                else load_settings(None, demo_settings_overrides()))
    update: dict[str, object] = {"store": settings.store.model_copy(update={"path": store}),
                                 "simulation": settings.simulation.model_copy(update={"enabled": False})}
    if not arguments.outputs:
        for name in ("modbus", "opcua", "prometheus"):
            update[name] = getattr(settings, name).model_copy(update={"enabled": False})
    return settings.model_copy(update=update)


@contextmanager
def _store_path(given: Path | None) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="bms-replay-") as directory:
        yield Path(directory) / "replay.sqlite"


async def _replay(arguments: argparse.Namespace) -> int:
    from gateway.app import build_gateway, run_gateway
    from gateway.runtime.log_player import LogPlayer

    with ExitStack() as stack:
        store = stack.enter_context(_store_path(arguments.store))
        settings = _replay_settings(arguments, store)
        channel_map, only = _channel_arguments(arguments.bus)
        log = CanLog(arguments.file, [b.name for b in settings.buses], channel_map, only)
        gateway = build_gateway(settings, replay=True)
        assert gateway.engine is not None
        writer = _StateWriter(stack.enter_context(arguments.output.open("w", newline="")), arguments.every) \
            if arguments.output is not None else None
        hub = gateway.hub

        def after_tick(log_time_s: float) -> None:
            if writer is not None and hub.latest is not None:
                writer.maybe_write(log_time_s, hub.latest)

        player = LogPlayer(log.frames(), gateway.receivers, gateway.engine, period_s=1.0 / settings.engine.tick_hz,
                           speed=arguments.speed, start_wall_time=lambda: log.start_wall_time, on_tick=after_tick)
        gateway.services.append(player)
        stop = asyncio.Event()
        waiter = asyncio.create_task(_stop_when(player.finished, stop))
        try:
            await run_gateway(gateway, stop)
        except* GatewayError as group:  # a channel of the log that maps to no bus, found while playing
            raise group.exceptions[0] from None
        finally:
            waiter.cancel()
        _print_summary(arguments.file, log, player.log_time_s, hub.latest, store if arguments.store else None)
    return 0


async def _stop_when(finished: asyncio.Event, stop: asyncio.Event) -> None:
    await finished.wait()
    stop.set()


class _StateWriter:
    def __init__(self, stream: IO[str], every_s: float) -> None:
        self._writer = csv.writer(stream)
        self._writer.writerow(STATE_COLUMNS)
        self._every_s = every_s
        self._next_s = 0.0

    def maybe_write(self, log_time_s: float, snapshot: GatewaySnapshot) -> None:
        if log_time_s + 1e-9 < self._next_s:
            return
        self._next_s += self._every_s * max(1, math.floor((log_time_s - self._next_s) / self._every_s) + 1)
        for p in snapshot.packs:
            alarms = "|".join(code.label for code in sorted(p.alarms))
            self._writer.writerow([f"{log_time_s:.3f}", p.pack_id, int(p.online), p.state.name.lower(),
                                   *(_number(v) for v in (
                                       p.soc, p.soc_sigma, p.soh, p.pack_voltage_v, p.pack_current_a,
                                       p.cell_voltage_min_v, p.cell_voltage_max_v, p.temperature_max_c,
                                       p.charge_current_limit_a, p.discharge_current_limit_a,
                                       p.charge_voltage_limit_v, p.discharge_voltage_limit_v)), alarms])


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6g}"


def _print_summary(path: Path, log: CanLog, log_time_s: float, snapshot: GatewaySnapshot | None,
                   store: Path | None) -> None:
    counts = log.counts
    print(f"{path}: {counts.frames} frames over {log_time_s:.1f} s of log time "
          f"({counts.transmitted_skipped} sent by the gateway skipped, {counts.error_or_remote} error/remote)")
    if snapshot is None:
        print("no tick ran: the log holds no frame", file=sys.stderr)
        return
    for bus in snapshot.buses:
        rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(bus.frames_rejected.items())) or "none"
        print(f"bus {bus.bus}: {bus.frames_received} received, {bus.frames_decoded} decoded, rejected: {rejected}")
    for p in snapshot.packs:
        alarms = ", ".join(code.label for code in sorted(p.alarms)) or "no alarm"
        print(f"{p.pack_id}: {'online' if p.online else 'offline'}, SoC {p.soc * 100:.1f} %, "
              f"limits {p.charge_current_limit_a:.0f} A / {p.discharge_current_limit_a:.0f} A, {alarms}")
    if store is not None:
        print(f"events and checkpoints: {store} (bms-gateway events --store {store})")
