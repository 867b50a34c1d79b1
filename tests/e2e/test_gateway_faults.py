"""End to end: the gateway as a subprocess, a scripted fault scenario, read through all three outputs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.domain.alarms import AlarmCode
from tests.e2e.gateway_process import GatewayProcess, close, metric, wait_for

pytestmark = pytest.mark.e2e

SCENARIO = """
site_name = "e2e"

[engine]
stale_timeout_s = 1.0

[[buses]]
name = "bus"
interface = "virtual"
channel = "{channel}"
bitrate = 500000

[[packs]]
id = "clean"
bus = "bus"
node_address = 1

[[packs]]
id = "noisy"
bus = "bus"
node_address = 2

[[packs]]
id = "silenced"
bus = "bus"
node_address = 3

[[packs]]
id = "hot"
bus = "bus"
node_address = 4

[simulation]
enabled = true
load_profile = "idle"

[[simulation.packs]]
node_address = 1
bus = "bus"
initial_soc = 0.62
serial_number = 7001

[[simulation.packs]]
node_address = 2
bus = "bus"
initial_soc = 0.55
faults = [{{ kind = "garbage_frames", magnitude = 3.0 }}, {{ kind = "bad_crc", magnitude = 0.05 }}]

[[simulation.packs]]
node_address = 3
bus = "bus"
initial_soc = 0.5
faults = [{{ kind = "silent", start_s = {silent_at} }}]

[[simulation.packs]]
node_address = 4
bus = "bus"
initial_soc = 0.4
ambient_c = 56.0
faults = [{{ kind = "warming", magnitude = 2.0 }}]
"""
SILENT_AT_S = 12.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("faults")
    config = tmp / "site.toml"
    config.write_text(SCENARIO.format(channel=f"e2e-{time.monotonic_ns()}", silent_at=SILENT_AT_S))
    process = GatewayProcess.start(tmp, config)
    yield process
    process.stop()






def test_the_same_pack_reads_the_same_on_all_outputs_and_matches_the_simulator(gateway: GatewayProcess) -> None:
    wait_for(lambda: metric(gateway.scrape(), "bmsgw_pack_up", pack="clean") == 1.0, 10, "clean pack up")
    # identity answered, the admission gate passed for its 5 s, the limit ramping up from 0
    wait_for(lambda: metric(gateway.scrape(), "bmsgw_pack_admission_status", pack="clean") == 2.0, 20,
             "clean pack admitted")
    def settled_limits() -> bool:  # past the ramp-up (0.1 C/s): then they move only with the model's prediction
        names = ("bmsgw_pack_charge_current_limit_amperes", "bmsgw_pack_discharge_current_limit_amperes")
        first = [metric(gateway.scrape(), name, pack="clean") for name in names]
        time.sleep(0.5)
        again = [metric(gateway.scrape(), name, pack="clean") for name in names]
        return all(a > 0 and abs(b - a) < 0.5 for a, b in zip(first, again, strict=True))

    wait_for(settled_limits, 30, "clean pack's limits ramped up")
    modbus = asyncio.run(gateway.read_pack_registers(2))
    opcua = asyncio.run(gateway.read_opcua([f"site/packs/clean/{name}" for name in (
        "voltage", "current", "soc", "charge_current_limit", "discharge_current_limit", "temperature_max",
        "cell_voltage_max", "online")]))
    samples = gateway.scrape()
    truth = next(p for p in gateway.truth()["packs"] if p["node_address"] == 1)

    def opc(name: str) -> float:
        return float(opcua[f"site/packs/clean/{name}"])

    prom_voltage = metric(samples, "bmsgw_pack_voltage_volts", pack="clean")
    assert close(modbus["pack_voltage"], prom_voltage, 0.011)
    assert close(opc("voltage"), prom_voltage, 1e-6)
    assert close(prom_voltage, truth["pack_voltage_v"], 0.05)

    prom_soc = metric(samples, "bmsgw_pack_soc_ratio", pack="clean")
    assert close(modbus["soc"] / 100.0, prom_soc, 0.0001)
    assert close(opc("soc"), prom_soc, 1e-6)
    true_soc = truth["cell_soc"]
    true_pack_soc = min(true_soc) / (1 - max(true_soc) + min(true_soc))
    assert close(prom_soc, true_pack_soc, 0.01)  # initialised from OCV at rest

    prom_charge_limit = metric(samples, "bmsgw_pack_charge_current_limit_amperes", pack="clean")
    assert prom_charge_limit > 0
    # read a few ticks apart: the limit follows the model's prediction, so allow a little movement
    assert close(modbus["charge_current_limit"], prom_charge_limit, 2.0)
    assert close(opc("charge_current_limit"), prom_charge_limit, 2.0)
    assert close(opc("discharge_current_limit"),
                 metric(samples, "bmsgw_pack_discharge_current_limit_amperes", pack="clean"), 2.0)
    assert opcua["site/packs/clean/online"] is True

    for cell in (1, 17, 32):
        prom_cell = metric(samples, "bmsgw_cell_voltage_volts", pack="clean", cell=str(cell))
        assert close(modbus["cell_voltage"][cell - 1], prom_cell, 0.0011)
        assert close(prom_cell, truth["cell_voltage_v"][cell - 1], 0.0011)
    assert close(opc("cell_voltage_max"), max(truth["cell_voltage_v"]), 0.0011)
    assert close(opc("temperature_max"), max(truth["temperature_c"]), 0.11)
    assert close(modbus["temperature_max"], opc("temperature_max"), 0.11)
    assert modbus["serial_number"] == 7001  # identity was requested and answered


def test_garbage_and_bad_crc_are_counted_and_crash_nothing(gateway: GatewayProcess) -> None:
    def rejected(reason: str) -> float:
        return gateway.scrape().get(("bmsgw_can_frames_rejected_total", (("bus", "bus"), ("reason", reason))), 0.0)

    wait_for(lambda: rejected("bad_crc") > 5 and rejected("unknown_id") > 5 and rejected("bad_length") > 0,
             15, "garbage counted")
    for _ in range(30):  # good frames still get through, and no pack flaps between its frames
        samples = gateway.scrape()
        assert metric(samples, "bmsgw_pack_up", pack="noisy") == 1.0
        assert metric(samples, "bmsgw_pack_up", pack="clean") == 1.0
        time.sleep(0.1)
    assert gateway.process.poll() is None


def test_a_silenced_pack_shows_comm_loss_and_zero_limits_everywhere(gateway: GatewayProcess) -> None:
    def silenced_in_truth() -> bool:
        return any(p["node_address"] == 3 and p["silent"] for p in gateway.truth()["packs"])

    wait_for(silenced_in_truth, SILENT_AT_S + 15, "simulator silences the pack")
    reaction_s = wait_for(lambda: metric(gateway.scrape(), "bmsgw_pack_up", pack="silenced") == 0.0, 5,
                          "pack down on Prometheus")
    # the truth file is written once per second: its 'silent' flag lags the real silence by up to 1 s
    assert reaction_s <= 1.0 + 0.3, f"comm-loss reaction took {reaction_s:.2f} s after the truth showed it"
    samples = gateway.scrape()
    assert metric(samples, "bmsgw_pack_charge_current_limit_amperes", pack="silenced") == 0.0
    assert metric(samples, "bmsgw_pack_discharge_current_limit_amperes", pack="silenced") == 0.0
    assert metric(samples, "bmsgw_pack_alarm_active", pack="silenced", alarm="communication_loss",
                  severity="alarm") == 1.0
    modbus = asyncio.run(gateway.read_pack_registers(4))
    assert modbus["online"] == 0
    assert modbus["charge_current_limit"] == 0
    assert modbus["discharge_current_limit"] == 0
    assert int(modbus["alarm_alarm_mask"]) & AlarmCode.COMMUNICATION_LOSS.bit
    assert modbus["pack_voltage"] is None  # unknown, never the last good value
    opcua = asyncio.run(gateway.read_opcua(["site/packs/silenced/online", "site/packs/silenced/voltage",
                                            "site/packs/silenced/charge_current_limit"]))
    assert opcua["site/packs/silenced/online"] is False
    assert opcua["site/packs/silenced/voltage"] is None  # Bad_NoCommunication status
    assert opcua["site/packs/silenced/charge_current_limit"] == 0.0
    # the site aggregate counts the packs on the bus (online, admitted, contactor closed), not the silenced one;
    # they share the site current, so one that takes no charge blocks the site's charge (docs/limits.md)
    site = asyncio.run(gateway.read_site_registers())
    limits = [metric(samples, "bmsgw_pack_charge_current_limit_amperes", pack=p) for p in ("clean", "noisy", "hot")]
    assert site["packs_online"] == 3
    assert site["packs_eligible"] == 3
    assert site["charge_current_limit"] <= sum(limits) + 0.5
    if min(limits) == 0.0:
        assert site["charge_current_limit"] == 0.0
    else:
        assert site["charge_current_limit"] > 0.0


def test_a_hot_pack_raises_over_temperature_and_loses_its_limits(gateway: GatewayProcess) -> None:
    def severity() -> float:
        samples = gateway.scrape()
        return max((value for (name, labels), value in samples.items()
                    if name == "bmsgw_pack_alarm_active" and ("pack", "hot") in labels
                    and ("alarm", "cell_overtemperature") in labels and value == 1.0
                    and ("severity", "alarm") in labels), default=0.0)

    wait_for(lambda: severity() == 1.0, 60, "over-temperature alarm on the hot pack")
    samples = gateway.scrape()
    assert metric(samples, "bmsgw_pack_discharge_current_limit_amperes", pack="hot") == 0.0
    modbus = asyncio.run(gateway.read_pack_registers(5))
    assert int(modbus["alarm_alarm_mask"]) & AlarmCode.CELL_OVERTEMPERATURE.bit
    assert modbus["temperature_max"] > 60.0


def test_clean_shutdown_keeps_the_estimator_state(gateway: GatewayProcess, tmp_path: Path) -> None:
    assert gateway.stop() == 0
    assert "Traceback" not in gateway.log()
    store = gateway.truth_file.parent / "state.sqlite"
    rows = dict(sqlite3.connect(store).execute("SELECT pack_id, state FROM estimator_state").fetchall())
    assert {"clean", "noisy", "hot"} <= rows.keys()
