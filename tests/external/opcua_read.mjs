// Reads the gateway's OPC UA address space with node-opcua (an independent implementation) and
// prints what it saw as one JSON line (node-opcua may log other lines). Used by
// tests/adapters/test_opcua_external.py.
//
//   node opcua_read.mjs <endpoint url> <namespace uri> <pack id> [<offline pack id> [<request> ...]]
//
// The namespace index is looked up by URI, as a client should; the NodeIds follow docs/opcua.md.
// Each further <request> names a node by its NodeId path below `site/packs/`:
//   <path>               read its value          -> result.values[<path>] = {status, value}
//   description:<path>   read its Description    -> result.descriptions[<path>] = text
//   browse:<path>        browse its children     -> result.children[<path>] = [browse names]
// Values are made JSON-plain: arrays as arrays, EUInformation as {unitId, displayName, namespaceUri},
// Range as {low, high}.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { AttributeIds, MessageSecurityMode, OPCUAClient, SecurityPolicy } from "node-opcua-client";

const [endpoint, namespaceUri, packId, offlinePackId, ...requests] = process.argv.slice(2);

// Keep the client's PKI (its self-signed certificate) inside node_modules, not in the home directory.
const here = path.dirname(fileURLToPath(import.meta.url));
const clientCertificateManager = new OPCUACertificateManager({
  rootFolder: path.join(here, "node_modules", ".opcua-pki"),
  automaticallyAcceptUnknownCertificate: true,
});

const client = OPCUAClient.create({
  clientCertificateManager,
  applicationName: "bms-gateway-external-test",
  endpointMustExist: false,
  securityMode: MessageSecurityMode.None,
  securityPolicy: SecurityPolicy.None,
  connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
});

function plain(value) {
  if (value === undefined || value === null) return null;
  if (ArrayBuffer.isView(value) || Array.isArray(value)) return Array.from(value, plain);
  if (typeof value === "object" && "unitId" in value) {
    return { unitId: value.unitId, displayName: value.displayName.text, namespaceUri: value.namespaceUri };
  }
  if (typeof value === "object" && "low" in value && "high" in value) return { low: value.low, high: value.high };
  return value;
}

function describe(dataValue) {
  const value = dataValue.value ? dataValue.value.value : null;
  return { status: dataValue.statusCode.name, value: plain(value) };
}

async function answer(session, ns, result) {
  const nodeId = (path) => `ns=${ns};s=site/packs/${path}`;
  const read = async (paths, attributeId) =>
    paths.length === 0 ? [] : session.read(paths.map((path) => ({ nodeId: nodeId(path), attributeId })));
  const reads = requests.filter((request) => !request.includes(":"));
  const values = await read(reads, AttributeIds.Value);
  result.values = Object.fromEntries(reads.map((path, i) => [path, describe(values[i])]));
  const described = requests.filter((r) => r.startsWith("description:")).map((r) => r.slice("description:".length));
  const descriptions = await read(described, AttributeIds.Description);
  result.descriptions = Object.fromEntries(described.map((path, i) => [path, descriptions[i].value.value.text]));
  result.children = {};
  for (const request of requests.filter((r) => r.startsWith("browse:"))) {
    const path = request.slice("browse:".length);
    const browsed = await session.browse(nodeId(path));
    result.children[path] = browsed.references.map((reference) => reference.browseName.name);
  }
}

await client.connect(endpoint);
const session = await client.createSession();
try {
  const namespaces = await session.readNamespaceArray();
  const ns = namespaces.indexOf(namespaceUri);
  const pack = `ns=${ns};s=site/packs/${packId}`;
  const browsed = await session.browse(pack);
  const [soc, units, range] = await session.read([
    { nodeId: `${pack}/soc`, attributeId: AttributeIds.Value },
    { nodeId: `${pack}/soc/engineering_units`, attributeId: AttributeIds.Value },
    { nodeId: `${pack}/soc/eu_range`, attributeId: AttributeIds.Value },
  ]);
  const eu = units.value.value;
  const result = {
    namespaceIndex: ns,
    packChildren: browsed.references.map((reference) => reference.browseName.name),
    soc: describe(soc),
    socUnit: { unitId: eu.unitId, displayName: eu.displayName.text, namespaceUri: eu.namespaceUri },
    socRange: { low: range.value.value.low, high: range.value.value.high },
  };
  if (offlinePackId) {
    const [voltage] = await session.read([
      { nodeId: `ns=${ns};s=site/packs/${offlinePackId}/voltage`, attributeId: AttributeIds.Value },
    ]);
    result.offlineVoltage = describe(voltage);
  }
  await answer(session, ns, result);
  console.log(JSON.stringify(result));
} finally {
  await session.close();
  await client.disconnect();
}
