"""`bms-gateway opcua-nodeset`: the information model as a NodeSet2 file, checked three ways.

1. As XML: the model table, namespaces, aliases, the configured elements (24 cells on one pack, 32 on the
   other), the ExtensionObjects' XML encodings.
2. Imported with asyncua's XmlImporter into a fresh server: the same nodes (NodeIds, browse names, classes,
   type definitions) as the address space the OPC UA output builds for the same configuration.
3. Independently (marked `external`): validated against the OPC Foundation's UANodeSet.xsd by libxml2
   and loaded by node-opcua's address space with the standard nodeset (tests/external/opcua_nodeset_load.mjs);
   node-opcua then instantiates PackType from the file alone. Both tools are npm packages installed on
   demand into tests/external/node_modules; without node / npm the test is skipped, except on CI (CI=true).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as Et
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.common.xmlimporter import XmlImporter

import gateway
from gateway.adapters.opcua_nodeset import namespace_node_ids
from gateway.adapters.opcua_types import Server
from gateway.codec.node_map import ENUMS, load_node_map
from gateway.codec.node_model import UNECE_NAMESPACE_URI, NodeMap, NodeVariable, unece_unit_id
from gateway.config_loader import load_settings
from gateway.opcua_nodeset_command import prepare_configured
from gateway.settings import GatewaySettings
from tests.external_tools import EXTERNAL_DIR, node_with

ROOT = Path(__file__).resolve().parents[2]
LOADER = EXTERNAL_DIR / "opcua_nodeset_load.mjs"
NODE_PACKAGES = ("node-opcua-address-space", "node-opcua-nodesets", "xmllint-wasm")
UA = {"ua": "http://opcfoundation.org/UA/2011/03/UANodeSet.xsd",
      "uax": "http://opcfoundation.org/UA/2008/02/Types.xsd"}
NODE_ELEMENTS = ("UAObject", "UAVariable", "UAMethod", "UAObjectType", "UAVariableType", "UADataType",
                 "UAReferenceType", "UAView")
SITE_TOML = """
site_name = "mine-north"

[[buses]]
name = "can0"
interface = "virtual"
channel = "nodeset-test"
bitrate = 500000

[[packs]]
id = "truck-07"
bus = "can0"
node_address = 1
series_cells = 24
temperature_sensors = 4

[[packs]]
id = "truck-08"
bus = "can0"
node_address = 2
"""
EXPORT_TIMEOUT_S = 300
NAMESPACE_URI = "urn:bms-gateway:site"


@dataclass(frozen=True)
class Exported:
    path: Path
    config: Path
    stdout: str
    root: Et.Element

    @property
    def settings(self) -> GatewaySettings:
        return load_settings(self.config)

    def nodes(self) -> list[Et.Element]:
        return [child for child in self.root if child.tag.removeprefix(f"{{{UA['ua']}}}") in NODE_ELEMENTS]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), environment.get("PYTHONPATH"))))
    return subprocess.run([sys.executable, "-m", "gateway", "opcua-nodeset", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    folder = tmp_path_factory.mktemp("nodeset")
    config = folder / "site.toml"
    config.write_text(SITE_TOML, encoding="utf-8")
    result = run_cli("--config", str(config), "--output", "site.NodeSet2.xml", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    path = folder / "site.NodeSet2.xml"
    return Exported(path, config, result.stdout, Et.parse(path).getroot())


def test_cli_writes_a_nodeset_with_its_model_table(exported: Exported) -> None:
    root = exported.root
    assert root.tag == f"{{{UA['ua']}}}UANodeSet"
    assert [uri.text for uri in root.findall("ua:NamespaceUris/ua:Uri", UA)] == [NAMESPACE_URI]
    model = root.find("ua:Models/ua:Model", UA)
    assert model is not None
    assert (model.get("ModelUri"), model.get("Version")) == (NAMESPACE_URI, gateway.__version__)
    assert model.get("PublicationDate") == root.get("LastModified") is not None
    required = model.find("ua:RequiredModel", UA)
    assert required is not None
    assert required.get("ModelUri") == "http://opcfoundation.org/UA/"
    assert [child.tag.split("}")[1] for child in root][:3] == ["NamespaceUris", "Models", "Aliases"]
    aliases = {alias.get("Alias"): alias.text for alias in root.findall("ua:Aliases/ua:Alias", UA)}
    assert {"HasComponent": "i=47", "HasProperty": "i=46", "HasTypeDefinition": "i=40", "HasSubtype": "i=45",
            "HasModellingRule": "i=37", "Organizes": "i=35", "Double": "i=11"}.items() <= aliases.items()
    ids = [node.get("NodeId") or "" for node in exported.nodes()]
    assert all(node_id.startswith("ns=1;") for node_id in ids)  # all in the project namespace, the file's 1
    assert len(ids) == len(set(ids))
    assert f"{len(ids)} nodes of {NAMESPACE_URI}" in exported.stdout
    references = {reference.get("ReferenceType") for reference in root.iter(f"{{{UA['ua']}}}Reference")}
    assert references <= set(aliases), references - set(aliases)  # every reference type has its alias


def test_cli_sizes_the_arrays_as_configured(exported: Exported) -> None:
    ids = {node.get("NodeId") for node in exported.nodes()}
    for pack, cells, sensors in (("truck-07", 24, 4), ("truck-08", 32, 8)):
        prefix = f"ns=1;s=site/packs/{pack}"
        assert f"{prefix}/cells/cell{cells:02d}/voltage" in ids
        assert f"{prefix}/cells/cell{cells + 1:02d}" not in ids
        assert f"{prefix}/temperatures/temperature{sensors:02d}" in ids
        assert f"{prefix}/temperatures/temperature{sensors + 1:02d}" not in ids
        assert f"{prefix}/time_at_soc/band10" in ids
    for node_id in ("ns=1;s=types/PackType", "ns=1;s=types/CellType", "ns=1;s=types/PackState",
                    "ns=1;s=gateway", "ns=1;s=site"):
        assert node_id in ids


def test_extension_objects_name_their_xml_encoding(exported: Exported) -> None:
    type_ids = {identifier.text for identifier in exported.root.iter(f"{{{UA['uax']}}}Identifier")}
    assert {"i=7616", "i=885", "i=888"} <= type_ids  # EnumValueType, Range, EUInformation: DefaultXml
    assert not {"i=7594", "i=884", "i=887"} & type_ids  # not the DataTypes themselves


def test_start_time_is_not_part_of_the_model(exported: Exported) -> None:
    start_time = [node for node in exported.nodes() if node.get("NodeId") == "ns=1;s=gateway/start_time"]
    assert len(start_time) == 1
    assert start_time[0].find("ua:Value", UA) is None
    version = [node for node in exported.nodes() if node.get("NodeId") == "ns=1;s=gateway/software_version"]
    value = version[0].find("ua:Value/uax:String", UA)
    assert value is not None
    assert value.text == gateway.__version__


async def describe(server: Server, node_ids: list[ua.NodeId]) -> dict[str, tuple[str, str, str]]:
    """NodeId identifier -> (browse name, node class, type definition) of each node."""
    found = {}
    for node_id in node_ids:
        node = server.get_node(node_id)
        browse_name, node_class = await node.read_browse_name(), await node.read_node_class()
        type_definition = ""
        if node_class in (ua.NodeClass.Object, ua.NodeClass.Variable):
            definition = await node.read_type_definition()
            type_definition = "" if definition is None else definition.to_string()
        found[str(node_id.Identifier)] = (browse_name.Name, node_class.name, type_definition)
    return found


async def test_the_nodeset_imports_as_the_address_space_the_output_builds(exported: Exported) -> None:
    imported = Server()
    await imported.init()
    nodes: list[ua.NodeId] = await XmlImporter(imported).import_xml(xmlpath=str(exported.path))
    namespace = (await imported.get_namespace_array()).index(NAMESPACE_URI)
    live, space = await prepare_configured(exported.settings)
    live_ids = namespace_node_ids(live, space.namespace)
    assert len(nodes) == len(exported.nodes()) == len(live_ids)
    assert {node_id.NamespaceIndex for node_id in nodes} == {namespace}
    assert await describe(imported, nodes) == await describe(live, live_ids)
    soc = imported.get_node(ua.NodeId(ua.String("site/packs/truck-07/soc"), ua.Int16(namespace)))
    units = await (await soc.get_child("0:EngineeringUnits")).read_value()
    assert (units.UnitId, units.NamespaceUri) == (unece_unit_id("C62"), UNECE_NAMESPACE_URI)
    state_type = imported.get_node(ua.NodeId(ua.String("types/ContactorState"), ua.Int16(namespace)))
    definition = await state_type.read_data_type_definition()
    assert [(f.Value, f.Name) for f in definition.Fields] == [(int(m), m.name) for m in ENUMS["ContactorState"]]


def test_demo_nodeset_goes_to_standard_output(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    root = Et.fromstring(result.stdout.encode())
    packs = {node.get("BrowseName") for node in root.findall("ua:UAObject", UA)
             if (node.get("NodeId") or "").count("/") == 2 and "site/packs/" in (node.get("NodeId") or "")}
    assert packs == {f"1:pack-{n:02d}" for n in range(1, 5)}
    assert list(tmp_path.iterdir()) == []  # no certificate, key or store created for an export


def test_output_folder_must_exist(tmp_path: Path) -> None:
    result = run_cli("--output", str(tmp_path / "missing" / "x.xml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "missing" in result.stderr


# --- the independent check: libxml2 against UANodeSet.xsd, node-opcua's address space ----------------------



@pytest.fixture(scope="session")
def node_loader() -> str:
    """The node executable, with node-opcua's address space, its nodesets and xmllint-wasm installed."""
    return node_with(NODE_PACKAGES, "to load the NodeSet with node-opcua")


def _load_with_node_opcua(node: str, exported: Exported, pack_id: str) -> dict[str, Any]:
    result = subprocess.run([node, str(LOADER), str(exported.path), NAMESPACE_URI, pack_id], cwd=EXTERNAL_DIR,
                            capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]  # node-opcua logs too
    assert lines, result.stdout[-3000:]
    loaded: dict[str, Any] = json.loads(lines[-1])
    return loaded


def _expected_member(variable: NodeVariable, *, properties: bool = False) -> dict[str, Any]:
    if properties:
        type_definition = "PropertyType"
    elif variable.unit is not None:
        type_definition = "AnalogItemType"
    elif variable.enum is not None:
        type_definition = "MultiStateValueDiscreteType"
    else:
        type_definition = "BaseDataVariableType"
    return {"nodeClass": "Variable", "typeDefinition": type_definition, "modellingRule": "Mandatory",
            "dataType": str(variable.data_type)}


def _expected_pack_type(node_map: NodeMap) -> dict[str, dict[str, Any]]:
    """The declarations node-opcua must find on PackType, written out from the node map."""
    expected = {v.browse_name: _expected_member(v) for v in node_map.pack}
    for group in node_map.arrays:
        expected[group.browse_name] = {"nodeClass": "Object", "typeDefinition": "FolderType",
                                       "modellingRule": "Mandatory"}
    identity = node_map.identity.browse_name
    expected[identity] = {"nodeClass": "Object", "typeDefinition": "BaseObjectType", "modellingRule": "Mandatory"}
    for prop in node_map.identity.properties:
        expected[f"{identity}/{prop.browse_name}"] = _expected_member(prop, properties=True)
    return expected


@pytest.mark.external
def test_node_opcua_validates_and_loads_the_nodeset(node_loader: str, exported: Exported) -> None:
    node_map = load_node_map(exported.settings.mappings_dir, "native")
    loaded = _load_with_node_opcua(node_loader, exported, "truck-07")

    assert loaded["schema"] == {"valid": True, "errors": []}
    assert loaded["nodeCount"] == len(exported.nodes())
    types = loaded["types"]
    assert {name: t["supertype"] for name, t in types.items()} == dict.fromkeys(
        ("GatewayType", "SiteType", "PackType", "CellType"), "BaseObjectType")
    pack_members = types["PackType"]["members"]
    expected = _expected_pack_type(node_map)
    assert {path: pack_members.get(path) for path in expected} == expected
    assert pack_members["Cells/<Cell>"] == {"nodeClass": "Object", "typeDefinition": "CellType",
                                            "modellingRule": "OptionalPlaceholder"}
    assert pack_members["TimeAtSoC/BandEdges"]["modellingRule"] == "Mandatory"
    assert pack_members["SoC/EURange"] == {"nodeClass": "Variable", "typeDefinition": "PropertyType",
                                           "modellingRule": "Mandatory", "dataType": "Range"}
    cell_variables = node_map.arrays[0].variables
    assert types["CellType"]["members"] == {
        **{v.browse_name: _expected_member(v) for v in cell_variables},
        **{f"{v.browse_name}/{p}": types["CellType"]["members"][f"{v.browse_name}/{p}"]
           for v in cell_variables for p in ("EURange", "EngineeringUnits")}}
    assert set(types["GatewayType"]["members"]) == {"SoftwareVersion", "SiteName", "NodeMap", "StartTime"}

    for name, enumeration in loaded["enumerations"].items():
        values = [[int(member), member.name] for member in ENUMS[name]]
        assert enumeration == {"supertype": "Enumeration", "definition": values, "enumValues": values}, name

    pack = loaded["pack"]
    mapped = [v.browse_name for v in node_map.pack] + [g.browse_name for g in node_map.arrays] + ["Identity"]
    assert [child for child in pack["children"] if child in mapped] == mapped
    assert (pack["typeDefinition"], pack["siteTypeDefinition"]) == ("PackType", "SiteType")
    assert (pack["cells"], pack["temperatures"]) == (24, 4)
    assert pack["cell01"] == {"typeDefinition": "CellType", "children": [v.browse_name for v in cell_variables]}
    assert pack["socUnit"] == {"unitId": unece_unit_id("C62"), "displayName": "1",
                               "namespaceUri": UNECE_NAMESPACE_URI}
    assert pack["socRange"] == {"low": 0, "high": 1}
    assert pack["stateEnumValues"] == [[int(member), member.name] for member in ENUMS["PackState"]]
    assert pack["bandEdges"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert loaded["gateway"]["typeDefinition"] == "GatewayType"
    assert loaded["gateway"]["organizedBy"] == "Objects"
    assert {k: v for k, v in loaded["gateway"]["properties"].items() if k != "StartTime"} == {
        "SoftwareVersion": gateway.__version__, "SiteName": "mine-north", "NodeMap": "native"}
    # a tool instantiating PackType from the file alone gets every Mandatory member, no placeholder
    instantiated = set(loaded["instantiated"])
    assert {"SoC", "SoC/EURange", "State/EnumValues", "Cells", "TimeAtSoC/BandEdges",
            "Identity/SerialNumber"} <= instantiated
    assert set(expected) <= instantiated
    assert not any("<" in path for path in instantiated)
