// Connects to the gateway's OPC UA server with node-opcua (an independent implementation) on a secure
// endpoint, logs in with a user name and password and reads values; prints what happened as one JSON line
// (node-opcua may log other lines). Used by tests/adapters/test_opcua_security_external.py.
//
//   node opcua_secure.mjs <endpoint url> <namespace uri> <client PKI folder> <certificate PEM> <key PEM>
//                         <application uri> <user> <password> <policy> <mode> [<path below site/> ...]
//
// The client PKI folder holds node-opcua's trust list: the test puts the gateway's server certificate in
// its trusted/certs folder, so the server certificate is checked, not accepted blindly. The client's own
// certificate (whose application URI is <application uri>) must be in the gateway's trusted folder.
// Result: {channel: {policy, mode}, session: true, values: {<path>: {status, value}}}, or
// {error: <message>, status: <Bad... status code name or null>, stage: "connect" | "session" | "read"}.
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { AttributeIds, MessageSecurityMode, OPCUAClient, SecurityPolicy, UserTokenType } from "node-opcua-client";

const [endpoint, namespaceUri, pkiFolder, certificateFile, privateKeyFile, applicationUri, userName, password,
  policy, mode, ...paths] = process.argv.slice(2);

const clientCertificateManager = new OPCUACertificateManager({
  rootFolder: pkiFolder,
  automaticallyAcceptUnknownCertificate: false,
});
await clientCertificateManager.initialize();

const client = OPCUAClient.create({
  clientCertificateManager,
  certificateFile,
  privateKeyFile,
  applicationName: "bms-gateway-secure-test",
  applicationUri,
  securityPolicy: SecurityPolicy[policy],
  securityMode: MessageSecurityMode[mode],
  endpointMustExist: true,
  connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
});

function failure(stage, error) {
  const message = String(error && error.message ? error.message : error);
  const status = message.match(/Bad[A-Za-z]+/);
  return { stage, error: message.slice(0, 500), status: status ? status[0] : null };
}

let result;
let stage = "connect";
try {
  await client.connect(endpoint);
  stage = "session";
  const session = await client.createSession({ type: UserTokenType.UserName, userName, password });
  try {
    stage = "read";
    const namespaces = await session.readNamespaceArray();
    const ns = namespaces.indexOf(namespaceUri);
    const read = await session.read(paths.map((path) => ({ nodeId: `ns=${ns};s=site/${path}`,
      attributeId: AttributeIds.Value })));
    result = {
      channel: { policy: SecurityPolicy[policy], mode },
      session: true,
      values: Object.fromEntries(paths.map((path, i) => [path, {
        status: read[i].statusCode.name, value: read[i].value ? read[i].value.value : null }])),
    };
  } finally {
    await session.close();
  }
} catch (error) {
  result = failure(stage, error);
} finally {
  await client.disconnect();
}
console.log(JSON.stringify(result));
