"""The site of the Modbus benchmark: packs of 32 cells spread over virtual CAN buses, Modbus TCP the only output.

Each pack is configured in the gateway (unit ids from `first_pack_unit_id` on) and simulated by the CAN load
(`bench.modbus_canload`) with the same node address on the same bus. OPC UA and Prometheus are off unless asked
for: no client reads them here, so they would only add their own periodic work to the gateway's CPU.
"""

from __future__ import annotations

from pathlib import Path

from gateway.settings import (
    BusSettings,
    GatewaySettings,
    ModbusSettings,
    OpcUaSettings,
    PackSettings,
    PrometheusSettings,
    SimulatedPack,
    SimulationSettings,
    StoreSettings,
)

BITRATE = 500_000


def channels(buses: int, tag: str) -> list[str]:
    """Virtual channel names of this run (the tag keeps concurrent runs in one process apart)."""
    return [f"bench-modbus-{tag}-{b}" for b in range(buses)]


def _node_of(pack: int, buses: int) -> tuple[int, int]:
    """(bus index, node address) of pack `pack`: dealt round-robin over the buses, nodes from 1."""
    return pack % buses, pack // buses + 1


def site_settings(packs: int, buses: int, modbus_port: int, store: Path, tag: str, *, opcua_port: int | None = None,
                  prometheus_port: int | None = None) -> GatewaySettings:
    names = channels(buses, tag)
    return GatewaySettings(
        site_name="bench-modbus",
        buses=tuple(BusSettings(name=f"can{b}", interface="virtual", channel=names[b], bitrate=BITRATE)
                    for b in range(buses)),
        packs=tuple(PackSettings(id=f"pack-{p + 1:02d}", bus=f"can{_node_of(p, buses)[0]}",
                                 node_address=_node_of(p, buses)[1]) for p in range(packs)),
        store=StoreSettings(path=store),
        modbus=ModbusSettings(port=modbus_port),
        opcua=OpcUaSettings(enabled=opcua_port is not None, port=opcua_port or 4840),
        prometheus=PrometheusSettings(enabled=prometheus_port is not None, port=prometheus_port or 9108),
    )


def simulated_packs(settings: GatewaySettings) -> SimulationSettings:
    """The simulator's view of the configured packs: same bus and node, a spread of states of charge."""
    count = len(settings.packs)
    return SimulationSettings(
        enabled=True, load_profile="drive", load_scale_c=0.5,
        packs=tuple(SimulatedPack(node_address=p.node_address, bus=p.bus, series_cells=p.series_cells,
                                  temperature_sensors=p.temperature_sensors, initial_soc=0.4 + 0.4 * i / count,
                                  serial_number=24_000_000 + i)
                    for i, p in enumerate(settings.packs)),
    )
