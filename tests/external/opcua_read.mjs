// Reads the gateway's OPC UA address space with node-opcua (an independent implementation) and
// prints what it saw as one JSON line (node-opcua may log other lines). Used by
// tests/adapters/test_opcua_external.py.
//
//   node opcua_read.mjs <endpoint url> <namespace uri> <pack id> [<offline pack id>]
//
// The namespace index is looked up by URI, as a client should; the NodeIds follow docs/opcua.md.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { AttributeIds, MessageSecurityMode, OPCUAClient, SecurityPolicy } from "node-opcua-client";

const [endpoint, namespaceUri, packId, offlinePackId] = process.argv.slice(2);

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

function describe(dataValue) {
  const value = dataValue.value ? dataValue.value.value : null;
  return { status: dataValue.statusCode.name, value: value === undefined ? null : value };
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
  console.log(JSON.stringify(result));
} finally {
  await session.close();
  await client.disconnect();
}
