from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gateway.bms.cell_model import load_cell_model
from gateway.bms.derating import window_table
from gateway.config_loader import load_settings
from gateway.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
VALID = """
[[buses]]
name = "can0"
interface = "virtual"
channel = "x"

[[packs]]
id = "pack-a"
bus = "can0"
node_address = 1
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_examples_are_valid(example: Path) -> None:
    assert load_settings(example).packs


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BMSGW_MODBUS__PORT", "1502")
    settings = load_settings(write(tmp_path, VALID))
    assert settings.modbus.port == 1502
    assert settings.unit_id_of(settings.packs[0]) == 2


@pytest.mark.parametrize(
    ("change", "key", "fix"),
    [
        (("node_address = 1", "node_address = 1\nseries_cells = 40"), "packs[0].series_cells", "<= 32"),
        (("node_address = 1", "node_address = 1\nvoltage = 3"), "packs[0].voltage", "remove this key"),
        (('bus = "can0"', 'bus = "can9"'), "packs[0].bus", "add a [[buses]] entry"),
        (('id = "pack-a"', 'id = "pack a!"'), "packs[0].id", "letters, digits"),
        (("node_address = 1", 'node_address = 1\ncell_model = "nope"'), "packs[0].cell_model", "nmc-200ah"),
        (("", "\n[balancing]\ntarget_spread_soc = 2"), "balancing", "target_spread_soc must be above 0 and below 1"),
        (("", "\n[limits]\ncharge_soc_taper = [0.9, 0.9]"), "limits", "charge_soc_taper must be two different"),
        (("", "\n[admission]\nmin_soh = 1.5"), "admission.min_soh", "<= 1"),
        (("", "\n[limits.charge_derating.nmc-200ah]\ntemperature_c = [0, 10, 5]\nfactor = [0, 1, 1]"),
         "limits.charge_derating.nmc-200ah", "do not increase strictly"),
        (("", "\n[limits.discharge_derating.nmc-200ah]\ntemperature_c = [0, 10]\nfactor = [0, 1.5]"),
         "limits.discharge_derating.nmc-200ah", "not all within 0..1"),
        (("", "\n[limits.charge_derating.nmc-999ah]\ntemperature_c = [0, 10]\nfactor = [0, 1]"),
         "limits.charge_derating.nmc-999ah", "lfp-230ah"),
    ],
)
def test_errors_name_file_key_and_fix(tmp_path: Path, change: tuple[str, str], key: str, fix: str) -> None:
    old, new = change
    text = VALID.replace(old, new) if old and old in VALID else VALID + new
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert str(path) in message
    assert key in message
    assert fix in message


def test_duplicate_nodes_and_unit_ids_are_refused(tmp_path: Path) -> None:
    text = VALID + '\n[[packs]]\nid = "pack-b"\nbus = "can0"\nnode_address = 1\nmodbus_unit_id = 1\n'
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text))
    assert "packs[1].node_address" in str(error.value)
    assert "Modbus unit id 1" in str(error.value)


def test_environment_errors_name_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BMSGW_ENGINE__TICK_HZ", "fast")
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, VALID))
    assert "BMSGW_ENGINE__TICK_HZ" in str(error.value)
    assert "engine.tick_hz" in str(error.value)


def test_check_config_command_exit_codes(tmp_path: Path) -> None:
    good = subprocess.run([sys.executable, "-m", "gateway", "check-config", str(write(tmp_path, VALID))],
                          capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr
    assert "pack pack-a: bus can0 node 1" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[[buses]\nname=")
    result = subprocess.run([sys.executable, "-m", "gateway", "check-config", str(bad)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "bad.toml" in result.stderr
    assert "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_reads_the_pack_registry(tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    site = write(tmp_path, VALID + f'\n[admission]\nregistry = "{registry}"\n')

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "check-config", str(site)], capture_output=True,
                              text=True, check=False)

    missing = check()
    assert missing.returncode == 2
    assert "registry.yaml" in missing.stderr
    assert "Traceback" not in missing.stderr
    registry.write_text("known:\n  - {serial: '1001'}\nblocked:\n  - {serial: '1002', reason: cracked case}\n")
    good = check()
    assert good.returncode == 0, good.stderr
    assert "1 known, 1 blocked, unknown packs: refuse" in good.stdout


def test_a_configured_derating_table_replaces_the_datasheet_window(tmp_path: Path) -> None:
    table = "\n[limits.charge_derating.nmc-200ah]\ntemperature_c = [0, 10, 15, 35, 45]\nfactor = [0.1, 0.1, 1, 1, 0]\n"
    settings = load_settings(write(tmp_path, VALID + table))
    model = load_cell_model(settings.mappings_dir, "nmc-200ah")
    charge, discharge = settings.limits.resolved().derating_tables(model)
    assert charge.at(np.array([5.0, 12.5, 40.0])).tolist() == pytest.approx([0.1, 0.55, 0.5])
    assert discharge == window_table(-20.0, 60.0, settings.limits.temperature_ramp_c)
