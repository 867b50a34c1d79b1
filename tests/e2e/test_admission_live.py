"""End to end: pack admission in the running gateway, against a pack registry, with operator admission.

Three simulated packs share one virtual bus. The registry (written by the test) lists pack `known`'s serial
under `known`, pack `blocked`'s under `blocked` and leaves pack `stranger` out, with the policy `unknown: refuse`.
The gate admits the known pack after its confirm time; the other two stay not admitted with zero limits and their
reason published on Prometheus, Modbus and OPC UA. An operator then tries to admit both through the real CLI
(`bms-gateway admit`, as a subprocess): the blocked pack is refused, the unknown one is admitted and gets its
limits. The event log (`bms-gateway events`) tells the story, and the site unit counts the admitted packs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.gateway_process import GatewayProcess, metric, wait_for

pytestmark = pytest.mark.e2e

# serials as the simulated packs send them (integers); the gateway shows them with 10 digits
KNOWN_SERIAL, BLOCKED_SERIAL, STRANGER_SERIAL = 4711, 4712, 4713
KNOWN_UNIT, BLOCKED_UNIT, STRANGER_UNIT = 10, 11, 12
CONFIRM_S = 5.0
BLOCK_REASON = "swollen cell found at the e2e inspection"
OPERATOR = "alice"

NOT_ADMITTED, PENDING, ADMITTED, OPERATOR_ADMITTED = 0, 1, 2, 3
UNKNOWN_PACK_BIT, BLOCKED_BIT = 1 << 1, 1 << 2

# The known pack is listed without leading zeros (digits compare as numbers) and with the datasheet values of the
# simulator's default pack (nmc-200ah, 32 cells); the blocked one unquoted with leading zeros (YAML must not read
# it as an octal number).
REGISTRY = f"""
policy:
  unknown: refuse

known:
  - serial: "{KNOWN_SERIAL}"
    chemistry: nmc
    cell_count: 32
    nominal_capacity_ah: 200
    note: "e2e fleet pack"

blocked:
  - serial: {BLOCKED_SERIAL:010d}
    reason: "{BLOCK_REASON}"
"""

SITE = """
site_name = "admission"

[store]
path = "{store}"

[admission]
enabled = true
registry = "{registry}"
confirm_s = {confirm_s}

[[buses]]
name = "bus"
interface = "virtual"
channel = "{channel}"
bitrate = 500000

[[packs]]
id = "known"
bus = "bus"
node_address = 1
modbus_unit_id = {known_unit}

[[packs]]
id = "blocked"
bus = "bus"
node_address = 2
modbus_unit_id = {blocked_unit}

[[packs]]
id = "stranger"
bus = "bus"
node_address = 3
modbus_unit_id = {stranger_unit}

[simulation]
enabled = true
load_profile = "idle"

[[simulation.packs]]
node_address = 1
bus = "bus"
initial_soc = 0.6
serial_number = {known_serial}

[[simulation.packs]]
node_address = 2
bus = "bus"
initial_soc = 0.6
serial_number = {blocked_serial}

[[simulation.packs]]
node_address = 3
bus = "bus"
initial_soc = 0.6
serial_number = {stranger_serial}
"""


def write_site(tmp: Path) -> Path:
    registry = tmp / "pack-registry.yaml"
    registry.write_text(REGISTRY)
    config = tmp / "site.toml"
    config.write_text(SITE.format(
        store=tmp / "state.sqlite",  # the same file GatewayProcess points the gateway at (BMSGW_STORE__PATH)
        registry=registry, confirm_s=CONFIRM_S, channel=f"admission-{time.monotonic_ns()}",
        known_unit=KNOWN_UNIT, blocked_unit=BLOCKED_UNIT, stranger_unit=STRANGER_UNIT,
        known_serial=KNOWN_SERIAL, blocked_serial=BLOCKED_SERIAL, stranger_serial=STRANGER_SERIAL))
    return config






def pack_metrics(gateway: GatewayProcess, pack: str) -> dict[str, float]:
    """The pack's admission status, reasons and limits from one scrape."""
    samples = gateway.scrape()
    names = {"status": "bmsgw_pack_admission_status", "reasons": "bmsgw_pack_admission_reasons",
             "charge": "bmsgw_pack_charge_current_limit_amperes",
             "discharge": "bmsgw_pack_discharge_current_limit_amperes"}
    return {key: samples[(name, (("pack", pack),))] for key, name in names.items()}


def registers(gateway: GatewayProcess, unit: int) -> dict[str, Any]:
    return asyncio.run(gateway.read_pack_registers(unit))


def opcua_admission(gateway: GatewayProcess, pack: str) -> dict[str, Any]:
    names = ("admission_status", "admission_reasons", "admission_reason_text", "charge_current_limit")
    values = asyncio.run(gateway.read_opcua([f"site/packs/{pack}/{name}" for name in names]))
    return {name: values[f"site/packs/{pack}/{name}"] for name in names}


def cli(config: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`bms-gateway ...` as its own process, as an operator would run it, on the site's configuration."""
    return subprocess.run([sys.executable, "-m", "gateway", *arguments, "--config", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=config.parent, check=False)


def status_of(gateway: GatewayProcess, pack: str) -> float:
    return metric(gateway.scrape(), "bmsgw_pack_admission_status", pack=pack)


def assert_refused_everywhere(gateway: GatewayProcess, pack: str, unit: int, reason_bit: int, other_bit: int,
                              label: str) -> None:
    """Not admitted with `reason_bit` (and not `other_bit`), limits exactly 0: Prometheus, Modbus and OPC UA."""
    prom = pack_metrics(gateway, pack)
    assert prom["status"] == NOT_ADMITTED, (pack, prom)
    assert int(prom["reasons"]) & reason_bit, (pack, prom)
    assert not int(prom["reasons"]) & other_bit, (pack, prom)
    assert prom["charge"] == 0.0, (pack, prom)
    assert prom["discharge"] == 0.0, (pack, prom)

    modbus = registers(gateway, unit)
    assert modbus["admission_status"] == NOT_ADMITTED, (pack, modbus["admission_status"])
    assert int(modbus["admission_reasons"]) & reason_bit, (pack, modbus["admission_reasons"])
    assert not int(modbus["admission_reasons"]) & other_bit, (pack, modbus["admission_reasons"])
    assert modbus["charge_current_limit"] == 0, (pack, modbus["charge_current_limit"])
    assert modbus["discharge_current_limit"] == 0, (pack, modbus["discharge_current_limit"])
    assert modbus["serial_number"] == {"blocked": BLOCKED_SERIAL, "stranger": STRANGER_SERIAL}[pack]

    opcua = opcua_admission(gateway, pack)
    assert opcua["admission_status"] == NOT_ADMITTED, (pack, opcua)
    assert int(opcua["admission_reasons"]) & reason_bit, (pack, opcua)
    assert label in str(opcua["admission_reason_text"]).split(", "), (pack, opcua)
    assert opcua["charge_current_limit"] == 0.0, (pack, opcua)


def test_registry_gate_and_operator_admission_in_the_live_gateway(tmp_path: Path) -> None:
    config = write_site(tmp_path)
    launched_at = time.monotonic()
    gateway = GatewayProcess.start(tmp_path, config)
    try:
        # 1. the known pack passes the gate, but not before its confirm time; its limit then rises from 0
        wait_for(lambda: status_of(gateway, "known") == ADMITTED, 30, "known pack admitted by the gate")
        assert time.monotonic() - launched_at >= CONFIRM_S, "admitted before the confirm time could run out"
        wait_for(lambda: pack_metrics(gateway, "known")["charge"] > 0.0, 15, "known pack's charge limit above 0")
        known = pack_metrics(gateway, "known")
        assert known["status"] == ADMITTED
        assert known["reasons"] == 0.0, known
        assert known["discharge"] > 0.0, known
        modbus = registers(gateway, KNOWN_UNIT)
        assert modbus["serial_number"] == KNOWN_SERIAL
        assert modbus["admission_status"] == ADMITTED
        assert modbus["admission_reasons"] == 0
        assert modbus["charge_current_limit"] > 0
        opcua = opcua_admission(gateway, "known")
        assert opcua["admission_status"] == ADMITTED, opcua
        assert opcua["admission_reasons"] == 0, opcua
        assert opcua["admission_reason_text"] == "", opcua
        assert opcua["charge_current_limit"] > 0.0, opcua

        # 2. the blocked and the unknown pack are refused, with their reason, and their limits stay exactly 0
        # (the gateway has been running for well over the confirm time by now)
        wait_for(lambda: status_of(gateway, "blocked") == NOT_ADMITTED, 10, "blocked pack refused")
        wait_for(lambda: status_of(gateway, "stranger") == NOT_ADMITTED, 10, "unknown pack refused")
        assert_refused_everywhere(gateway, "blocked", BLOCKED_UNIT, BLOCKED_BIT, UNKNOWN_PACK_BIT, "blocked")
        assert_refused_everywhere(gateway, "stranger", STRANGER_UNIT, UNKNOWN_PACK_BIT, BLOCKED_BIT, "unknown_pack")

        # 3. an operator cannot admit the blocked pack: refused (exit 1), and it stays not admitted
        refused = cli(config, "admit", "--pack", "blocked", "--operator", OPERATOR)
        assert refused.returncode == 1, (refused.returncode, refused.stdout, refused.stderr)
        assert "refused: blocked" in refused.stdout, refused.stdout
        assert BLOCK_REASON in refused.stdout, refused.stdout
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # a few ticks after the request: nothing changed
            assert_refused_everywhere(gateway, "blocked", BLOCKED_UNIT, BLOCKED_BIT, UNKNOWN_PACK_BIT, "blocked")
            time.sleep(0.3)

        # 4. the operator admits the unknown pack: done (exit 0), admitted at once by the operator, limits rise
        done = cli(config, "admit", "--pack", "stranger", "--operator", OPERATOR)
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
        assert "done" in done.stdout, done.stdout
        wait_for(lambda: status_of(gateway, "stranger") == OPERATOR_ADMITTED, 3, "unknown pack operator-admitted")
        wait_for(lambda: pack_metrics(gateway, "stranger")["charge"] > 0.0, 10, "unknown pack's charge limit above 0")
        stranger = pack_metrics(gateway, "stranger")
        assert stranger["status"] == OPERATOR_ADMITTED
        assert int(stranger["reasons"]) & UNKNOWN_PACK_BIT, stranger  # what the operator overrode
        assert stranger["discharge"] > 0.0, stranger
        modbus = registers(gateway, STRANGER_UNIT)
        assert modbus["admission_status"] == OPERATOR_ADMITTED
        assert int(modbus["admission_reasons"]) & UNKNOWN_PACK_BIT
        assert modbus["charge_current_limit"] > 0
        opcua = opcua_admission(gateway, "stranger")
        assert opcua["admission_status"] == OPERATOR_ADMITTED, opcua
        assert "unknown_pack" in str(opcua["admission_reason_text"]).split(", "), opcua
        # the known pack is untouched, the blocked one still refused
        assert status_of(gateway, "known") == ADMITTED
        assert_refused_everywhere(gateway, "blocked", BLOCKED_UNIT, BLOCKED_BIT, UNKNOWN_PACK_BIT, "blocked")

        # 5. the site unit counts the two admitted packs; at most those share the site current
        wait_for(lambda: asyncio.run(gateway.read_site_registers())["packs_admitted"] == 2, 5, "site: 2 admitted")
        site = asyncio.run(gateway.read_site_registers())
        assert site["packs_admitted"] == 2, site["packs_admitted"]
        assert site["packs_eligible"] is not None
        assert site["packs_eligible"] <= 2, site["packs_eligible"]
        assert metric(gateway.scrape(), "bmsgw_site_packs_eligible") <= 2.0

        # 6. the event log, through the CLI on the site's configuration
        def admission_events() -> list[dict[str, Any]]:
            listed = cli(config, "events", "--format", "json")
            assert listed.returncode == 0, (listed.stdout, listed.stderr)
            return [e for e in json.loads(listed.stdout) if e["code"] == "admission"]

        def find(events: list[dict[str, Any]], pack: str, kind: str) -> list[dict[str, Any]]:
            return [e for e in events if e["pack_id"] == pack and e["kind"] == kind]

        wait_for(lambda: bool(find(admission_events(), "stranger", "admitted")), 15,
                 "the operator admission in the event log")
        events = admission_events()
        known_admitted = find(events, "known", "admitted")
        assert len(known_admitted) == 1, events
        assert known_admitted[0]["operator"] in ("", None), known_admitted
        assert known_admitted[0]["detail"].startswith(f"serial {KNOWN_SERIAL:010d}: gate passed"), known_admitted
        assert not find(events, "known", "not_admitted"), events

        blocked_refusals = find(events, "blocked", "not_admitted")
        assert blocked_refusals, events
        assert any(e["detail"].startswith(f"serial {BLOCKED_SERIAL:010d}:") and "blocked" in e["detail"]
                   and BLOCK_REASON in e["detail"] for e in blocked_refusals), blocked_refusals
        assert not find(events, "blocked", "admitted"), events

        stranger_refusals = find(events, "stranger", "not_admitted")
        assert any("unknown pack" in e["detail"] for e in stranger_refusals), stranger_refusals
        stranger_admitted = find(events, "stranger", "admitted")
        assert len(stranger_admitted) == 1, stranger_admitted
        assert stranger_admitted[0]["operator"] == OPERATOR, stranger_admitted
        assert stranger_admitted[0]["detail"].startswith(
            f"serial {STRANGER_SERIAL:010d}: admitted by operator {OPERATOR}"), stranger_admitted
        assert stranger_refusals[0]["time"] <= stranger_admitted[0]["time"]

        assert gateway.stop() == 0
        assert "Traceback" not in gateway.log()
    finally:
        if gateway.process.poll() is None:
            gateway.process.kill()
            gateway.process.wait()
