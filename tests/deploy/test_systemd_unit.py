"""The systemd unit: systemd itself verifies it, rates its exposure (offline) as low, and it runs the gateway
with its state where the sandbox lets it write."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.external_tools import unavailable

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "bms-gateway.service"
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 safe .. 10 unsafe; "OK" is below 4.5


def _systemd_analyze() -> str:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        unavailable("systemd-analyze is needed to check the unit (Debian package systemd)")
    assert binary is not None
    return binary


def _service_section() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    gateway = shutil.which("bms-gateway")
    assert gateway is not None
    unit = tmp_path / UNIT.name  # the executable where the unit expects it does not exist on this machine
    unit.write_text(UNIT.read_text().replace("/opt/bms-gateway/bin/bms-gateway", gateway))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_the_unit_s_exposure_is_low() -> None:
    result = subprocess.run([_systemd_analyze(), "security", "--offline=true", str(UNIT)], capture_output=True,
                            text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert level is not None, result.stdout + result.stderr
    assert float(level[1]) <= MAX_EXPOSURE, result.stdout


def test_the_gateway_runs_unprivileged_with_its_state_in_the_state_directory() -> None:
    service = _service_section()
    assert service["DynamicUser"] == ["yes"]
    assert service["StateDirectory"] == ["bms-gateway"]
    state = "/var/lib/bms-gateway"
    assert service["WorkingDirectory"] == [state]  # the OPC UA PKI's relative paths land here
    assert service["Environment"] == [f"BMSGW_STORE__PATH={state}/state.sqlite"]
    assert service["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert "AF_CAN" in service["RestrictAddressFamilies"][0].split()
    assert service["KillSignal"] == ["SIGINT"]  # a clean stop writes the last checkpoint
