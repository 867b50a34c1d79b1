"""Composition root: builds everything from settings and runs it in one TaskGroup."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import can
import numpy as np

from gateway import __version__
from gateway.adapters.can_bus import CanBusService, open_bus
from gateway.adapters.can_recorder import CanRecorder
from gateway.adapters.command_queue import CommandQueue
from gateway.adapters.event_log import EventLog, WriteCounts
from gateway.adapters.modbus_server import ModbusOutput
from gateway.adapters.opcua_link import PortLink
from gateway.adapters.opcua_process import OpcUaProcessOutput
from gateway.adapters.opcua_server import OpcUaOutput
from gateway.adapters.pack_registry import load_pack_registry
from gateway.adapters.prometheus_collector import LOOP_LAG_BUCKETS_S, DurationHistogram, SelfMetricSources
from gateway.adapters.prometheus_server import PrometheusOutput
from gateway.adapters.state_store import StateStore
from gateway.adapters.trend_log import TrendLog
from gateway.bms.admission import AdmissionGate
from gateway.bms.cell_model import CellModel, load_cell_model
from gateway.bms.pack_parameters import PackLayout, PackParameters
from gateway.bms.protection_rules import ProtectionRules, build_rules, load_protection_table
from gateway.bms.step import SafetySettings
from gateway.codec.battery_can import BatteryCanLayout, load_battery_can
from gateway.codec.can_decoder import FrameDecoder
from gateway.codec.can_encoder import FrameEncoder
from gateway.codec.node_map import load_node_map
from gateway.codec.protocol import PackProtocol, load_protocol
from gateway.codec.protocol_reporting import pack_reporting
from gateway.codec.register_map import RegisterMap, load_register_map
from gateway.codec.sunspec_device import SunSpecDevice, SunSpecIdentity
from gateway.codec.sunspec_ratings import PackRating
from gateway.domain.measurement import ArrayField
from gateway.errors import ConfigError, Problem
from gateway.runtime.bus_counters import BusCounters
from gateway.runtime.bus_events import bus_event
from gateway.runtime.command_port import CommandPort
from gateway.runtime.condition_catalogue import ConditionSpec, condition_catalogue
from gateway.runtime.engine import Engine, EngineStores
from gateway.runtime.health import GatewayHealth
from gateway.runtime.hub import SnapshotHub
from gateway.runtime.ingest import BusIngest, FrameSink
from gateway.runtime.inverter_figures import SafeVoltages
from gateway.runtime.inverter_output import InverterCanOutput, InverterLinkCounters
from gateway.runtime.j1939_link import J1939Link
from gateway.runtime.loop_lag import LoopLagProbe
from gateway.runtime.measurements import MeasurementTable
from gateway.runtime.pack_link import PackLink
from gateway.runtime.poller import BusPoller, PolledPack, Staleness
from gateway.runtime.service import Service
from gateway.runtime.trend_recorder import TrendRecorder
from gateway.settings import AdmissionSection, BusSettings, GatewaySettings, PackSettings
from gateway.sim.simulator import run_simulation

log = logging.getLogger(__name__)

# The engine step (its own thread) and python-can's receive threads hand the GIL to the event loop within 1 ms
# instead of CPython's default 5 ms: the loop's lag stays near a millisecond while a tick computes.
GIL_SWITCH_INTERVAL_S = 0.001
HEALTH_STALE_MIN_S = 2.0  # the engine is stalled when its last snapshot is older than this,
HEALTH_STALE_TICKS = 20  # or than this many ticks at a slow tick rate
DEFAULT_POLL_BITRATE = 500_000  # the budget's base for an interface opened without a bit rate (virtual, slcan preset)


@dataclass
class Gateway:
    settings: GatewaySettings
    hub: SnapshotHub
    services: list[Service]
    store: StateStore | None = None
    stores: EngineStores | None = None
    trend_log: TrendLog | None = None
    engine: Engine | None = None
    receivers: Mapping[str, FrameSink] = field(default_factory=dict)  # by bus name: where its frames go


def build_gateway(settings: GatewaySettings, *, replay: bool = False, record_path: Path | None = None) -> Gateway:
    """Load every mapping, then open buses and the store; raises MappingError/AdapterError with a clear text.

    Mappings are all validated before anything is opened, so a bad file leaves nothing behind. `replay`: no bus is
    opened and the engine is not a service: a log player feeds `Gateway.receivers` and advances `Gateway.engine`
    (gateway/replay_can_command.py); the inverter output and the simulator are left out. `record_path`: every bus's
    frames, received and sent, are recorded there (`bms-gateway run --record`, gateway/adapters/can_recorder.py).
    """
    protocols: dict[str, PackProtocol] = {}
    models: dict[str, CellModel] = {}
    for pack in settings.packs:
        if pack.protocol not in protocols:
            protocols[pack.protocol] = load_protocol(settings.mappings_dir, pack.protocol)
        if pack.cell_model not in models:
            models[pack.cell_model] = load_cell_model(settings.mappings_dir, pack.cell_model)
    parameters = pack_parameters(settings, models, protocols)
    rules = site_rules(settings, parameters, protocols)
    inverter = settings.inverter_can
    battery_can = (load_battery_can(settings.mappings_dir, inverter.mapping, inverter.manufacturer)
                   if inverter.enabled else None)
    hub = SnapshotHub()
    timings = DurationHistogram()
    loop_lag = DurationHistogram(LOOP_LAG_BUCKETS_S)
    event_counts = WriteCounts()
    commands = settings.modbus.commands
    port = CommandPort(commands.heartbeat_timeout_s if settings.modbus.enabled and commands.enabled else None,
                       time.monotonic())
    health = GatewayHealth(hub, stale_after_s=max(HEALTH_STALE_MIN_S, HEALTH_STALE_TICKS / settings.engine.tick_hz))
    inverter_counters = InverterLinkCounters(inverter.bus) if battery_can is not None else None
    outputs = _outputs(settings, hub, SelfMetricSources(timings, loop_lag, event_log=event_counts,
                                                        inverter=inverter_counters), models, port,
                       condition_catalogue(rules), health)
    table = MeasurementTable(parameters)
    gateway_buses: list[can.BusABC] = []
    services: list[Service] = []
    links: list[PackLink] = []
    counters: list[BusCounters] = []
    ingests: dict[str, BusIngest] = {}
    bus_services: dict[str, CanBusService] = {}
    receivers: dict[str, FrameSink] = {}  # what each bus's frames go to: its ingest, or a link layer in front
    j1939_links: dict[str, J1939Link] = {}
    packs_by_bus: defaultdict[str, list[tuple[int, PackSettings]]] = defaultdict(list)
    for index, pack in enumerate(settings.packs):
        packs_by_bus[pack.bus].append((index, pack))
    can_recorder: CanRecorder | None = None
    try:
        if record_path is not None and not replay:
            can_recorder = CanRecorder(record_path, [b.name for b in settings.buses])
        for bus_settings in settings.buses:
            bus_packs = packs_by_bus[bus_settings.name]
            bus_protocols = {p.protocol for _, p in bus_packs}
            decoder = FrameDecoder(protocols[name] for name in bus_protocols)
            ingest = BusIngest(bus_settings.name, decoder, {p.node_address: i for i, p in bus_packs}, table)
            ingests[bus_settings.name] = receivers[bus_settings.name] = ingest
            j1939 = [protocols[name] for name in bus_protocols if protocols[name].addressing == "j1939"]
            if j1939:
                link_layer = J1939Link(ingest, [p.id for p in settings.packs], j1939[0].gateway_address, port.record)
                j1939_links[bus_settings.name] = receivers[bus_settings.name] = link_layer
            counters.append(ingest.counters)
            encoders = {name: FrameEncoder(protocols[name]) for name in bus_protocols}
            if replay:  # the log plays the buses: nothing is opened, and what the engine sends goes nowhere
                ingest.counters.up = True
                links += [PackLink(i, p.node_address, encoders[p.protocol], _not_sent) for i, p in bus_packs]
                continue
            bus = open_bus(bus_settings)
            gateway_buses.append(bus)
            service = CanBusService(bus_settings, bus, ingest.counters, receivers[bus_settings.name].handle,
                                    can_recorder)
            services.append(service)
            bus_services[bus_settings.name] = service
            service.add_state_listener(lambda change: port.record(bus_event(change)))
            bus_links = [PackLink(i, p.node_address, encoders[p.protocol], service.send) for i, p in bus_packs]
            links += bus_links
            poller = bus_poller(bus_settings, bus_packs, bus_links, protocols, ingest, service,
                                Staleness.of(settings.engine))
            if poller is not None:
                services.append(poller)
        store = StateStore(settings.store.path)
        stores = EngineStores(store, EventLog(settings.store.path, settings.events, counts=event_counts),
                              CommandQueue(settings.store.path))
        trend_log = TrendLog(settings.store.path, settings.trends) if settings.trends.enabled else None
    except BaseException:
        for bus in gateway_buses:
            bus.shutdown()
        if can_recorder is not None:
            can_recorder.close()
        raise
    safety = SafetySettings.of(rules, settings.limits.resolved(), settings.balancing)
    engine = Engine(settings.engine, settings.site_name, parameters, rules, table, counters, links, hub, stores,
                    on_tick=timings.observe, safety=safety,
                    admission=admission_gate(settings.admission, parameters.layouts), port=port,
                    heartbeat_reaction=commands.heartbeat_reaction)
    for bus_name, link_layer in j1939_links.items():
        link_layer.attach([link for link in links if settings.packs[link.pack_index].bus == bus_name],
                          bus_services[bus_name].send if bus_name in bus_services else _not_sent,
                          lambda: engine.wall_clock())
    if not replay:
        services.append(engine)
    if battery_can is not None and not replay:
        services.append(inverter_output(settings, hub, battery_can, models, bus_services[inverter.bus],
                                        ingests[inverter.bus], inverter_counters))
    health.store_problems.append(engine.store_problems)
    services += outputs
    if trend_log is not None:
        recorder = TrendRecorder(hub, trend_log)
        health.store_problems.append(recorder.store_problems)
        services.append(recorder)
    if settings.prometheus.enabled:
        services.append(LoopLagProbe(loop_lag.observe))
    if settings.simulation.enabled and not replay:
        services.append(_SimulationService(settings))
    health.services = services
    return Gateway(settings, hub, services, store, stores, trend_log, engine, receivers)


def bus_poller(bus: BusSettings, packs: Sequence[tuple[int, PackSettings]], links: Sequence[PackLink],
               protocols: Mapping[str, PackProtocol], ingest: BusIngest, service: CanBusService,
               staleness: Staleness) -> BusPoller | None:
    """The poller of a bus whose packs' protocols have polls (None if none has); it watches the bus's ingest."""
    polled = [PolledPack(index, pack.id, link, protocols[pack.protocol],
                         {ArrayField.CELL_VOLTAGE_V: pack.series_cells,
                          ArrayField.TEMPERATURE_C: pack.temperature_sensors}, pack.poll_periods_s)
              for (index, pack), link in zip(packs, links, strict=True) if protocols[pack.protocol].polls]
    if not polled:
        return None
    poller = BusPoller(ingest.counters, bus.bitrate or DEFAULT_POLL_BITRATE, bus.poll_budget_ratio, polled,
                       lambda arbitration_id, data, extended: service.send(arbitration_id, data, extended), staleness)
    ingest.message_listener = poller.received
    return poller


def inverter_output(settings: GatewaySettings, hub: SnapshotHub, layout: BatteryCanLayout,
                    models: Mapping[str, CellModel], service: CanBusService, ingest: BusIngest,
                    counters: InverterLinkCounters | None = None) -> InverterCanOutput:
    """The site as one battery on the inverter's bus; its keep-alive frames are taken off that bus's decoder."""
    inverter = settings.inverter_can
    safe = SafeVoltages(
        inverter.safe_charge_voltage_v or min(p.series_cells * models[p.cell_model].spec.nominal_voltage_v
                                              for p in settings.packs),
        inverter.safe_discharge_voltage_v or max(p.series_cells * models[p.cell_model].limits.min_discharge_voltage_v
                                                 for p in settings.packs))
    output = InverterCanOutput(hub, layout, lambda i, data: service.send(i, data, is_extended_id=False),
                               bus=inverter.bus, period_s=inverter.period_s, stale_after_s=inverter.stale_after_s,
                               safe=safe, shutdown_repeats=inverter.shutdown_repeats,
                               keepalive_timeout_s=inverter.keepalive_timeout_s, counters=counters)
    ingest.tap_standard(layout.keepalive_id, output.keepalive_received)
    return output


def pack_parameters(settings: GatewaySettings, models: Mapping[str, CellModel],
                    protocols: Mapping[str, PackProtocol]) -> PackParameters:
    """`models` and `protocols` by name; a protocol says what its packs report (every cell, their identity, ...)."""
    return PackParameters.build([
        PackLayout(p.id, p.series_cells, p.temperature_sensors, models[p.cell_model],
                   pack_reporting(protocols[p.protocol]))
        for p in settings.packs
    ])


def site_rules(settings: GatewaySettings, parameters: PackParameters | None = None,
               protocols: Mapping[str, PackProtocol] | None = None) -> ProtectionRules:
    """The protection table resolved for the configured packs (their protocols and cell models loaded when not
    given); a pack whose protocol sends only about once a second gets that protocol's longer stale timeout."""
    if protocols is None:
        protocols = {p.protocol: load_protocol(settings.mappings_dir, p.protocol) for p in settings.packs}
    if parameters is None:
        models = {p.cell_model: load_cell_model(settings.mappings_dir, p.cell_model) for p in settings.packs}
        parameters = pack_parameters(settings, models, protocols)
    engine = settings.engine
    staleness = Staleness.of(engine)
    stale_timeout_s = np.array([staleness.measurements_timeout_s(protocols[p.protocol]) for p in settings.packs])
    return build_rules(parameters, stale_timeout_s, 1.0 / engine.tick_hz,
                       load_protection_table(settings.mappings_dir, settings.protection.table),
                       engine.temperature_stale_timeout_s)


def admission_gate(settings: AdmissionSection, layouts: Sequence[PackLayout]) -> AdmissionGate | None:
    """The admission gate of the site, its registry loaded and checked; None when admission is off."""
    if not settings.enabled:
        return None
    registry = None if settings.registry is None else load_pack_registry(settings.registry)
    return AdmissionGate.of(layouts, registry, settings.resolved())


def _outputs(settings: GatewaySettings, hub: SnapshotHub, sources: SelfMetricSources, models: Mapping[str, CellModel],
             port: CommandPort, conditions: Sequence[ConditionSpec], health: GatewayHealth) -> list[Service]:
    """The enabled outputs, their mappings loaded and validated (nothing is bound until they run)."""
    outputs: list[Service] = []
    if settings.modbus.enabled:
        register_map = load_register_map(settings.mappings_dir, settings.modbus.map)
        unit_ids = {p.id: settings.unit_id_of(p) for p in settings.packs}
        sunspec = sunspec_device(settings, models, register_map) if settings.modbus.sunspec else None
        modbus = ModbusOutput(settings.modbus, hub, register_map, unit_ids, sunspec, port)
        sources = replace(sources, modbus=modbus.traffic)
        outputs.append(modbus)
    if settings.opcua.enabled:
        node_map = load_node_map(settings.mappings_dir, settings.opcua.map)
        pack_ids = [p.id for p in settings.packs]
        opcua: OpcUaProcessOutput | OpcUaOutput
        if settings.opcua.separate_process:
            opcua = OpcUaProcessOutput(settings.opcua, hub, settings.mappings_dir, pack_ids, settings.site_name,
                                       conditions=conditions, port=port, tick_period_s=1.0 / settings.engine.tick_hz)
        else:
            opcua = OpcUaOutput(settings.opcua, hub, node_map, pack_ids, settings.site_name,
                                conditions=conditions, feed=port.follow_events(), link=PortLink(port))
        sources = replace(sources, opcua=opcua.traffic)
        outputs.append(opcua)
    if settings.prometheus.enabled:
        outputs.append(PrometheusOutput(settings.prometheus, hub, sources, health))
    return outputs


def sunspec_device(settings: GatewaySettings, models: Mapping[str, CellModel],
                   register_map: RegisterMap) -> SunSpecDevice:
    identity = SunSpecIdentity("bms-gateway", "bms-gateway battery bank",
                               f"{register_map.name} v{register_map.version}", __version__, settings.site_name,
                               settings.modbus.site_unit_id)
    ratings = [PackRating.of(p.id, p.series_cells, models[p.cell_model]) for p in settings.packs]
    try:
        return SunSpecDevice(identity, ratings, remote_control=settings.modbus.commands.enabled)
    except ValueError as error:
        raise ConfigError([Problem("settings", "modbus.sunspec", str(error),
                                   "set modbus.sunspec = false, or serve fewer packs per gateway")]) from error


def _not_sent(arbitration_id: int, data: bytes) -> bool:
    return True


class _SimulationService:
    def __init__(self, settings: GatewaySettings) -> None:
        self.name = "simulation"
        self.ready = asyncio.Event()
        self._settings = settings

    async def run(self) -> None:
        used = {p.bus for p in self._settings.simulation.packs}
        # Own bus instances: the simulated packs are separate nodes on the same channel.
        buses = {b.name: open_bus(b) for b in self._settings.buses if b.name in used}
        self.ready.set()
        try:
            await run_simulation(self._settings.simulation, buses, self._settings.mappings_dir)
        finally:
            for bus in buses.values():
                bus.shutdown()


async def simulation_only(settings: GatewaySettings, stop: asyncio.Event) -> None:
    """`bms-gateway simulate`: only the simulated packs, on the configured buses."""
    service = _SimulationService(settings)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(service.run())
        await stop.wait()
        task.cancel()


async def run_gateway(gateway: Gateway, stop: asyncio.Event) -> None:
    """Run every service until `stop` is set or one of them fails."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(service.run(), name=service.name) for service in gateway.services]
            group.create_task(_announce_when_ready(gateway))
            await stop.wait()
            for task in tasks:
                task.cancel()
            raise _Stopped
    except* _Stopped:
        log.info("stopped")
    finally:
        for service in gateway.services:
            if isinstance(service, CanBusService):  # the bus open now: the one built, or a reopened one
                service.close()
                if service.recorder is not None:  # shared by the buses; closing again does nothing
                    service.recorder.close()
        if gateway.store is not None:
            gateway.store.close()
        if gateway.stores is not None:
            for part in (gateway.stores.events, gateway.stores.commands):
                if part is not None:
                    part.close()
        if gateway.trend_log is not None:
            gateway.trend_log.close()


class _Stopped(Exception):
    """Raised inside the TaskGroup to cancel every service on a clean stop."""


async def _announce_when_ready(gateway: Gateway) -> None:
    await asyncio.gather(*(service.ready.wait() for service in gateway.services))
    # Everything built so far (mappings, the OPC UA address space, the state arrays) lives as long as the
    # process: moved out of the collector's reach, a full collection no longer stalls the loop for ~100 ms
    # (bench.modbus: tick jitter p99 from 33-98 ms to 1.2-4.4 ms under 50 Modbus clients).
    gc.collect()
    gc.freeze()
    s = gateway.settings
    endpoints = []
    if s.modbus.enabled:
        endpoints.append(f"Modbus TCP {s.modbus.host}:{s.modbus.port} (site unit {s.modbus.site_unit_id})")
    if s.opcua.enabled:
        endpoints.append(f"OPC UA opc.tcp://{s.opcua.host}:{s.opcua.port}/bms-gateway/")
    if s.prometheus.enabled:
        endpoints.append(f"Prometheus http://{s.prometheus.host}:{s.prometheus.port}/metrics")
    log.info("serving %d pack(s): %s", len(s.packs), "; ".join(endpoints))
