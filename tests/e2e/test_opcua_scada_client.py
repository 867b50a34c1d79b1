"""A SCADA on node-opcua (an independent OPC UA implementation) against the real gateway process.

`python -m gateway run` serves three simulated packs over Modbus TCP and OPC UA (users file, trusted client
certificates). tests/external/opcua_scada.mjs, as the operator over Basic256Sha256 / SignAndEncrypt, browses the
model, reads every pack's SoC, Voltage and ChargeCurrentLimit, counts data changes and subscribes to events; pack-03
stops talking at 15 s (its communication_loss conditions raise), the client acknowledges, refreshes, and confirms
once it has cleared. A viewer is refused AcknowledgeAll, a wrong password is refused, the engineer sets a SoC.

Python checks what node saw against Modbus (polled around node's read, matched by value: the limits still ramp up
after the start) and against the gateway's event log (same transitions, times within 1 ms, the users).
Without node / npm the test is skipped, except on CI (CI=true).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from gateway.adapters.event_log import EventLog
from gateway.adapters.opcua_users import Role
from gateway.codec.register_map import RegisterEntry
from gateway.domain.events import BmsEvent, EventKind
from gateway.settings import EventLogSettings
from tests.adapters import test_opcua_external as node_tools
from tests.adapters.opcua_pki import ClientIdentity, make_client, write_users
from tests.e2e.gateway_process import GatewayProcess

pytestmark = [pytest.mark.external, pytest.mark.e2e]

SCRIPT = node_tools.EXTERNAL_DIR / "opcua_scada.mjs"
NAMESPACE_URI = "urn:bms-gateway:site"
PACKS = {"pack-01": 10, "pack-02": 11, "pack-03": 12}  # pack id -> Modbus unit id
INITIAL_SOC = {"pack-01": 0.55, "pack-02": 0.6, "pack-03": 0.65}  # apart, so that packs cannot be mixed up
SILENT_PACK, SOC_PACK = "pack-03", "pack-01"
SILENT_FROM_S, SILENT_FOR_S = 15.0, 6.0
CONDITION = f"{SILENT_PACK}/alarms/communication_loss_alarm_data_age_s"
USERS = {"victor": (Role.VIEWER, "victor-secret"), "otto": (Role.OPERATOR, "otto-secret"),
         "erin": (Role.ENGINEER, "erin-secret")}
NODE_TIMEOUT_S = 50.0
# OPC UA browse name / register name / ratio of the register unit to the OPC UA unit (SoC: % vs ratio)
COMPARED = {"soc": ("soc", 0.01), "voltage": ("pack_voltage", 1.0),
            "charge_current_limit": ("charge_current_limit", 1.0)}

SITE = """
site_name = "scada"
[admission]
enabled = false
[prometheus]
enabled = false
[opcua.security]
certificate = "{pki}/own/cert.der"
private_key = "{pki}/own/key.pem"
trusted_clients_dir = "{pki}/trusted"
users_file = "{users}"
anonymous = false
[[buses]]
name = "bus"
interface = "virtual"
channel = "{channel}"
{packs}
[simulation]
enabled = true
load_profile = "idle"
{simulated}
"""


def _site(tmp: Path, client: ClientIdentity) -> Path:
    pki = tmp / "gateway-pki"
    (pki / "trusted").mkdir(parents=True)
    shutil.copy(client.certificate, pki / "trusted" / "node-scada.der")
    users = write_users(tmp / "users.toml", USERS)
    packs, simulated = [], []
    for n, (pack_id, unit) in enumerate(PACKS.items(), start=1):
        packs.append(f'[[packs]]\nid = "{pack_id}"\nbus = "bus"\nnode_address = {n}\nmodbus_unit_id = {unit}\n')
        fault = (f'faults = [{{kind = "silent", start_s = {SILENT_FROM_S}, duration_s = {SILENT_FOR_S}}}]\n'
                 if pack_id == SILENT_PACK else "")
        simulated.append(f'[[simulation.packs]]\nnode_address = {n}\nbus = "bus"\nserial_number = {1000 + n}\n'
                         f'initial_soc = {INITIAL_SOC[pack_id]}\n{fault}')
    config = tmp / "site.toml"
    config.write_text(SITE.format(pki=pki, users=users, channel=f"scada-{time.monotonic_ns()}",
                                  packs="\n".join(packs), simulated="\n".join(simulated)))
    return config


@dataclass
class ModbusPoller:
    """Reads the first registers of every pack unit in a loop: (snapshot sequence, values) per pack."""

    gateway: GatewayProcess
    samples: dict[str, dict[int, dict[str, float | None]]] = field(default_factory=dict)
    polls: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # not cancel(): pymodbus may swallow it

    async def run(self) -> None:
        entries = {entry.name: entry for entry in self.gateway.register_map.pack.entries}
        wanted = [entries["snapshot_sequence"], *(entries[name] for name, _ in COMPARED.values())]
        count = max(entry.address + entry.words_per_value for entry in wanted)
        client = AsyncModbusTcpClient("127.0.0.1", port=self.gateway.modbus_port, timeout=3)
        await client.connect()
        try:
            while not self.stopping.is_set():
                for pack_id, unit in PACKS.items():
                    response = await client.read_input_registers(0, count=count, device_id=unit)
                    assert not response.isError(), response
                    values = {entry.name: self._decode(entry, response.registers) for entry in wanted}
                    sequence = int(values.pop("snapshot_sequence") or 0)
                    self.samples.setdefault(pack_id, {})[sequence] = values
                self.polls += 1
                await asyncio.sleep(0.02)
        finally:
            client.close()

    def _decode(self, entry: RegisterEntry, words: list[int]) -> float | None:
        at = entry.address
        if entry.words_per_value == 2:
            high, low = ((words[at], words[at + 1]) if self.gateway.register_map.word_order == "big"
                         else (words[at + 1], words[at]))
            raw = (high << 16) | low
            missing = 0xFFFFFFFF
        else:
            raw, missing = words[at], 0xFFFF
        assert entry.type.startswith("uint"), entry  # the compared registers are unsigned
        return None if raw == missing else raw * entry.scale

    def matches(self, pack_id: str, quantity: str, value: float) -> bool:
        """The OPC UA value equals a polled register within half a step (or lies between two consecutive
        snapshots, when the poller missed the one OPC UA published)."""
        register, ratio = COMPARED[quantity]
        step = next(e.scale for e in self.gateway.register_map.pack.entries if e.name == register) * ratio
        tolerance = step / 2 + 1e-9
        polled = [(sequence, values[register]) for sequence, values in sorted(self.samples[pack_id].items())]
        seen = [v * ratio for _, v in polled if v is not None]
        if any(abs(value - v) <= tolerance for v in seen):
            return True
        return any(min(a, b) - tolerance <= value <= max(a, b) + tolerance for a, b in itertools.pairwise(seen))


@dataclass
class NodeRun:
    """The node client as a subprocess: answers its SYNC lines, collects its JSON."""

    process: asyncio.subprocess.Process
    sync_times: dict[str, float] = field(default_factory=dict)
    stderr: bytes = b""

    @classmethod
    async def start(cls, node: str, arguments: list[str]) -> NodeRun:
        process = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), *arguments, "--sync", cwd=node_tools.EXTERNAL_DIR, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(process)

    async def result(self, on_sync: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdout is not None
        assert self.process.stdin is not None
        assert self.process.stderr is not None
        drain = asyncio.create_task(self.process.stderr.read())
        output: list[str] = []
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith("SYNC "):
                name = line.removeprefix("SYNC ")
                self.sync_times[name] = time.time()
                if name in on_sync:
                    await on_sync[name]()
                self.process.stdin.write(b"go\n")
                await self.process.stdin.drain()
            else:
                output.append(line)
        self.stderr = await drain
        await self.process.wait()
        assert self.process.returncode == 0, self.stderr.decode(errors="replace")[-3000:]
        lines = [line for line in output if line.startswith("{")]  # node-opcua may log other lines
        assert lines, "\n".join(output)[-3000:] + self.stderr.decode(errors="replace")[-3000:]
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@pytest.fixture(scope="session", name="node")
def node_fixture() -> str:
    """The node executable, node-opcua installed (as in tests/adapters/test_opcua_external.py)."""
    return node_tools.node_with_client()


def _arguments(gateway: GatewayProcess, node_pki: Path, client: ClientIdentity) -> list[str]:
    def user(role: Role) -> str:
        name = next(name for name, (r, _) in USERS.items() if r is role)
        return f"{name}:{USERS[name][1]}"

    return ["--endpoint", f"opc.tcp://127.0.0.1:{gateway.opcua_port}/bms-gateway/", "--namespace", NAMESPACE_URI,
            "--pki", str(node_pki), "--certificate", str(client.certificate_pem), "--key", str(client.private_key),
            "--application-uri", client.application_uri, "--operator", user(Role.OPERATOR),
            "--viewer", user(Role.VIEWER), "--engineer", user(Role.ENGINEER), "--packs", ",".join(PACKS),
            "--alarm-pack", SILENT_PACK, "--condition", CONDITION, "--soc-pack", SOC_PACK,
            "--monitor-seconds", "3", "--alarm-timeout", "30"]


async def _run_scada(node: str, tmp_path: Path) -> tuple[dict[str, Any], NodeRun, ModbusPoller, GatewayProcess]:
    client = make_client(tmp_path / "node-client", "node-scada")
    config = _site(tmp_path, client)
    gateway = GatewayProcess.start(tmp_path, config, {"BMSGW_OPCUA__SECURITY__ANONYMOUS": "false",
                                                      "BMSGW_LOG_FORMAT": "json"})
    try:
        node_pki = tmp_path / "node-pki"  # node-opcua trusts the gateway's certificate, made at its start
        (node_pki / "trusted" / "certs").mkdir(parents=True)
        shutil.copy(tmp_path / "gateway-pki" / "own" / "cert.der", node_pki / "trusted" / "certs" / "gateway.der")
        poller = ModbusPoller(gateway)
        polling = asyncio.create_task(poller.run())

        async def polled_once_more() -> None:
            start = poller.polls
            while poller.polls < start + 2:
                if polling.done():
                    polling.result()
                await asyncio.sleep(0.01)

        async def stop_polling() -> None:  # the samples cover the gateway's start up to just after node's read
            await polled_once_more()
            poller.stopping.set()

        run = await NodeRun.start(node, _arguments(gateway, node_pki, client))
        try:
            result = await asyncio.wait_for(run.result({"before-read": polled_once_more,
                                                        "after-read": stop_polling}), NODE_TIMEOUT_S)
        finally:
            run.kill()
            poller.stopping.set()
            await asyncio.wait_for(polling, 15)
    finally:
        code = gateway.stop()
    assert code == 0, gateway.log()[-3000:]
    return result, run, poller, gateway


def _logged(store: Path) -> list[BmsEvent]:
    log = EventLog(store, EventLogSettings(), create=False)
    try:
        return sorted(log.query(), key=lambda e: e.time)
    finally:
        log.close()


async def test_a_node_opcua_scada_browses_reads_subscribes_and_handles_the_alarm(node: str, tmp_path: Path) -> None:
    result, run, poller, gateway = await _run_scada(node, tmp_path)
    print(json.dumps(result, indent=1))  # what node saw, for the record (pytest -s)
    assert "error" not in result, json.dumps(result, indent=1)[-6000:]

    # an encrypted channel, the model browsed by reference
    assert result["channel"] == {"policy": "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256",
                                 "mode": "SignAndEncrypt"}
    browsed = result["browse"]
    assert result["namespaceIndex"] == 2
    assert "2:scada" in browsed["objects"]
    assert browsed["site"] == {"name": "2:scada", "nodeId": "ns=2;s=site", "typeDefinition": "ns=2;s=types/SiteType"}
    assert browsed["packsFolder"] == {"nodeId": "ns=2;s=site/packs", "typeDefinition": "ns=0;i=61"}  # FolderType
    assert browsed["packs"] == [{"name": f"2:{p}", "nodeId": f"ns=2;s=site/packs/{p}",
                                 "typeDefinition": "ns=2;s=types/PackType"} for p in PACKS]
    for child in ("2:SoC", "2:Voltage", "2:ChargeCurrentLimit", "2:Cells", "2:Alarms", "2:Identity", "2:SetSoC"):
        assert child in browsed["packChildren"], child
    assert browsed["cells"] == [f"2:Cell{n:02d}" for n in range(1, 33)]
    assert browsed["cellTypeDefinition"] == "ns=2;s=types/CellType"
    assert browsed["packTypeDefinition"] == ["ns=2;s=types/PackType"]
    assert browsed["packTypeSuperType"] == ["ns=0;i=58"]  # BaseObjectType
    methods = ["AcknowledgeAll", "Reset", "SetSoC", "Admit", "Block", "Unblock"]
    assert browsed["packTypeMethods"] == [f"2:{m}" for m in methods]
    assert browsed["packMethods"] == [f"ns=2;s=types/PackType/{m}" for m in methods]  # the type's method nodes

    # the values node read are the values Modbus served at the same time
    for pack_id in PACKS:
        for quantity in COMPARED:
            read = result["values"][pack_id][quantity]
            assert read["status"] == "Good", (pack_id, quantity, read)
            assert poller.matches(pack_id, quantity, read["value"]), (
                pack_id, quantity, read, sorted(poller.samples[pack_id].items())[-40:])
    for pack_id, soc in INITIAL_SOC.items():  # the simulator's start
        assert result["values"][pack_id]["soc"]["value"] == pytest.approx(soc, abs=0.01)

    # data changes: every monitored item accepted at 100 ms; the data age moves every engine tick (10 Hz)
    changes = result["dataChanges"]
    assert all(item["status"] == "Good" and item["samplingInterval"] == 100 for item in changes["items"]), changes
    assert all(count >= 1 for count in changes["counts"].values()), changes
    ages = [count for path, count in changes["counts"].items() if path.endswith("/data_age")]
    assert len(ages) == len(PACKS)
    assert all(count >= 10 for count in ages), changes  # ~30 in 3 s

    # roles and passwords
    assert result["viewerAcknowledgeAll"]["status"] == "BadUserAccessDenied"
    assert result["wrongPassword"]["session"] is False
    assert result["wrongPassword"]["status"] in {"BadUserAccessDenied", "BadIdentityTokenRejected"}
    assert result["setSoc"]["status"] == "Good"
    assert result["setSoc"]["outputs"][0].startswith("done"), result["setSoc"]

    # the alarm: raised after node subscribed, acknowledged, refreshed, cleared, confirmed
    condition_id = f"ns=2;s=site/packs/{CONDITION}"
    raised = result["raised"]
    assert raised["Time"]["epoch"] > run.sync_times["subscribed"], "the gateway was too slow to start: the " \
        "condition raised before node subscribed"
    assert raised["ConditionId"] == condition_id
    assert raised["SourceName"] == SILENT_PACK
    assert raised["SourceNode"] == f"ns=2;s=site/packs/{SILENT_PACK}"
    assert raised["EventType"] == "ns=0;i=2955"  # LimitAlarmType
    assert raised["ConditionName"] == "communication_loss_alarm_data_age_s"
    assert raised["Severity"] == 700
    assert raised["Retain"] is True
    assert (raised["ActiveState.Id"], raised["AckedState.Id"], raised["ConfirmedState.Id"]) == (True, False, False)
    assert raised["ActiveState"] == "Active"
    assert "communication_loss" in raised["Message"]
    assert result["acknowledge"] == "Good"
    acked = result["acked"]
    assert acked["EventId"] != raised["EventId"]
    assert (acked["ActiveState.Id"], acked["AckedState.Id"], acked["Retain"]) == (True, True, True)
    assert acked["ClientUserId"] == "opcua otto"
    assert acked["Comment"] == "seen by node-opcua"

    assert result["conditionRefresh"] == "Good"
    refresh = result["refresh"]
    starts = [i for i, e in enumerate(refresh) if e["EventType"] == "ns=0;i=2787"]  # RefreshStartEventType
    ends = [i for i, e in enumerate(refresh) if e["EventType"] == "ns=0;i=2788"]  # RefreshEndEventType
    assert len(starts) == 1, refresh
    assert len(ends) == 1, refresh
    replayed = [e for e in refresh[starts[0] + 1:ends[0]] if e["ConditionId"] == condition_id]
    assert replayed == [{"EventType": "ns=0;i=2955", "ConditionId": condition_id, "Retain": True,
                         "ActiveState.Id": True, "AckedState.Id": True}], refresh

    cleared = result["cleared"]
    assert (cleared["ActiveState.Id"], cleared["AckedState.Id"], cleared["Retain"]) == (False, True, True)
    assert result["confirm"]["status"] == "Good"
    confirmed = result["confirmed"]
    assert (confirmed["ConfirmedState.Id"], confirmed["Retain"]) == (True, False)
    assert confirmed["ClientUserId"] == "opcua otto"

    # the same transitions in the gateway's event log, at the same times, with the users
    logged = _logged(gateway.truth_file.parent / "state.sqlite")
    rule = [e for e in logged if e.pack_id == SILENT_PACK and e.code == "communication_loss"
            and e.threshold == pytest.approx(raised["HighLimit"])]
    kinds = [e.kind for e in rule]
    assert kinds[:4] == [EventKind.RAISED, EventKind.ACKNOWLEDGED, EventKind.CLEARED, EventKind.CONFIRMED], rule
    for entry, event in zip(rule, (raised, acked, cleared, confirmed), strict=False):
        assert entry.time == pytest.approx(event["Time"]["epoch"], abs=1e-3), (entry, event)
    assert rule[1].operator == "opcua otto"
    assert rule[3].operator == "opcua otto"
    commands = [(e.pack_id, e.code, e.operator, e.detail) for e in logged if e.kind is EventKind.COMMAND]
    assert (SILENT_PACK, "acknowledge", "opcua victor",
            "refused: OPC UA user with viewer may not acknowledge (needs operator)") in commands, commands
    assert any(pack == SOC_PACK and code == "set_soc" and operator == "opcua erin" and detail.startswith("done")
               for pack, code, operator, detail in commands), commands
    # structured logs from both processes, the refused login among them, never a password
    entries = [json.loads(line) for line in gateway.log().splitlines() if line.strip()]
    assert {"bms-gateway-opcua", "MainProcess"} <= {entry["process"] for entry in entries}
    assert any("login refused for user 'otto'" in entry["message"] and entry["level"] == "WARNING"
               for entry in entries), entries[-20:]
    assert not [password for _, password in USERS.values() if password in gateway.log()]
