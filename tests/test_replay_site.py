"""`bms-gateway replay --config SITE --serial S`: the site's safety settings and the admission gate in a replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.domain.states import AdmissionReason, AdmissionStatus
from tests.test_offline_commands import States, in_process, read_states, short_log


def replay(capsys: pytest.CaptureFixture[str], directory: Path, *options: str | Path) -> States:
    output = directory / "states.csv"
    done = in_process(capsys, "replay", "--cell", "nmc-200ah", "--input", short_log(directory, 300), "--output",
                      output, *options)
    assert done.returncode == 0, done.stderr
    return read_states(output)


def site(directory: Path, text: str) -> Path:
    path = directory / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_a_serial_every_sample_is_admitted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    states = replay(capsys, tmp_path)
    assert (states["admission_status"] == int(AdmissionStatus.ADMITTED)).all()
    assert (states["admission_reasons"] == 0).all()


def test_a_serial_runs_the_gate_and_no_limit_flows_before_admission(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    states = replay(capsys, tmp_path, "--serial", "SN-1001")
    status, limit = states["admission_status"], states["discharge_current_limit_a"]
    admitted = status == int(AdmissionStatus.ADMITTED)
    first = int(np.argmax(admitted))
    assert first > 0  # pending for the confirm time ...
    assert admitted[first:].all()  # ... then admitted for good
    assert (status[:first] == int(AdmissionStatus.PENDING)).all()
    assert (limit[:first] == 0.0).all()
    assert limit[first:].max() > 10.0
    confirmed_after_s = states["time_s"][first] - states["time_s"][0]
    assert 4.0 <= confirmed_after_s <= 8.0  # the default confirm time, 5 s, measured from the first fresh sample


def test_a_blocked_serial_from_the_site_registry_never_gets_a_limit(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text("blocked:\n  - {serial: SN-1002, reason: swollen case}\n", encoding="utf-8")
    config = site(tmp_path, f'[admission]\nregistry = "{registry}"\n')
    states = replay(capsys, tmp_path, "--config", config, "--serial", "SN-1002")
    assert (states["admission_status"] == int(AdmissionStatus.NOT_ADMITTED)).all()
    assert (states["admission_reasons"].astype(int) & int(AdmissionReason.BLOCKED)).all()
    assert (states["charge_current_limit_a"] == 0.0).all()
    assert (states["discharge_current_limit_a"] == 0.0).all()


def test_the_site_derating_table_applies(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    default = replay(capsys, tmp_path)["discharge_current_limit_a"]
    config = site(tmp_path, "[limits.discharge_derating.nmc-200ah]\ntemperature_c = [-20, 60]\nfactor = [0.25, 0.25]\n")
    derated = replay(capsys, tmp_path, "--config", config)["discharge_current_limit_a"]
    assert derated.max() <= 0.25 * 2.0 * 200.0 + 1e-6  # a quarter of the 2 C continuous rating
    assert default.max() > 2.0 * derated.max()


def test_a_bad_site_file_names_file_and_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = site(tmp_path, "[limits]\nvoltage_taper_v = -1\n")
    done = in_process(capsys, "replay", "--cell", "nmc-200ah", "--input", short_log(tmp_path), "--output",
                      tmp_path / "states.csv", "--config", config)
    assert done.returncode == 2
    assert str(config) in done.stderr
    assert "limits.voltage_taper_v" in done.stderr
    assert not (tmp_path / "states.csv").exists()
