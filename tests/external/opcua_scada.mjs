// A SCADA client against the running gateway, with node-opcua (an independent implementation): every step in
// one run, over Basic256Sha256 / SignAndEncrypt with user names and passwords. Prints what it saw as one JSON
// line at the end (node-opcua may log other lines). Used by tests/e2e/test_opcua_scada_client.py.
//
//   node opcua_scada.mjs --endpoint <url> --namespace <uri> --pki <folder> --certificate <PEM> --key <PEM>
//        --application-uri <uri> --operator <user:password> --viewer <user:password> --engineer <user:password>
//        --packs <id,id,...> --alarm-pack <id> --condition <path below site/packs/> --soc-pack <id>
//        [--monitor-seconds 3] [--alarm-timeout 30] [--sync]
//
// The client's PKI folder is node-opcua's trust list: the server's certificate must be in <pki>/trusted/certs
// (it is checked, not accepted blindly). The client's certificate (application URI <application-uri>) must be
// among the gateway's trusted clients. With --sync the script prints `SYNC <step>` when it has subscribed to events,
// before and after it reads the pack values, and waits for a line on stdin each time (the test reads Modbus then).
//
// Steps: the operator browses Objects -> site -> Packs -> pack -> Cells and the pack's type, reads SoC, Voltage
// and ChargeCurrentLimit of every pack, counts data changes of a few variables for --monitor-seconds, and
// subscribes to events on the Server object. A viewer calls AcknowledgeAll (needs operator), a wrong password is
// tried. When the condition raises, the operator acknowledges it, calls ConditionRefresh, waits for it to clear
// and confirms it. The engineer calls SetSoC(0.5).
import readline from "node:readline";
import { parseArgs } from "node:util";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import {
  AttributeIds,
  BrowseDirection,
  DataType,
  MessageSecurityMode,
  MethodIds,
  NodeClass,
  ObjectTypeIds,
  OPCUAClient,
  SecurityPolicy,
  TimestampsToReturn,
  UserTokenType,
  acknowledgeCondition,
  callConditionRefresh,
  constructEventFilter,
  resolveNodeId,
} from "node-opcua-client";

const { values: options } = parseArgs({
  options: {
    endpoint: { type: "string" }, namespace: { type: "string" }, pki: { type: "string" },
    certificate: { type: "string" }, key: { type: "string" }, "application-uri": { type: "string" },
    operator: { type: "string" }, viewer: { type: "string" }, engineer: { type: "string" },
    packs: { type: "string" }, "alarm-pack": { type: "string" }, condition: { type: "string" },
    "soc-pack": { type: "string" }, "monitor-seconds": { type: "string", default: "3" },
    "alarm-timeout": { type: "string", default: "30" }, sync: { type: "boolean", default: false },
  },
});
const packs = options.packs.split(",");
const credentials = (text) => {
  const at = text.indexOf(":");
  return { type: UserTokenType.UserName, userName: text.slice(0, at), password: text.slice(at + 1) };
};

// Event fields a SCADA alarm list needs; "ConditionId" is node-opcua's special select clause (ConditionType, NodeId
// attribute, empty browse path).
const EVENT_FIELDS = ["EventId", "EventType", "SourceNode", "SourceName", "Time", "ReceiveTime", "Message", "Severity",
  "ConditionId", "ConditionName", "ConditionClassName", "BranchId", "Retain", "Quality", "ClientUserId", "Comment",
  "EnabledState.Id", "ActiveState", "ActiveState.Id", "AckedState.Id", "ConfirmedState.Id", "HighLimit"];
const REFRESH_END = resolveNodeId(ObjectTypeIds.RefreshEndEventType).toString();

const lines = options.sync ? readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]() : null;
async function sync(step) {
  if (lines === null) return;
  console.log(`SYNC ${step}`);
  await lines.next();
}

function statusName(statusCode) {
  return statusCode ? statusCode.name : null;
}

function failure(error) {
  const header = error && error.response && error.response.responseHeader;
  const fromResponse = header && header.serviceResult ? header.serviceResult.name : null;
  const message = String(error && error.message ? error.message : error);
  const inMessage = message.match(/Bad[A-Za-z]+/);
  return { status: fromResponse || (inMessage ? inMessage[0] : null), message: message.slice(0, 300) };
}

function plain(value) {
  if (value === undefined || value === null) return null;
  if (Buffer.isBuffer(value)) return value.toString("hex");
  if (value instanceof Date) {  // node-opcua keeps the sub-millisecond part (100 ns ticks) in .picoseconds
    return { iso: value.toISOString(), epoch: value.getTime() / 1000 + (value.picoseconds || 0) / 1e12 };
  }
  if (ArrayBuffer.isView(value) || Array.isArray(value)) return Array.from(value, plain);
  if (typeof value === "object" && "text" in value && "locale" in value) return value.text;  // LocalizedText
  if (typeof value === "object" && "identifierType" in value) return value.toString();  // NodeId
  if (typeof value === "object" && "value" in value && typeof value.name === "string") return value.name;  // StatusCode
  return value;
}

function eventOf(fields) {
  return Object.fromEntries(EVENT_FIELDS.map((name, i) => [name, plain(fields[i] ? fields[i].value : null)]));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = predicate();
    if (found !== undefined && found !== null) return found;
    await sleep(20);
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`);
}

async function browse(session, nodeId, referenceTypeId = "HierarchicalReferences", direction = BrowseDirection.Forward) {
  const result = await session.browse({ nodeId, referenceTypeId, browseDirection: direction, includeSubtypes: true,
    nodeClassMask: 0, resultMask: 63 });
  return result.references.map((r) => ({ name: r.browseName.toString(), nodeId: r.nodeId.toString(),
    nodeClass: NodeClass[r.nodeClass], typeDefinition: r.typeDefinition.toString(),
    reference: r.referenceTypeId.toString() }));
}

function newClient(name) {
  return OPCUAClient.create({
    clientCertificateManager: new OPCUACertificateManager({ rootFolder: options.pki,
      automaticallyAcceptUnknownCertificate: false }),
    certificateFile: options.certificate,
    privateKeyFile: options.key,
    applicationName: name,
    applicationUri: options["application-uri"],
    securityMode: MessageSecurityMode.SignAndEncrypt,
    securityPolicy: SecurityPolicy.Basic256Sha256,
    endpointMustExist: true,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    requestedSessionTimeout: 60000,
  });
}

const result = { steps: [] };
const step = (name) => result.steps.push(`${name} ${Date.now()}`);
const events = [];  // every event received, in order
const clients = [];
let failedStep = null;

// One client (secure channel) per user: asyncua serves one session per secure channel.
async function login(name, identity) {
  const client = newClient(`bms-gateway-scada-test-${name}`);
  clients.push(client);
  await client.connect(options.endpoint);
  return { client, session: await client.createSession(identity) };
}

try {
  failedStep = "connect";
  const { client, session: operator } = await login("operator", credentials(options.operator));
  result.channel = { policy: client.securityPolicy, mode: MessageSecurityMode[client.securityMode] };
  step("operator session");

  // events first, so that nothing of the alarm is missed
  failedStep = "subscribe events";
  const alarms = await operator.createSubscription2({ requestedPublishingInterval: 100, requestedLifetimeCount: 600,
    requestedMaxKeepAliveCount: 20, maxNotificationsPerPublish: 0, publishingEnabled: true, priority: 10 });
  const eventItem = await alarms.monitor({ nodeId: resolveNodeId("Server"), attributeId: AttributeIds.EventNotifier },
    { samplingInterval: 0, queueSize: 1000, discardOldest: false, filter: constructEventFilter(EVENT_FIELDS) },
    TimestampsToReturn.Neither);
  eventItem.on("changed", (fields) => events.push(eventOf(fields)));
  result.eventItem = { status: statusName(eventItem.statusCode), filterResult: eventItem.filterResult
    ? eventItem.filterResult.toJSON() : null };
  await sync("subscribed");

  failedStep = "browse";
  const ns = (await operator.readNamespaceArray()).indexOf(options.namespace);
  result.namespaceIndex = ns;
  const id = (path) => `ns=${ns};s=${path}`;
  const objects = await browse(operator, resolveNodeId("ObjectsFolder"));
  const site = objects.find((r) => r.nodeId === id("site"));
  const siteChildren = await browse(operator, site.nodeId);
  const packsFolder = siteChildren.find((r) => r.name === `${ns}:Packs`);
  const packRefs = await browse(operator, packsFolder.nodeId);
  const firstPack = packRefs.find((r) => r.nodeId === id(`site/packs/${packs[0]}`));
  const packChildren = await browse(operator, firstPack.nodeId);
  const cellsFolder = packChildren.find((r) => r.name === `${ns}:Cells`);
  const cells = await browse(operator, cellsFolder.nodeId);
  const packType = await browse(operator, firstPack.nodeId, "HasTypeDefinition");
  const typeChildren = await browse(operator, packType[0].nodeId);
  result.browse = {
    objects: objects.map((r) => r.name),
    site: { name: site.name, nodeId: site.nodeId, typeDefinition: site.typeDefinition },
    packsFolder: { nodeId: packsFolder.nodeId, typeDefinition: packsFolder.typeDefinition },
    packs: packRefs.map((r) => ({ name: r.name, nodeId: r.nodeId, typeDefinition: r.typeDefinition })),
    packChildren: packChildren.map((r) => r.name),
    packMethods: packChildren.filter((r) => r.nodeClass === "Method").map((r) => r.nodeId),
    cells: cells.map((r) => r.name),
    cellTypeDefinition: cells.length ? cells[0].typeDefinition : null,
    packTypeDefinition: packType.map((r) => r.nodeId),
    packTypeMethods: typeChildren.filter((r) => r.nodeClass === "Method").map((r) => r.name),
    packTypeSuperType: (await browse(operator, packType[0].nodeId, "HasSubtype", BrowseDirection.Inverse))
      .map((r) => r.nodeId),
  };
  step("browsed");

  failedStep = "read";
  const quantities = ["soc", "voltage", "charge_current_limit"];
  const toRead = packs.flatMap((pack) => quantities.map((path) => ({ pack, path })));
  await sync("before-read");
  const read = await operator.read(toRead.map(({ pack, path }) => ({ nodeId: id(`site/packs/${pack}/${path}`),
    attributeId: AttributeIds.Value })));
  await sync("after-read");
  result.values = {};
  toRead.forEach(({ pack, path }, i) => {
    result.values[pack] = result.values[pack] || {};
    result.values[pack][path] = { status: statusName(read[i].statusCode), value: plain(read[i].value.value),
      sourceTimestamp: plain(read[i].sourceTimestamp) };
  });
  step("read");

  failedStep = "data changes";
  const watch = subscriptionWatch(packs);
  const changes = await operator.createSubscription2({ requestedPublishingInterval: 100, requestedLifetimeCount: 600,
    requestedMaxKeepAliveCount: 20, maxNotificationsPerPublish: 0, publishingEnabled: true, priority: 1 });
  const counts = Object.fromEntries(watch.map((path) => [path, 0]));
  const lastValues = {};
  const items = [];
  for (const path of watch) {
    const item = await changes.monitor({ nodeId: id(path), attributeId: AttributeIds.Value },
      { samplingInterval: 100, queueSize: 10, discardOldest: true }, TimestampsToReturn.Both);
    item.on("changed", (dataValue) => {
      counts[path] += 1;
      lastValues[path] = { status: statusName(dataValue.statusCode), value: plain(dataValue.value.value) };
    });
    items.push({ path, status: statusName(item.statusCode), samplingInterval: item.monitoringParameters
      ? item.monitoringParameters.samplingInterval : null });
  }
  await sleep(Number(options["monitor-seconds"]) * 1000);
  await changes.terminate();
  result.dataChanges = { seconds: Number(options["monitor-seconds"]), items, counts, lastValues };
  step("data changes");

  failedStep = "viewer";
  const { session: viewer } = await login("viewer", credentials(options.viewer));
  const alarmPack = id(`site/packs/${options["alarm-pack"]}`);
  const refused = await viewer.call({ objectId: alarmPack, methodId: id("types/PackType/AcknowledgeAll"),
    inputArguments: [] });
  result.viewerAcknowledgeAll = { status: statusName(refused.statusCode),
    outputs: (refused.outputArguments || []).map((v) => plain(v.value)) };
  await viewer.close();
  step("viewer refused");

  failedStep = "wrong password";
  const wrong = credentials(options.operator);
  wrong.password += "-wrong";
  try {
    const { session } = await login("intruder", wrong);
    result.wrongPassword = { session: true };
    await session.close();
  } catch (error) {
    result.wrongPassword = { session: false, ...failure(error) };
  }
  step("wrong password");

  failedStep = "alarm raised";
  const conditionId = id(`site/packs/${options.condition}`);
  const mine = (predicate) => () => events.find((e) => e.ConditionId === conditionId && predicate(e));
  const timeout = Number(options["alarm-timeout"]) * 1000;
  const raised = await until(mine((e) => e["ActiveState.Id"] === true && e["AckedState.Id"] === false), timeout,
    "the raised event");
  result.raised = raised;
  step("raised");

  failedStep = "acknowledge";
  const acknowledged = await acknowledgeCondition(operator, conditionId, Buffer.from(raised.EventId, "hex"),
    "seen by node-opcua");
  result.acknowledge = statusName(acknowledged);
  result.acked = await until(mine((e) => e["AckedState.Id"] === true), 10000, "the acknowledged event");
  step("acknowledged");

  failedStep = "condition refresh";
  const before = events.length;
  result.conditionRefresh = statusName(await callConditionRefresh(operator, alarms.subscriptionId));
  await until(() => (events.slice(before).some((e) => e.EventType === REFRESH_END) ? true : null), 10000,
    "RefreshEnd");
  result.refresh = events.slice(before).map((e) => ({ EventType: e.EventType, ConditionId: e.ConditionId,
    Retain: e.Retain, "ActiveState.Id": e["ActiveState.Id"], "AckedState.Id": e["AckedState.Id"] }));
  step("refreshed");

  failedStep = "cleared";
  const cleared = await until(mine((e) => e["ActiveState.Id"] === false), timeout, "the cleared event");
  result.cleared = cleared;
  failedStep = "confirm";
  const confirm = await operator.call({ objectId: conditionId,
    methodId: resolveNodeId(MethodIds.AcknowledgeableConditionType_Confirm), inputArguments: [
      { dataType: DataType.ByteString, value: Buffer.from(cleared.EventId, "hex") },
      { dataType: DataType.LocalizedText, value: { text: "fixed by node-opcua" } }] });
  result.confirm = { status: statusName(confirm.statusCode),
    outputs: (confirm.outputArguments || []).map((v) => plain(v.value)) };
  result.confirmed = await until(mine((e) => e["ConfirmedState.Id"] === true), 10000, "the confirmed event");
  step("confirmed");

  failedStep = "engineer";
  const { session: engineer } = await login("engineer", credentials(options.engineer));
  const setSoc = await engineer.call({ objectId: id(`site/packs/${options["soc-pack"]}`),
    methodId: id("types/PackType/SetSoC"), inputArguments: [{ dataType: DataType.Double, value: 0.5 }] });
  result.setSoc = { status: statusName(setSoc.statusCode),
    outputs: (setSoc.outputArguments || []).map((v) => plain(v.value)) };
  await engineer.close();
  step("set soc");

  await alarms.terminate();
  await operator.close();
  failedStep = null;
} catch (error) {
  result.error = { step: failedStep, ...failure(error), stack: String(error.stack).slice(0, 1500) };
} finally {
  result.events = events.map((e) => ({ EventType: e.EventType, ConditionId: e.ConditionId, Time: e.Time,
    "ActiveState.Id": e["ActiveState.Id"], "AckedState.Id": e["AckedState.Id"],
    "ConfirmedState.Id": e["ConfirmedState.Id"], Retain: e.Retain }));
  for (const client of clients) await client.disconnect();
}
console.log(JSON.stringify(result));
process.exit(0);

function subscriptionWatch(packIds) {
  // a reading that moves every tick (the age of the pack's data), and slow values
  return [...packIds.map((pack) => `site/packs/${pack}/data_age`), `site/packs/${packIds[0]}/voltage`,
    `site/packs/${packIds[0]}/soc`, "site/voltage"];
}
