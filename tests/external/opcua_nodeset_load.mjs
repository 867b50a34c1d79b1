// Loads the gateway's exported NodeSet2 file with node-opcua (an independent implementation) and prints
// what it found as one JSON line (node-opcua may log other lines). Used by
// tests/adapters/test_opcua_nodeset.py.
//
//   node opcua_nodeset_load.mjs <NodeSet2 file> <namespace uri> <pack id>
//
// 1. The file is validated against the OPC Foundation's UANodeSet.xsd (shipped by node-opcua-nodesets)
//    with libxml2 (xmllint-wasm):                                 -> result.schema = {valid, errors}
// 2. node-opcua's generateAddressSpace loads the standard nodeset and the file, as a server or an
//    engineering tool would:
//      result.namespaceIndex, result.nodeCount                      the namespace and its node count
//      result.types[<ObjectType>] = {supertype, members}          members: browse path below the type ->
//                                                                   {nodeClass, typeDefinition, modellingRule, dataType}
//      result.enumerations[<DataType>] = {supertype, definition, enumValues}   [[value, name], ...]
//      result.pack = {...}                                        the pack's type, children, a cell, units ...
//      result.gateway = {typeDefinition, properties}
//      result.instantiated = [...]                                browse paths of a PackType object that
//                                                                   node-opcua instantiates from the type alone
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import addressSpaceModule from "node-opcua-address-space";
import { BrowseDirection, NodeClass } from "node-opcua-client";
import nodeJS from "node-opcua-address-space/nodeJS.js";
import nodesetsModule from "node-opcua-nodesets";
import xmllint from "xmllint-wasm";

// CommonJS packages: their names come from the default export.
const { AddressSpace } = addressSpaceModule;
const { generateAddressSpace } = nodeJS;
const { nodesets } = nodesetsModule;
const { validateXML, memoryPages } = xmllint;
const [file, namespaceUri, packId] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const xsd = path.join(here, "node_modules", "node-opcua-nodesets", "nodesets", "UANodeSet.xsd");

async function validate() {
  const result = await validateXML({
    xml: [{ fileName: path.basename(file), contents: fs.readFileSync(file, "utf8") }],
    schema: [fs.readFileSync(xsd, "utf8")],
    initialMemoryPages: 256,
    maxMemoryPages: 2 * memoryPages.GiB,
  });
  return { valid: result.valid, errors: result.errors.slice(0, 20).map((e) => e.rawMessage) };
}

const name = (node) => (node ? node.browseName.name : null);
// node-opcua holds an Int64 (such as an EnumField's value) as [high, low] 32-bit words.
const int64 = (value) => (Array.isArray(value) ? value[0] * 2 ** 32 + value[1] : Number(value));

function hierarchicalChildren(node) {
  return node.findReferencesExAsObject("HierarchicalReferences", BrowseDirection.Forward);
}

function plain(value) {
  if (value === undefined || value === null) return null;
  if (ArrayBuffer.isView(value) || Array.isArray(value)) return Array.from(value, plain);
  if (typeof value === "object" && "unitId" in value) {
    return { unitId: value.unitId, displayName: value.displayName.text, namespaceUri: value.namespaceUri };
  }
  if (typeof value === "object" && "low" in value && "high" in value) return { low: value.low, high: value.high };
  if (typeof value === "object" && "displayName" in value && "value" in value) {
    return [int64(value.value), value.displayName.text];
  }
  if (typeof value === "bigint") return Number(value);
  return value;
}

function valueOf(node) {
  const dataValue = node.readValue();
  return dataValue.value ? plain(dataValue.value.value) : null;
}

function describeMember(node) {
  const described = {
    nodeClass: NodeClass[node.nodeClass],
    typeDefinition: name(node.typeDefinitionObj),
    modellingRule: node.modellingRule ?? null,
  };
  if (node.nodeClass === NodeClass.Variable) described.dataType = name(node.addressSpace.findNode(node.dataType));
  return described;
}

function members(node, prefix = "", found = {}) {
  for (const child of hierarchicalChildren(node)) {
    if (child.nodeClass === NodeClass.Method) continue;
    const key = prefix + name(child);
    found[key] = describeMember(child);
    members(child, `${key}/`, found);
  }
  return found;
}

function paths(node, prefix = "", found = []) {
  for (const child of hierarchicalChildren(node)) {
    const key = prefix + name(child);
    found.push(key);
    paths(child, `${key}/`, found);
  }
  return found;
}

const result = { schema: await validate() };
const addressSpace = AddressSpace.create();
try {
  await generateAddressSpace(addressSpace, [nodesets.standard, file]);
  const namespace = addressSpace.getNamespace(namespaceUri);
  const ns = namespace.index;
  result.namespaceIndex = ns;
  result.nodeCount = [...namespace.nodeIterator()].length;
  const node = (id) => addressSpace.findNode(`ns=${ns};s=${id}`);

  result.types = {};
  for (const typeName of ["GatewayType", "SiteType", "PackType", "CellType"]) {
    const type = namespace.findObjectType(typeName);
    result.types[typeName] = type ? { supertype: name(type.subtypeOfObj), members: members(type) } : null;
  }
  result.enumerations = {};
  for (const typeName of ["PackState", "ContactorState", "Severity", "AdmissionStatus", "BalancingStatus"]) {
    const dataType = namespace.findDataType(typeName);
    if (!dataType) {
      result.enumerations[typeName] = null;
      continue;
    }
    const definition = dataType.getDefinition();
    result.enumerations[typeName] = {
      supertype: name(dataType.subtypeOfObj),
      definition: definition.fields.map((field) => [int64(field.value), field.name]),
      enumValues: valueOf(dataType.getChildByName("EnumValues")),
    };
  }

  const pack = node(`site/packs/${packId}`);
  const soc = node(`site/packs/${packId}/soc`);
  const cells = node(`site/packs/${packId}/cells`);
  const cell01 = node(`site/packs/${packId}/cells/cell01`);
  const state = node(`site/packs/${packId}/state`);
  result.pack = {
    typeDefinition: name(pack.typeDefinitionObj),
    children: hierarchicalChildren(pack).filter((c) => c.nodeClass !== NodeClass.Method).map(name),
    siteTypeDefinition: name(node("site").typeDefinitionObj),
    cells: hierarchicalChildren(cells).length,
    temperatures: hierarchicalChildren(node(`site/packs/${packId}/temperatures`)).length,
    cell01: { typeDefinition: name(cell01.typeDefinitionObj), children: hierarchicalChildren(cell01).map(name) },
    socTypeDefinition: name(soc.typeDefinitionObj),
    socUnit: valueOf(soc.getChildByName("EngineeringUnits")),
    socRange: valueOf(soc.getChildByName("EURange")),
    stateEnumValues: valueOf(state.getChildByName("EnumValues")),
    bandEdges: valueOf(node(`site/packs/${packId}/time_at_soc/band_edges`)),
  };
  const gateway = node("gateway");
  result.gateway = {
    typeDefinition: name(gateway.typeDefinitionObj),
    organizedBy: name(gateway.findReferencesExAsObject("Organizes", BrowseDirection.Inverse)[0]),
    properties: Object.fromEntries(gateway.getProperties().map((p) => [name(p), valueOf(p)])),
  };

  const probe = namespace.findObjectType("PackType").instantiate({
    browseName: "ProbePack",
    organizedBy: addressSpace.rootFolder.objects,
  });
  result.instantiated = paths(probe);
} finally {
  addressSpace.dispose();
}
console.log(JSON.stringify(result));
