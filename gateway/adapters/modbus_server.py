"""The Modbus TCP output: publishes the latest snapshot through a register map (pymodbus server).

One unit id for the site and one per configured pack. A background loop encodes every unit's
register image once per new snapshot; requests only slice the current image, so a busy client
never costs an encode and never delays the engine.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pymodbus.datastore import ModbusServerContext
from pymodbus.framer import FramerType
from pymodbus.logging import Log as PymodbusLog
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.server import ModbusTcpServer, ModbusTlsServer

from gateway.adapters.client_traffic import ClientTraffic
from gateway.adapters.modbus_commands import CommandGate, UnitCommands
from gateway.adapters.modbus_connection import ModbusConnection
from gateway.adapters.modbus_device import RegisterImageDevice, UnknownUnitDevice
from gateway.adapters.modbus_sunspec import SunSpecRegion
from gateway.adapters.modbus_sunspec_commands import SunSpecCommands
from gateway.adapters.modbus_tls import server_tls_context
from gateway.codec.register_map import RegisterMap
from gateway.codec.sunspec_device import SunSpecDevice
from gateway.domain.snapshot import GatewaySnapshot
from gateway.errors import AdapterError, ConfigError, Problem
from gateway.runtime.command_port import CommandPort
from gateway.runtime.hub import SnapshotHub
from gateway.settings import ModbusSettings

log = logging.getLogger(__name__)
# pymodbus appends the last raw frames of every connection to each error it logs: one client's error would put
# another client's writes (an unlock code) into the log. Keep none.
PymodbusLog.MAX_FRAMES = 0

MIN_UNIT_ID = 1
MAX_UNIT_ID = 247
_SETTINGS = "modbus settings"


@dataclass(frozen=True)
class UnitImages:
    site: NDArray[np.uint16]
    packs: dict[str, NDArray[np.uint16]]


class ModbusOutput:
    """Service: serve the site and every pack on Modbus TCP until cancelled."""

    name = "modbus"

    def __init__(self, settings: ModbusSettings, hub: SnapshotHub, register_map: RegisterMap,
                 unit_ids: Mapping[str, int], sunspec: SunSpecDevice | None = None,
                 port: CommandPort | None = None) -> None:
        _check_unit_ids(settings.site_unit_id, unit_ids)
        self.ready = asyncio.Event()
        self._settings = settings
        self._hub = hub
        self._map = register_map
        security = settings.security
        self._tls_context = server_tls_context(security) if security.enabled else None
        self.gate = CommandGate(settings.commands, port or CommandPort(), list(unit_ids),
                                frozenset(security.write_roles) if security.enabled else None)
        self._sunspec = None if sunspec is None else SunSpecRegion(sunspec)
        sunspec_commands = None if sunspec is None else SunSpecCommands(self.gate, sunspec.layout)
        self._site = RegisterImageDevice(register_map.site.not_implemented_image(),
                                         register_map.site.holding_reserved, UnitCommands(self.gate, None),
                                         self._sunspec, sunspec_commands)
        self._packs = {pack_id: RegisterImageDevice(register_map.pack.not_implemented_image(),
                                                    register_map.pack.holding_reserved,
                                                    UnitCommands(self.gate, pack_id))
                       for pack_id in unit_ids}
        self._unit_ids = dict(unit_ids)
        self.traffic = ClientTraffic()

    @property
    def sunspec(self) -> SunSpecDevice | None:
        return None if self._sunspec is None else self._sunspec.device

    async def run(self) -> None:
        sequence = self._publish(self._hub.latest)
        devices = {self._settings.site_unit_id: self._site}
        devices.update({self._unit_ids[pack_id]: device for pack_id, device in self._packs.items()})
        units = _UnitTable(devices)
        servers: list[_TcpServer | _TlsServer] = []
        try:
            for server, transport, (host, port) in self._servers(units):
                server.traffic = self.traffic
                servers.append(server)
                if not await server.listen():
                    raise AdapterError(_bind_failure_message(host, port))
                log.info("Modbus %s serving on %s:%d (site unit %d, %d pack unit(s), map %s v%d)", transport,
                         host, port, self._settings.site_unit_id, len(self._packs), self._map.name, self._map.version)
            self.ready.set()
            loop = asyncio.get_running_loop()
            with ThreadPoolExecutor(1, thread_name_prefix="modbus-encode") as encoder:
                while True:
                    snapshot = await self._hub.wait_newer(sequence)
                    images = await loop.run_in_executor(encoder, self._encode, snapshot)
                    sequence = self._install(snapshot, images)
        finally:
            self.ready.clear()
            for server in servers:
                await server.shutdown()  # type: ignore[no-untyped-call]

    def _servers(self, units: _UnitTable) -> list[tuple[_TcpServer | _TlsServer, str, tuple[str, int]]]:
        """Plain Modbus TCP unless security is on without plain_tcp; Modbus/TCP Security when it is on."""
        servers: list[tuple[_TcpServer | _TlsServer, str, tuple[str, int]]] = []
        security = self._settings.security
        if not security.enabled or security.plain_tcp:
            address = (self._settings.host, self._settings.port)
            servers.append((_TcpServer(units, address=address, identity=self._identity()), "TCP", address))
        if self._tls_context is not None:
            address = (self._settings.host, security.port)
            servers.append((_TlsServer(units, framer=FramerType.SOCKET, address=address, identity=self._identity(),
                                       sslctx=self._tls_context),
                            "TCP Security (TLS, client certificates required)", address))
        return servers

    def _publish(self, snapshot: GatewaySnapshot | None) -> int:
        """Encode every unit's image once and swap them in; return the sequence to wait beyond."""
        return self._install(snapshot, self._encode(snapshot))

    def _encode(self, snapshot: GatewaySnapshot | None) -> UnitImages:
        """Every unit's image (pure: runs on the encoder thread, ~5 ms at 64 packs, off the event loop)."""
        packs = {} if snapshot is None else {pack.pack_id: pack for pack in snapshot.packs}
        return UnitImages(self._map.encode_site(snapshot),
                          {pack_id: self._map.encode_pack(packs.get(pack_id), snapshot) for pack_id in self._packs})

    def _install(self, snapshot: GatewaySnapshot | None, images: UnitImages) -> int:
        self._site.publish(images.site)
        if self._sunspec is not None:
            self._sunspec.publish(snapshot)
        packs = {} if snapshot is None else {pack.pack_id: pack for pack in snapshot.packs}
        for pack_id, device in self._packs.items():
            device.publish(images.packs[pack_id])
            pack = packs.get(pack_id)
            if pack is not None:
                device.commands.disconnected = pack.disconnect_requested
                device.commands.balancing_enabled = pack.balancing_enabled
        self._site.commands.disconnected = bool(packs) and all(p.disconnect_requested for p in packs.values())
        return -1 if snapshot is None else snapshot.sequence

    def _identity(self) -> ModbusDeviceIdentification:
        return ModbusDeviceIdentification(info_name={  # type: ignore[no-untyped-call]
            "VendorName": "bms-gateway",
            "ProductName": "bms-gateway Modbus TCP output",
            "ModelName": f"register map {self._map.name}",
            "MajorMinorRevision": str(self._map.version),
        })


class _TcpServer(ModbusTcpServer):
    traffic: ClientTraffic

    def callback_new_connection(self) -> ModbusConnection:
        return ModbusConnection(self, self.traffic)


class _TlsServer(ModbusTlsServer):
    traffic: ClientTraffic

    def callback_new_connection(self) -> ModbusConnection:
        return ModbusConnection(self, self.traffic)


class _UnitTable(ModbusServerContext):
    """The configured units; any other unit id is answered by UnknownUnitDevice (exception 0B).

    pymodbus would answer 0B too, but log an error for every such request; a PLC polling a wrong
    unit id ten times a second should cost one warning, not a flood.
    """

    def __init__(self, devices: dict[int, RegisterImageDevice]) -> None:
        super().__init__(devices=devices, single=False)  # type: ignore[no-untyped-call]
        self._units = devices
        self._unknown = UnknownUnitDevice()

    def __contains__(self, unit_id: object) -> bool:
        return True

    def __getitem__(self, unit_id: int) -> RegisterImageDevice | UnknownUnitDevice:
        device = self._units.get(unit_id)
        return device if device is not None else self._unknown.for_unit(unit_id)


def _check_unit_ids(site_unit_id: int, unit_ids: Mapping[str, int]) -> None:
    problems: list[Problem] = []
    owners: dict[int, str] = {site_unit_id: "the site (modbus.site_unit_id)"}
    for pack_id, unit_id in unit_ids.items():
        key = f"packs[{pack_id}].modbus_unit_id"
        if not MIN_UNIT_ID <= unit_id <= MAX_UNIT_ID:
            problems.append(Problem(_SETTINGS, key, f"unit id {unit_id} is outside 1..247",
                                    "set modbus_unit_id or modbus.first_pack_unit_id lower"))
        elif unit_id in owners:
            problems.append(Problem(_SETTINGS, key, f"unit id {unit_id} is already used by {owners[unit_id]}",
                                    "give every pack and the site its own unit id (packs[].modbus_unit_id, "
                                    "modbus.first_pack_unit_id, modbus.site_unit_id)"))
        else:
            owners[unit_id] = f"pack {pack_id!r}"
    if problems:
        raise ConfigError(problems)


def _bind_failure_message(host: str, port: int) -> str:
    return (f"Modbus TCP server cannot listen on {host}:{port} ({_bind_failure_reason(host, port)}). "
            "Choose a free port with BMSGW_MODBUS__PORT or `port` in the [modbus] section of the "
            "settings file (`port` in [modbus.security] for Modbus/TCP Security; `host` / BMSGW_MODBUS__HOST "
            "for another address), or stop the process that holds the port")


def _bind_failure_reason(host: str, port: int) -> str:
    """Why binding failed, found by trying once more with a plain socket (diagnostics only)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            probe.listen()
    except OSError as error:
        return error.strerror or str(error)
    return "the port was busy and is free again"
