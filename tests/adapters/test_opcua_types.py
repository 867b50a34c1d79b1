"""The information model, browsed with the real asyncua client: object types with their InstanceDeclarations,
instances typed by them, the enumerations as DataTypes, the gateway object.

A type's declarations are compared with an instance's members attribute by attribute (NodeClass, type
definition, DataType, browse names), so a SCADA template built on the type fits every instance.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua
from asyncua.common.node import Node

import gateway
from gateway.adapters.opcua_tree import AddressSpace
from gateway.adapters.opcua_types import Server
from gateway.codec.node_map import ENUMS
from gateway.codec.node_model import NodeMap, pack_path, type_path
from gateway.codec.node_values import element_count
from tests.adapters.conftest_opcua import (
    Served,
    native_node_map_fixture,  # noqa: F401
    served_fixture,  # noqa: F401
)
from tests.factories import make_pack

shared = pytest.mark.asyncio(loop_scope="module")
MANDATORY = ua.NodeId(ua.Int32(78), ua.Int16(0))
OPTIONAL_PLACEHOLDER = ua.NodeId(ua.Int32(11508), ua.Int16(0))
BASE_OBJECT_TYPE = ua.NodeId(ua.Int32(58), ua.Int16(0))
ENUMERATION = ua.NodeId(ua.Int32(29), ua.Int16(0))
HAS_MODELLING_RULE = 37
HAS_SUBTYPE = 45
Member = tuple[str, str, str]  # (NodeClass, type definition, DataType) as strings


async def members(node: Node, prefix: str = "") -> dict[str, Member]:
    """Browse path (browse names joined by /) -> what the member is, for every Object and Variable below."""
    found: dict[str, Member] = {}
    for child in await node.get_children(nodeclassmask=ua.NodeClass.Object | ua.NodeClass.Variable):
        name = (await child.read_browse_name()).to_string()
        node_class = await child.read_node_class()
        data_type = (await child.read_data_type()).to_string() if node_class is ua.NodeClass.Variable else ""
        path = f"{prefix}{name}"
        found[path] = (node_class.name, (await child.read_type_definition()).to_string(), data_type)
        found |= await members(child, f"{path}/")
    return found


async def modelling_rule(node: Node) -> ua.NodeId | None:
    rules = await node.get_referenced_nodes(refs=HAS_MODELLING_RULE)
    return rules[0].nodeid if rules else None


@shared
@pytest.mark.parametrize("name", ["GatewayType", "SiteType", "PackType", "CellType"])
async def test_object_types_live_in_the_project_namespace(served: Served, name: str) -> None:
    node = served.node(type_path(name))
    assert node.nodeid.to_string() == f"ns=2;s=types/{name}"
    assert await node.read_node_class() is ua.NodeClass.ObjectType
    assert (await node.read_browse_name()).to_string() == f"2:{name}"
    assert (await node.read_attribute(ua.AttributeIds.IsAbstract)).Value.Value is False
    supertypes = await node.get_referenced_nodes(refs=HAS_SUBTYPE, direction=ua.BrowseDirection.Inverse)
    assert [s.nodeid for s in supertypes] == [BASE_OBJECT_TYPE]
    base_object_type = served.client.get_node(BASE_OBJECT_TYPE)
    assert node.nodeid in [n.nodeid for n in await base_object_type.get_children(refs=HAS_SUBTYPE)]


@shared
async def test_instances_have_their_type_definition(served: Served) -> None:
    expected = {"site": "SiteType", "gateway": "GatewayType", pack_path("pack-01"): "PackType",
                pack_path("pack-99"): "PackType", pack_path("pack-01", "cells/cell01"): "CellType",
                pack_path("pack-02", "cells/cell32"): "CellType"}
    for path, type_name in expected.items():
        assert (await served.node(path).read_type_definition()).to_string() == f"ns=2;s=types/{type_name}", path
    folders = ("site/packs", pack_path("pack-01", "cells"), pack_path("pack-01", "time_at_soc"))
    for path in folders:
        assert (await served.node(path).read_type_definition()).to_string() == "i=61", path  # FolderType


@shared
async def test_pack_type_declares_what_every_pack_has(served: Served) -> None:
    node_map = served.server.node_map
    declared = await members(served.node(type_path("PackType")))
    placeholders = {path for path in declared if "<" in path}
    assert placeholders >= {"2:Cells/2:<Cell>", "2:Temperatures/2:<Temperature>", "2:TimeAtSoC/2:<Band>",
                            "2:TimeAtTemperature/2:<Band>"}
    never_seen = await members(served.node(pack_path("pack-99")))  # no elements yet: exactly the declarations
    mapped = {f"2:{v.browse_name}" for v in node_map.pack} | {f"2:{g.browse_name}" for g in node_map.arrays} | {
        f"2:{node_map.identity.browse_name}"}
    ours = {path: member for path, member in never_seen.items() if path.split("/")[0] in mapped}
    assert ours == {path: member for path, member in declared.items() if path not in placeholders
                    and not any(path.startswith(f"{p}/") for p in placeholders)}
    assert declared["2:Cells/2:<Cell>"] == ("Object", "ns=2;s=types/CellType", "")
    assert declared["2:SoC"] == ("Variable", "i=2368", "i=11")  # AnalogItemType, Double
    assert declared["2:State"] == ("Variable", "i=11238", "i=6")  # MultiStateValueDiscreteType, Int32
    assert declared["2:Identity/2:SerialNumber"] == ("Variable", "i=68", "i=12")


@shared
async def test_declarations_are_mandatory_and_placeholders_optional(served: Served) -> None:
    pack_type = type_path("PackType")
    for path in ("soc", "soc/eu_range", "soc/engineering_units", "state/enum_values", "state/value_as_text",
                 "cells", "identity", "identity/serial_number", "time_at_soc/band_edges"):
        assert await modelling_rule(served.node(f"{pack_type}/{path}")) == MANDATORY, path
    for path in ("cells/<cell>", "temperatures/<temperature>", "time_at_soc/<band>"):
        assert await modelling_rule(served.node(f"{pack_type}/{path}")) == OPTIONAL_PLACEHOLDER, path
    assert await modelling_rule(served.node(f"{type_path('SiteType')}/packs/<pack>")) == OPTIONAL_PLACEHOLDER
    assert await modelling_rule(served.node(f"{type_path('CellType')}/voltage")) == MANDATORY
    assert await modelling_rule(served.node(pack_path("pack-01", "soc"))) is None  # instances have none


@shared
async def test_declarations_carry_the_units_ranges_and_band_edges(served: Served) -> None:
    for path in ("soc", "cells/cell01/voltage", "time_at_soc/band_edges", "state/enum_values"):
        instance = served.node(pack_path("pack-01", path))
        declaration = served.node(f"{type_path('PackType')}/{path.replace('cells/cell01', 'cells/<cell>')}")
        if path.startswith("cells/"):
            declaration = served.node(f"{type_path('CellType')}/voltage")
        if path in ("soc", "cells/cell01/voltage"):
            for prop in ("0:EngineeringUnits", "0:EURange"):
                declared = await (await declaration.get_child(prop)).read_value()
                assert declared == await (await instance.get_child(prop)).read_value(), (path, prop)
        else:
            assert await declaration.read_value() == await instance.read_value(), path


@shared
async def test_site_and_cell_types_declare_their_members(served: Served) -> None:
    site_declared = await members(served.node(type_path("SiteType")))
    site = await members(served.node("site"))
    site_vars = {f"2:{v.browse_name}" for v in served.server.node_map.site}
    assert {p: m for p, m in site.items() if p.split("/")[0] in site_vars} == {
        p: m for p, m in site_declared.items() if p.split("/")[0] in site_vars}
    assert site_declared["2:Packs"] == ("Object", "i=61", "")
    assert site_declared["2:Packs/2:<Pack>"] == ("Object", "ns=2;s=types/PackType", "")
    cell_declared = await members(served.node(type_path("CellType")))
    assert cell_declared == await members(served.node(pack_path("pack-01", "cells/cell07")))


@shared
@pytest.mark.parametrize("name", ["PackState", "ContactorState", "Severity", "AdmissionStatus", "BalancingStatus"])
async def test_enumerations_are_data_types_with_their_values(served: Served, name: str) -> None:
    node = served.node(type_path(name))
    assert node.nodeid.to_string() == f"ns=2;s=types/{name}"
    assert await node.read_node_class() is ua.NodeClass.DataType
    assert (await node.read_browse_name()).to_string() == f"2:{name}"
    supertypes = await node.get_referenced_nodes(refs=HAS_SUBTYPE, direction=ua.BrowseDirection.Inverse)
    assert [s.nodeid for s in supertypes] == [ENUMERATION]
    expected = [(int(member), member.name) for member in ENUMS[name]]
    enum_values = await (await node.get_child("0:EnumValues")).read_value()
    assert [(v.Value, v.DisplayName.Text) for v in enum_values] == expected
    definition = await node.read_data_type_definition()
    assert isinstance(definition, ua.EnumDefinition)
    assert [(f.Value, f.Name) for f in definition.Fields] == expected


@shared
async def test_enumerated_variables_stay_int32_with_the_same_values(served: Served) -> None:
    """Part 8 wants a number for a MultiStateValueDiscreteType: the variable is Int32, its EnumValues equal the
    enumeration's."""
    for path, name in (("state", "PackState"), ("contactor_state", "ContactorState"),
                       ("balancing_status", "BalancingStatus")):
        variable = served.node(pack_path("pack-01", path))
        assert (await variable.read_data_type()).to_string() == "i=6"
        on_variable = await (await variable.get_child("0:EnumValues")).read_value()
        on_type = await (await served.node(type_path(name)).get_child("0:EnumValues")).read_value()
        assert on_variable == on_type


@shared
async def test_gateway_object_describes_the_gateway(served: Served) -> None:
    objects = served.client.nodes.objects
    gateway_object = await objects.get_child(["2:BmsGateway"])
    assert gateway_object.nodeid.to_string() == "ns=2;s=gateway"
    properties = {(await p.read_browse_name()).Name: p for p in await gateway_object.get_properties()}
    assert list(properties) == ["SoftwareVersion", "SiteName", "NodeMap", "StartTime"]
    assert await properties["SoftwareVersion"].read_value() == gateway.__version__
    assert await properties["SiteName"].read_value() == "plant-7"
    assert await properties["NodeMap"].read_value() == "native"
    started = await properties["StartTime"].read_value()
    assert datetime.now(UTC) - timedelta(minutes=10) < started.replace(tzinfo=UTC) <= datetime.now(UTC)
    assert (await properties["StartTime"].read_data_type()).to_string() == "i=294"  # UtcTime
    assert properties["SiteName"].nodeid.to_string() == "ns=2;s=gateway/site_name"
    declared = await members(served.node(type_path("GatewayType")))
    assert declared == await members(gateway_object)


@pytest.mark.parametrize(("cells", "sensors"), [(24, 4), (32, 8)])
def test_configured_counts_match_what_a_snapshot_has(native_node_map: NodeMap, cells: int, sensors: int) -> None:
    pack = make_pack(cells=cells, sensors=sensors)
    for group in native_node_map.arrays:
        assert group.configured_count(cells, sensors) == element_count(group, pack), group.id


async def test_elements_added_from_counts_are_the_ones_a_snapshot_adds(native_node_map: NodeMap) -> None:
    server = Server()
    await server.init()
    namespace = await server.register_namespace("urn:test")
    space = AddressSpace(native_node_map, namespace, "site", ["pack-01", "pack-02"], 0.5)
    await space.build(server)
    await space.add_elements(server, "pack-01", {g.id: g.configured_count(24, 4) or 0 for g in native_node_map.arrays})
    built = set(space.slots)
    await space.ensure_elements(server, dataclasses.replace(make_pack(cells=24, sensors=4), pack_id="pack-01"))
    assert set(space.slots) == built  # nothing left to add
    await space.ensure_elements(server, dataclasses.replace(make_pack(cells=24, sensors=4), pack_id="pack-02"))
    assert {p.replace("pack-02", "pack-01") for p in space.slots if "pack-02" in p} == {
        p for p in built if "pack-01" in p}
