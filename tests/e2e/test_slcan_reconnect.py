"""End to end: a pack behind a serial CAN adapter (python-can slcan over a socat pty pair) that is unplugged and
plugged in again, beside a pack on another bus; the gateway as a subprocess, read over Prometheus and Modbus."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.socat_pair import BITRATE, SocatPair
from tests.e2e.gateway_process import GatewayProcess, Samples, wait_for

pytestmark = pytest.mark.e2e

SITE = """
[engine]
stale_timeout_s = 1.0

[[buses]]
name = "serial"
interface = "slcan"
channel = "{gateway_end}"
bitrate = {bitrate}
options = {{ sleep_after_open = 0 }}
reconnect_initial_delay_s = 0.2
reconnect_max_delay_s = 1.0

[[buses]]
name = "local"
interface = "virtual"
channel = "slcan-local-{tag}"

[[packs]]
id = "behind-adapter"
bus = "serial"
node_address = 1

[[packs]]
id = "local"
bus = "local"
node_address = 1

[simulation]
enabled = true
load_profile = "idle"

[[simulation.packs]]
node_address = 1
bus = "local"
serial_number = 1000
"""
# The pack on the far side of the adapter: `bms-gateway simulate` on the other pty.
PACK = """
[[buses]]
name = "serial"
interface = "slcan"
channel = "{pack_end}"
bitrate = {bitrate}
options = {{ sleep_after_open = 0 }}

[simulation]
load_profile = "idle"

[[simulation.packs]]
node_address = 1
bus = "serial"
serial_number = 2000
"""
SERIAL_PACK_UNIT = 2  # Modbus unit of the first pack


class FarSide:
    """`bms-gateway simulate` playing the pack on the adapter's far side."""

    def __init__(self, tmp: Path, pair: SocatPair) -> None:
        self._config = tmp / "pack.toml"
        self._config.write_text(PACK.format(pack_end=pair.pack_end, bitrate=BITRATE))
        self._log = tmp / "pack.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("a") as log:
            self._process = subprocess.Popen([sys.executable, "-m", "gateway", "simulate", "--config",
                                              str(self._config)], stdout=subprocess.DEVNULL, stderr=log,
                                             cwd=self._config.parent)

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:  # it may have ended on its own when its pty went away
                self._process.send_signal(signal.SIGINT)
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None


def gateway_store(gateway: GatewayProcess) -> Path:
    return gateway.log_file.parent / "state.sqlite"  # BMSGW_STORE__PATH of GatewayProcess.start


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[GatewayProcess, SocatPair, FarSide]]:
    pair = SocatPair(tmp_path)
    pair.start()
    far_side = FarSide(tmp_path, pair)
    far_side.start()
    config = tmp_path / "site.toml"
    config.write_text(SITE.format(gateway_end=pair.gateway_end, bitrate=BITRATE, tag=time.monotonic_ns()))
    try:
        gateway = GatewayProcess.start(tmp_path, config, {"BMSGW_OPCUA__ENABLED": "false"})
    except BaseException:
        far_side.stop()
        pair.unplug()
        raise
    try:
        yield gateway, pair, far_side
    finally:
        gateway.stop()
        far_side.stop()
        pair.unplug()


def test_an_unplugged_serial_adapter_takes_its_pack_offline_and_is_reconnected_when_plugged_in(
        site: tuple[GatewayProcess, SocatPair, FarSide]) -> None:
    gateway, pair, far_side = site

    def pack_up(pack: str) -> float | None:
        return _value(gateway.scrape(), "bmsgw_pack_up", pack=pack)

    wait_for(lambda: pack_up("behind-adapter") == 1.0 and pack_up("local") == 1.0, 15, "both packs online")
    samples = gateway.scrape()
    assert _value(samples, "bmsgw_can_bus_up", bus="serial") == 1.0
    assert _value(samples, "bmsgw_can_bus_reconnects_total", bus="serial") == 0.0

    pair.unplug()
    unplugged_at = time.monotonic()
    far_side.stop()
    down_s = wait_for(lambda: _value(gateway.scrape(), "bmsgw_can_bus_up", bus="serial") == 0.0, 5,
                      "serial bus down")
    wait_for(lambda: pack_up("behind-adapter") == 0.0, 5, "the pack behind the adapter offline")
    samples = gateway.scrape()
    for limit in ("bmsgw_pack_charge_current_limit_amperes", "bmsgw_pack_discharge_current_limit_amperes"):
        assert _value(samples, limit, pack="behind-adapter") == 0.0
    assert _value(samples, "bmsgw_can_bus_failures_total", bus="serial") == 1.0
    assert _value(samples, "bmsgw_can_bus_last_change_timestamp_seconds", bus="serial") == pytest.approx(
        time.time() - (time.monotonic() - unplugged_at), abs=2.0)
    assert _value(samples, "bmsgw_can_bus_up", bus="local") == 1.0  # the other bus and its pack carry on
    assert pack_up("local") == 1.0
    registers = asyncio.run(gateway.read_pack_registers(SERIAL_PACK_UNIT))  # Modbus serves on
    assert (registers["online"], registers["charge_current_limit"], registers["discharge_current_limit"]) == (0, 0, 0)
    time.sleep(1.5)  # tries fail meanwhile: the adapter's pty is not there
    assert _value(gateway.scrape(), "bmsgw_can_bus_reconnects_total", bus="serial") == 0.0

    pair.start()
    plugged_at = time.monotonic()
    far_side.start()
    reconnect_s = wait_for(lambda: _value(gateway.scrape(), "bmsgw_can_bus_up", bus="serial") == 1.0, 5,
                           "serial bus up again")
    wait_for(lambda: pack_up("behind-adapter") == 1.0, 10, "the pack behind the adapter online again")
    samples = gateway.scrape()
    assert _value(samples, "bmsgw_can_bus_reconnects_total", bus="serial") == 1.0
    assert _value(samples, "bmsgw_can_bus_failures_total", bus="serial") == 1.0
    assert reconnect_s <= 1.5  # at most the longest wait (1 s) after the adapter is back, plus a scrape
    online_again_s = time.monotonic() - plugged_at
    log = gateway.log()
    assert log.count("bus serial: down (receive failed") == 1, log
    assert log.count("bus serial: up again") == 1, log
    # the event log has both changes, as site events, by the gateway's own CLI (`bms-gateway events`)
    listed = subprocess.run([sys.executable, "-m", "gateway", "events", "--format", "json", "--pack", "site",
                             "--store", str(gateway_store(gateway))], capture_output=True, text=True, timeout=60,
                            check=False)
    assert listed.returncode == 0, listed.stderr
    bus_events = [(e["code"], e["severity"]) for e in json.loads(listed.stdout) if e["kind"] == "bus_state"
                  and "bus serial:" in e["detail"]]
    assert bus_events == [("bus_down", "alarm"), ("bus_up", "none")], bus_events
    print(f"serial bus down {down_s:.2f} s after the adapter went (socat and the far side stopped); up again "
          f"{reconnect_s:.2f} s and its pack online {online_again_s:.2f} s after the adapter came back")
