"""The OPC UA output end to end: the real asyncua server, the real asyncua client, no mocks.

Most tests read one shared output serving `served_snapshot()` (module-scoped, read-only); the
ones that publish or fail to start get an output of their own. Expected values come from the
snapshot through node_values (which test_node_map checks against the snapshot attributes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node

from gateway.adapters.opcua_pack_methods import PACK_METHODS, SITE_METHODS
from gateway.adapters.opcua_server import OpcUaOutput
from gateway.adapters.opcua_tree import AddressSpace
from gateway.adapters.opcua_types import Server
from gateway.adapters.opcua_value_table import ValueTable
from gateway.adapters.opcua_values import ValueWriter
from gateway.bms.usage import SOC_BAND_EDGES, TEMPERATURE_BAND_EDGES_C
from gateway.codec.node_model import UNECE_NAMESPACE_URI, NodeMap, pack_path, site_path, unece_unit_id
from gateway.codec.node_values import Quality, pack_values, site_values
from gateway.domain.alarms import AlarmCode, Severity
from gateway.domain.snapshot import PackSnapshot
from gateway.domain.states import ContactorState, PackState
from gateway.errors import AdapterError
from gateway.runtime.hub import SnapshotHub
from gateway.settings import OpcUaSettings
from tests.adapters.conftest_opcua import (
    OPCUA_PACK_IDS,
    RunningOpcUa,
    Served,
    eventually,
    native_node_map_fixture,  # noqa: F401
    opcua_client_fixture,  # noqa: F401
    opcua_server_fixture,  # noqa: F401
    same,
    served_fixture,  # noqa: F401
    served_snapshot,
    status_name,
    value_of,
)
from tests.factories import make_snapshot

ANALOG_ITEM_TYPE = ua.NodeId(ua.Int32(2368), ua.Int16(0))
PROPERTY_TYPE = ua.NodeId(ua.Int32(68), ua.Int16(0))
MULTI_STATE_VALUE_DISCRETE_TYPE = ua.NodeId(ua.Int32(11238), ua.Int16(0))
shared = pytest.mark.asyncio(loop_scope="module")


async def browse_names(node: Node) -> list[str]:
    return [str((await child.read_browse_name()).Name) for child in await node.get_children()]


async def read_all(served: Served, paths: list[str]) -> dict[str, ua.DataValue]:
    values = await served.client.read_attributes([served.node(path) for path in paths])
    return dict(zip(paths, values, strict=True))


@shared
async def test_namespace_is_registered_as_index_2(served: Served) -> None:
    namespaces = await served.client.get_namespace_array()
    assert namespaces[2] == served.server.settings.namespace_uri
    assert served.server.output.namespace_index == 2


@shared
async def test_address_space_tree(served: Served) -> None:
    node_map = served.server.node_map
    objects = served.client.nodes.objects
    assert "plant-7" in await browse_names(objects)
    site = await objects.get_child(["2:plant-7"])
    assert site.nodeid.to_string() == "ns=2;s=site"
    site_methods = {method.browse_name for method in SITE_METHODS}
    assert set(await browse_names(site)) == {v.browse_name for v in node_map.site} | {"Packs"} | site_methods
    packs = await site.get_child(["2:Packs"])
    assert await browse_names(packs) == list(OPCUA_PACK_IDS)
    pack = await packs.get_child(["2:pack-01"])
    assert pack.nodeid.to_string() == "ns=2;s=site/packs/pack-01"
    assert await browse_names(pack) == [v.browse_name for v in node_map.pack] + [
        "Cells", "Temperatures", "TimeAtTemperature", "TimeAtSoC", "Identity", "Alarms"] + [
        method.browse_name for method in PACK_METHODS]
    cells = await pack.get_child(["2:Cells"])
    names = await browse_names(cells)
    assert (len(names), names[0], names[-1]) == (32, "Cell01", "Cell32")
    cell = await cells.get_child(["2:Cell32"])
    assert cell.nodeid.to_string() == "ns=2;s=site/packs/pack-01/cells/cell32"
    assert await browse_names(cell) == ["Voltage", "SoC", "SoCSigma", "Capacity", "Resistance"]
    temperatures = await pack.get_child(["2:Temperatures"])
    assert (await browse_names(temperatures))[-1] == "Temperature08"
    bands = [f"Band{n:02d}" for n in range(1, 11)]
    for folder in ("TimeAtTemperature", "TimeAtSoC"):
        assert await browse_names(await pack.get_child([f"2:{folder}"])) == ["BandEdges", *bands], folder
    band = await pack.get_child(["2:TimeAtSoC", "2:Band03"])
    assert band.nodeid.to_string() == "ns=2;s=site/packs/pack-01/time_at_soc/band03"
    identity = await pack.get_child(["2:Identity"])
    assert await browse_names(identity) == [p.browse_name for p in node_map.identity.properties]
    never_seen = await packs.get_child(["2:pack-99"])
    assert await browse_names(await never_seen.get_child(["2:Cells"])) == []
    assert await browse_names(await never_seen.get_child(["2:TimeAtSoC"])) == ["BandEdges"]


@shared
async def test_values_match_the_snapshot(served: Served) -> None:
    node_map, published = served.server.node_map, served.snapshot
    expected = {site_path(key): value for key, value in site_values(node_map, published.site).items()}
    for pack in published.packs:
        expected |= {pack_path(pack.pack_id, key): v for key, v in pack_values(node_map, pack).items()}
    read = await read_all(served, list(expected))
    for path, value in expected.items():
        data_value = read[path]
        if value.quality is Quality.GOOD:
            assert status_name(data_value) == "Good", path
            assert same(value_of(data_value), value.value), path
        else:
            assert status_name(data_value) == "BadNoCommunication", path
            assert value_of(data_value) is None, path
        assert data_value.SourceTimestamp is not None
        assert data_value.SourceTimestamp.timestamp() == pytest.approx(published.wall_time)
    assert value_of(read[pack_path("pack-01", "soc")]) == 0.56
    assert value_of(read[pack_path("pack-01", "cells/cell32/voltage")]) == pytest.approx(3.6155)
    assert value_of(read[pack_path("pack-01", "identity/chemistry")]) == "NMC"


@shared
async def test_analog_items_carry_units_and_ranges(served: Served) -> None:
    expected_units = {"voltage": ("VLT", "V", 0x564C54), "current": ("AMP", "A", 0x414D50),
                      "soc": ("C62", "1", 0x433632), "temperature_max": ("CEL", "°C", 0x43454C),
                      "capacity": ("AMH", "A·h", 0x414D48), "wh_charged": ("WHR", "W·h", 0x574852),
                      "data_age": ("SEC", "s", 0x534543), "soc_sigma": ("C62", "1", 0x433632),
                      "soh_resistance": ("C62", "1", 0x433632), "current_bias": ("AMP", "A", 0x414D50)}
    for variable in served.server.node_map.pack:
        node = served.node(pack_path("pack-01", variable.id))
        definition = await node.read_type_definition()
        if variable.unit is None:
            assert definition != ANALOG_ITEM_TYPE, variable.id
            continue
        assert definition == ANALOG_ITEM_TYPE, variable.id
        units = await (await node.get_child(["0:EngineeringUnits"])).read_value()
        eu_range = await (await node.get_child(["0:EURange"])).read_value()
        assert units.NamespaceUri == UNECE_NAMESPACE_URI
        assert (units.UnitId, units.DisplayName.Text) == (variable.unit.unit_id, variable.unit.symbol)
        assert (eu_range.Low, eu_range.High) == variable.eu_range
        if variable.id in expected_units:
            code, symbol, unit_id = expected_units[variable.id]
            assert (variable.unit.code, units.DisplayName.Text, units.UnitId) == (code, symbol, unit_id)
    cell = served.node(pack_path("pack-01", "cells/cell01/voltage"))
    assert await cell.read_type_definition() == ANALOG_ITEM_TYPE
    eu = await (await cell.get_child(["0:EngineeringUnits"])).read_value()
    assert eu.DisplayName.Text == "V"


@shared
async def test_state_is_a_multistate_value_with_text(served: Served) -> None:
    state = served.node(pack_path("pack-03", "state"))
    assert await state.read_type_definition() == MULTI_STATE_VALUE_DISCRETE_TYPE
    assert await state.read_value() == int(PackState.COMM_LOST)
    enum_values = await (await state.get_child(["0:EnumValues"])).read_value()
    assert [(e.Value, e.DisplayName.Text) for e in enum_values] == [(int(s), s.name) for s in PackState]
    text = await (await state.get_child(["0:ValueAsText"])).read_value()
    assert text.Text == "COMM_LOST"
    contactor = served.node(pack_path("pack-01", "contactor_state"))
    assert await contactor.read_value() == int(ContactorState.CLOSED)


@shared
async def test_offline_pack_reports_bad_no_communication(served: Served) -> None:
    keys = ("voltage", "soc", "contactor_state", "cells/cell01/voltage", "temperatures/temperature01",
            "online", "charge_current_limit", "state", "ah_charged", "identity/serial_number")
    read = await read_all(served, [pack_path("pack-03", key) for key in keys])
    statuses = {key: status_name(read[pack_path("pack-03", key)]) for key in keys}
    assert statuses == {
        "voltage": "BadNoCommunication", "soc": "BadNoCommunication", "contactor_state": "BadNoCommunication",
        "cells/cell01/voltage": "BadNoCommunication", "temperatures/temperature01": "BadNoCommunication",
        "online": "Good", "charge_current_limit": "Good", "state": "Good", "ah_charged": "Good",
        "identity/serial_number": "Good",
    }
    assert value_of(read[pack_path("pack-03", "online")]) is False
    assert value_of(read[pack_path("pack-03", "charge_current_limit")]) == 0.0
    never_seen = await read_all(served, [pack_path("pack-99", "soc")])
    assert status_name(never_seen[pack_path("pack-99", "soc")]) == "BadWaitingForInitialData"


@shared
async def test_alarm_masks(served: Served) -> None:
    read = await read_all(served, [pack_path("pack-02", key) for key in
                                   ("alarm_mask_warning", "alarm_mask_alarm", "alarm_mask_trip",
                                    "highest_severity")])
    assert [value_of(value) for value in read.values()] == [
        AlarmCode.CELL_OVERTEMPERATURE.bit, 0, AlarmCode.SENSOR_FAULT.bit, int(Severity.TRIP)]


def estimator_nodes(pack: PackSnapshot) -> dict[str, float]:
    """NodeId path -> the snapshot value it must carry, for every value the state estimator adds,
    written out from the snapshot attributes (not through node_values)."""
    expected = {"soc_sigma": pack.soc_sigma, "soh_resistance": pack.soh_resistance,
                "current_bias": pack.current_bias_a}
    for n, (sigma, capacity, resistance) in enumerate(
            zip(pack.cell_soc_sigma, pack.cell_capacity_ah, pack.cell_resistance_ohm, strict=True), start=1):
        expected |= {f"cells/cell{n:02d}/soc_sigma": sigma, f"cells/cell{n:02d}/capacity": capacity,
                     f"cells/cell{n:02d}/resistance": resistance}
    expected |= {f"time_at_temperature/band{n:02d}": s for n, s in enumerate(pack.time_at_temperature_s, 1)}
    expected |= {f"time_at_soc/band{n:02d}": s for n, s in enumerate(pack.time_at_soc_s, 1)}
    return {pack_path(pack.pack_id, key): value for key, value in expected.items()}


@shared
async def test_estimator_values_read_back_equal_the_snapshot(served: Served) -> None:
    online = served.snapshot.pack("pack-01")
    expected = estimator_nodes(online) | estimator_nodes(served.snapshot.pack("pack-02"))
    assert len(expected) == 2 * (3 + 32 * 3 + 10 + 10)
    read = await read_all(served, list(expected))
    for path, value in expected.items():
        assert status_name(read[path]) == "Good", path
        assert value_of(read[path]) == value, path
    assert value_of(read[pack_path("pack-01", "current_bias")]) == -0.42
    assert value_of(read[pack_path("pack-01", "cells/cell32/capacity")]) == pytest.approx(204.1)
    assert value_of(read[pack_path("pack-02", "time_at_temperature/band06")]) == 7200.0 + 100.0 + 5


@shared
async def test_offline_pack_keeps_what_the_estimator_learned(served: Served) -> None:
    """SoC sigma goes Bad with the SoC; learned values (like SoH and capacity) stay Good."""
    offline = served.snapshot.pack("pack-03")
    assert not offline.online
    expected = estimator_nodes(offline)
    read = await read_all(served, list(expected))
    for path, value in expected.items():
        if path.endswith("soc_sigma"):
            assert status_name(read[path]) == "BadNoCommunication", path
            assert value_of(read[path]) is None, path
        else:
            assert status_name(read[path]) == "Good", path
            assert value_of(read[path]) == value, path


@shared
async def test_estimator_nodes_carry_units_and_ranges(served: Served) -> None:
    expected = {"cells/cell07/soc_sigma": ("C62", "1", (0.0, 0.3)),
                "cells/cell07/capacity": ("AMH", "A·h", (0.0, 500.0)),
                "cells/cell07/resistance": ("OHM", "Ω", (0.0, 0.01)),
                "time_at_temperature/band01": ("SEC", "s", (0.0, 1e9)),
                "time_at_soc/band10": ("SEC", "s", (0.0, 1e9)),
                "soc_sigma": ("C62", "1", (0.0, 0.3)), "current_bias": ("AMP", "A", (-20.0, 20.0))}
    for key, (code, symbol, eu_range) in expected.items():
        node = served.node(pack_path("pack-01", key))
        assert await node.read_type_definition() == ANALOG_ITEM_TYPE, key
        units = await (await node.get_child(["0:EngineeringUnits"])).read_value()
        assert (units.UnitId, units.DisplayName.Text, units.NamespaceUri) == (
            unece_unit_id(code), symbol, UNECE_NAMESPACE_URI), key
        low_high = await (await node.get_child(["0:EURange"])).read_value()
        assert (low_high.Low, low_high.High) == eu_range, key
    resistance = served.node(pack_path("pack-01", "cells/cell07/resistance"))
    description = (await resistance.read_description()).Text
    assert description == "learned cell DC resistance (10 s pulse), referred to 50 % SoC and 25 °C"


@shared
@pytest.mark.parametrize(("folder", "edges", "band05"), [
    ("time_at_temperature", TEMPERATURE_BAND_EDGES_C, "time online with the hottest sensor from 10 °C to under 20 °C"),
    ("time_at_soc", SOC_BAND_EDGES, "time online with the pack SoC from 0.4 to under 0.5"),
])
async def test_histogram_bands_are_labelled(served: Served, folder: str, edges: tuple[float, ...],
                                            band05: str) -> None:
    """A SCADA engineer can label the bands from the server alone: BandEdges and each band's description."""
    for pack_id in ("pack-01", "pack-99"):  # the edges are there before a pack is ever seen
        band_edges = served.node(pack_path(pack_id, f"{folder}/band_edges"))
        assert await band_edges.read_type_definition() == PROPERTY_TYPE
        assert (await band_edges.read_browse_name()).to_string() == "2:BandEdges"
        data_value = await band_edges.read_data_value()
        assert status_name(data_value) == "Good"
        assert value_of(data_value) == list(edges)
        assert await band_edges.read_data_type() == ua.NodeId(ua.Int32(11), ua.Int16(0))  # Double
        assert await band_edges.read_value_rank() == 1
    description = (await served.node(pack_path("pack-01", f"{folder}/band_edges")).read_description()).Text
    assert "Band01 is under the first edge" in description
    assert "Band10 at or above the last" in description
    band = served.node(pack_path("pack-01", f"{folder}/band05"))
    assert (await band.read_description()).Text == band05
    assert (await band.read_display_name()).Text == "Band05"


async def _value_is(node: Node, expected: object) -> bool:
    return value_of(await node.read_data_value(raise_on_bad_status=False)) == expected


async def _status_is(node: Node, name: str) -> bool:
    return status_name(await node.read_data_value(raise_on_bad_status=False)) == name


async def test_values_follow_new_snapshots(opcua_server: RunningOpcUa, opcua_client: Client) -> None:
    soc = opcua_client.get_node(opcua_server.node_id(pack_path("pack-01", "soc")))
    site_soc = opcua_client.get_node(opcua_server.node_id(site_path("soc")))
    assert await _status_is(site_soc, "BadWaitingForInitialData")  # nothing published yet
    assert await _status_is(soc, "BadWaitingForInitialData")

    first = served_snapshot(sequence=1)
    await opcua_server.hub.publish(first)
    await eventually(lambda: _value_is(soc, 0.56))
    offline = dataclasses.replace(first.packs[0], soc=0.61, online=False)
    await opcua_server.hub.publish(dataclasses.replace(first, sequence=2, packs=(offline, *first.packs[1:])))
    await eventually(lambda: _status_is(soc, "BadNoCommunication"))
    back = dataclasses.replace(offline, online=True)
    await opcua_server.hub.publish(dataclasses.replace(first, sequence=3, packs=(back, *first.packs[1:])))
    await eventually(lambda: _value_is(soc, 0.61))
    assert status_name(await soc.read_data_value()) == "Good"


async def test_writer_writes_only_what_changed(native_node_map: NodeMap) -> None:
    server = Server()
    await server.init()
    namespace = await server.register_namespace("urn:test")
    space = AddressSpace(native_node_map, namespace, "site", ["pack-01", "pack-02"], 0.5)
    await space.build(server)
    writer = ValueWriter(server, space, ValueTable(server))
    first = make_snapshot(packs=2, offline=(1,))
    assert await writer.apply(first) == len(space.slots)
    assert await writer.apply(dataclasses.replace(first, sequence=2)) == 0  # NaN stays NaN: no rewrite
    pack = dataclasses.replace(first.packs[0], soc=0.7)
    assert await writer.apply(dataclasses.replace(first, sequence=3, packs=(pack, first.packs[1]))) == 1
    offline = dataclasses.replace(pack, online=False, soc=0.71)  # only the live values turn bad
    live = sum(1 for v in native_node_map.pack if v.live) + 32 * 3 + 8  # cell voltage, SoC, SoC sigma
    assert await writer.apply(dataclasses.replace(first, sequence=4, packs=(offline, first.packs[1]))) == live + 1
    # a configured pack missing from a snapshot: all it had turns Bad_NoCommunication
    await writer.apply(dataclasses.replace(first, sequence=5, packs=(first.packs[0],)))
    missing = server.get_node(f"ns={namespace};s=site/packs/pack-02/charge_current_limit")
    data_value = await missing.read_data_value(raise_on_bad_status=False)
    assert status_name(data_value) == "BadNoCommunication"


async def test_port_in_use_is_an_adapter_error_naming_the_setting(native_node_map: NodeMap) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        output = OpcUaOutput(OpcUaSettings(host="127.0.0.1", port=port), SnapshotHub(), native_node_map,
                             ["pack-01"], "site")
        with pytest.raises(AdapterError) as raised:
            await asyncio.wait_for(output.run(), timeout=15)
    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message
    assert "BMSGW_OPCUA__PORT" in message
    assert "[opcua]" in message
    assert not output.ready.is_set()
