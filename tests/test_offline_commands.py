"""`bms-gateway replay` and `bms-gateway cell fit` as a user runs them: `python3 -m gateway ...` in a subprocess."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import yaml

from gateway.bms.cell_model import CellModelSpec, load_cell_model
from gateway.cli import main
from gateway.codec.yaml_source import load_validated_mapping
from gateway.errors import MappingError
from gateway.settings import DEFAULT_MAPPINGS_DIR

ROOT = Path(__file__).resolve().parents[1]
CELLS_DATA = ROOT / "data" / "cells"
UDDS = CELLS_DATA / "nmc-200ah" / "udds.csv.gz"
UDDS_TRUTH = CELLS_DATA / "nmc-200ah" / "udds.truth.csv.gz"
ROWS = 1500
REQUIRED = ("time_s", "soc", "soc_sigma", "soh", "soc_cell_1", "capacity_ah_1", "r0_ohm_1")


def bms_gateway(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """`python3 -m gateway ...` as a separate process."""
    return subprocess.run([sys.executable, "-m", "gateway", *map(str, arguments)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def in_process(capsys: pytest.CaptureFixture[str], *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """The same command line through `gateway.cli.main` in this process (no interpreter start-up)."""
    capsys.readouterr()
    code = main([str(a) for a in arguments])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["bms-gateway", *map(str, arguments)], code, captured.out, captured.err)


@dataclass(frozen=True)
class States:
    columns: list[str]
    rows: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        return self.rows[:, self.columns.index(name)]


def read_states(path: Path) -> States:
    with path.open(encoding="utf-8") as handle:
        columns = handle.readline().strip().split(",")
    return States(columns, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2))


@pytest.fixture(scope="module")
def short_udds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first ROWS samples of the nmc-200ah UDDS log (gzip, like the reference data)."""
    with gzip.open(UDDS, "rt", encoding="utf-8") as handle:
        lines = [handle.readline() for _ in range(ROWS + 1)]
    path = tmp_path_factory.mktemp("logs") / "udds_short.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(lines)
    return path


@pytest.fixture(scope="module")
def replayed(short_udds: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[States, str]:
    output = tmp_path_factory.mktemp("states") / "states.csv"
    done = bms_gateway("replay", "--cell", "nmc-200ah", "--input", short_udds, "--output", output)
    assert done.returncode == 0, done.stderr
    return read_states(output), done.stderr


def input_times(path: Path) -> np.ndarray:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return np.loadtxt(handle, delimiter=",", skiprows=1, usecols=0)


def true_soc_at(times: np.ndarray) -> np.ndarray:
    with gzip.open(UDDS_TRUTH, "rt", encoding="utf-8") as handle:
        names = handle.readline().strip().split(",")
        truth = np.loadtxt(handle, delimiter=",")
    soc: np.ndarray = np.interp(times, truth[:, names.index("time_s")], truth[:, names.index("soc_true_1")])
    return soc


def test_replay_writes_one_state_row_per_sample(replayed: tuple[States, str], short_udds: Path) -> None:
    states, stderr = replayed
    for column in REQUIRED:
        assert column in states.columns
    assert states.rows.shape[0] == ROWS
    np.testing.assert_allclose(states["time_s"], input_times(short_udds), rtol=0.0, atol=1e-3)
    assert f"replayed {ROWS} samples of 1 cell(s)" in stderr
    assert np.isfinite(states.rows).all()


def test_replayed_soc_follows_the_truth(replayed: tuple[States, str]) -> None:
    states, _ = replayed
    soc = states["soc"]
    assert ((soc >= 0.0) & (soc <= 1.0)).all()
    error = np.abs(soc - true_soc_at(states["time_s"]))
    assert error.max() <= 0.03
    assert soc[-1] < soc[0] - 0.02  # the drive profile really discharged the cell: not a constant
    np.testing.assert_allclose(states["soc_cell_1"], soc, atol=1e-6)  # one cell: the pack is the cell
    assert ((states["soc_sigma"] > 0.0) & (states["soc_sigma"] < 0.05)).all()


def test_replayed_capacity_soh_and_resistance_are_plausible(replayed: tuple[States, str]) -> None:
    states, _ = replayed
    assert ((states["capacity_ah_1"] > 180.0) & (states["capacity_ah_1"] < 230.0)).all()
    assert ((states["soh"] > 0.9) & (states["soh"] <= 1.1)).all()
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
    assert states["r0_ohm_1"][0] == pytest.approx(model.pulse_resistance_ohm(), rel=1e-5)  # no growth learned yet
    assert ((states["r0_ohm_1"] > 0.3e-3) & (states["r0_ohm_1"] < 1.5e-3)).all()


@pytest.fixture(scope="module")
def replayed_from_half(short_udds: Path, tmp_path_factory: pytest.TempPathFactory) -> States:
    output = tmp_path_factory.mktemp("states") / "states.csv"
    done = bms_gateway("replay", "--cell", "nmc-200ah", "--input", short_udds, "--output", output,
                       "--initial-soc", "0.5")
    assert done.returncode == 0, done.stderr
    return read_states(output)


def test_replay_from_a_given_initial_soc(replayed_from_half: States, replayed: tuple[States, str]) -> None:
    states = replayed_from_half
    default, _ = replayed
    assert states.rows.shape[0] == ROWS
    assert states["soc"][0] < default["soc"][0] - 0.03  # the start took effect (truth is 0.95) ...
    assert states["soc"][0] >= 0.5 - 1e-6
    error = np.abs(states["soc"] - true_soc_at(states["time_s"]))
    assert error[300:].max() <= 0.03  # ... and the voltage corrected it


def short_log(directory: Path, rows: int = 200) -> Path:
    with gzip.open(UDDS, "rt", encoding="utf-8") as handle:
        lines = [handle.readline() for _ in range(rows + 1)]
    path = directory / "short.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def replay_with_capacity(capsys: pytest.CaptureFixture[str], directory: Path, capacity_ah: float) -> States:
    output = directory / "states.csv"
    done = in_process(capsys, "replay", "--cell", "nmc-200ah", "--input", short_log(directory), "--output", output,
                      "--capacity-ah", str(capacity_ah))
    assert done.returncode == 0, done.stderr
    return read_states(output)


def test_replay_with_a_start_capacity(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert replay_with_capacity(capsys, tmp_path, 185.0)["capacity_ah_1"][0] == pytest.approx(185.0, rel=1e-6)


def test_replay_start_capacity_shows_in_soh(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert replay_with_capacity(capsys, tmp_path, 185.0)["soh"][0] == pytest.approx(185.0 / 200.0, abs=0.01)


def assert_clear_failure(done: subprocess.CompletedProcess[str], *mentions: str) -> None:
    assert done.returncode == 2
    assert done.stderr.startswith("bms-gateway: ")
    assert "Traceback" not in done.stderr
    assert "Fix: " in done.stderr
    for text in mentions:
        assert text in done.stderr


def test_replay_of_a_bad_log_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "backwards.csv"
    log.write_text("time_s,current_a,cell_voltage_v_1,temperature_c_1\n0,-1,3.9,25\n2,-1,3.9,25\n1,-1,3.9,25\n",
                   encoding="utf-8")
    output = tmp_path / "states.csv"
    done = bms_gateway("replay", "--cell", "nmc-200ah", "--input", log, "--output", output)
    assert_clear_failure(done, "invalid measurement log", str(log), "row 4", "time_s")
    assert not output.exists()


def test_replay_of_a_missing_log_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "nowhere.csv.gz"
    done = in_process(capsys, "replay", "--cell", "nmc-200ah", "--input", log, "--output", tmp_path / "states.csv")
    assert_clear_failure(done, str(log), "does not exist")


LOG_HEADER = b"time_s,current_a,cell_voltage_v_1,temperature_c_1\n"


@pytest.mark.parametrize(("content", "mentions"), [
    (LOG_HEADER + b"0,-1,3.9,25\n1,-1,3.9 V,25\n", ("row 3, column cell_voltage_v_1", "'3.9 V' is not a number")),
    (LOG_HEADER + b"0,-1,3.9,25\n1,-1,3.9,25 \xb0C\n", ("row 3", "not UTF-8")),
    (LOG_HEADER + b"0,-1,3900,25\n", ("row 2, column cell_voltage_v_1", "millivolts")),
    (LOG_HEADER, ("no data rows",)),
    (b"time_s,current_a,cell_voltage_v_1,cell_voltage_v_01,temperature_c_1\n0,-1,3.9,3.9,25\n",
     ("cell_voltage_v_1 and cell_voltage_v_01",)),
])
def test_replay_of_a_malformed_log_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes,
                                           mentions: tuple[str, ...]) -> None:
    log = tmp_path / "malformed.csv"
    log.write_bytes(content)
    output = tmp_path / "states.csv"
    done = in_process(capsys, "replay", "--cell", "nmc-200ah", "--input", log, "--output", output)
    assert_clear_failure(done, "invalid measurement log", str(log), *mentions)
    assert not output.exists()


def test_replay_reads_empty_fields_as_dropouts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = short_log(tmp_path, 60).read_text(encoding="utf-8").splitlines()
    for row in (10, 11, 30):  # the current (rows 10, 11), then the voltage (row 30) go missing
        fields = lines[row].split(",")
        fields[1 if row < 30 else 2] = ""
        lines[row] = ",".join(fields)
    log = tmp_path / "dropouts.csv"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "states.csv"
    done = in_process(capsys, "replay", "--cell", "nmc-200ah", "--input", log, "--output", output)
    assert done.returncode == 0, done.stderr
    states = read_states(output)
    assert states.rows.shape[0] == 60
    assert np.isfinite(states["soc"]).all()


@pytest.mark.parametrize("cell", ["nmc-999ah", "missing/model.yaml"])
def test_replay_with_a_missing_cell_model_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  cell: str) -> None:
    output = tmp_path / "states.csv"
    done = in_process(capsys, "replay", "--cell", cell, "--input", short_log(tmp_path), "--output", output)
    assert_clear_failure(done, "invalid mapping", Path(cell).stem, "cannot be read")
    assert not output.exists()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`cell fit` of nmc-200ah from its 25 degC reference tests."""
    data = CELLS_DATA / "nmc-200ah"
    output = tmp_path_factory.mktemp("fit") / "nmc-200ah.yaml"
    done = bms_gateway("cell", "fit", "--datasheet", data / "datasheet.yaml", "--ocv", data / "ocv_test_25c.csv.gz",
                       "--hppc", data / "hppc_25c.csv.gz", "--output", output)
    assert done.returncode == 0, done.stderr
    return output, done.stdout


def test_cell_fit_writes_a_valid_model_and_reports_its_quality(fitted: tuple[Path, str]) -> None:
    output, stdout = fitted
    spec = load_validated_mapping(output, CellModelSpec)
    assert spec.cell_id == "nmc-200ah"
    assert spec.chemistry == "nmc"
    assert spec.nominal_capacity_ah == 200.0
    assert spec.limits.max_charge_voltage_v == 4.2
    assert spec.fit is not None
    assert spec.fit.sources == ("ocv_test_25c.csv.gz", "hppc_25c.csv.gz")
    assert 200.0 <= spec.fit.capacity_c20_ah <= 212.0
    (quality,) = spec.fit.hppc_quality
    assert 0.0 < quality.voltage_rmse_mv < 30.0
    assert quality.voltage_rmse_mv <= quality.voltage_max_abs_mv
    assert quality.temperature_c == pytest.approx(25.0, abs=2.0)
    reported = re.search(r"RMSE ([0-9.]+) mV, max ([0-9.]+) mV", stdout)
    assert reported is not None, stdout
    assert float(reported.group(1)) == pytest.approx(quality.voltage_rmse_mv, abs=0.01)
    assert float(reported.group(2)) == pytest.approx(quality.voltage_max_abs_mv, abs=0.1)
    assert f"wrote {output}" in stdout


def test_cell_fit_reproduces_the_committed_model_at_25c(fitted: tuple[Path, str]) -> None:
    spec = load_validated_mapping(fitted[0], CellModelSpec)
    committed = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah").spec
    row = committed.ocv.temperature_c.index(25.0)
    assert spec.ocv.soc == committed.ocv.soc
    np.testing.assert_allclose(spec.ocv.voltage_v[0], committed.ocv.voltage_v[row], atol=2e-5)
    circuit, reference = spec.equivalent_circuit, committed.equivalent_circuit
    assert circuit.soc == reference.soc
    row = reference.temperature_c.index(25.0)
    np.testing.assert_allclose(circuit.r0_ohm[0], reference.r0_ohm[row], atol=2e-7)
    for pair, expected in zip(circuit.rc, reference.rc, strict=True):
        np.testing.assert_allclose(pair.r_ohm[0], expected.r_ohm[row], atol=2e-7)


def test_a_fitted_model_file_can_be_replayed(capsys: pytest.CaptureFixture[str], fitted: tuple[Path, str],
                                             tmp_path: Path) -> None:
    output = tmp_path / "states.csv"
    done = in_process(capsys, "replay", "--cell", fitted[0], "--input", short_log(tmp_path, 100), "--output", output)
    assert done.returncode == 0, done.stderr
    assert read_states(output).rows.shape[0] == 100


def test_cell_fit_of_lfp_reports_rmse(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = CELLS_DATA / "lfp-230ah"
    output = tmp_path / "lfp.yaml"
    done = in_process(capsys, "cell", "fit", "--datasheet", data / "datasheet.yaml",
                      "--ocv", data / "ocv_test_25c.csv.gz", "--hppc", data / "hppc_25c.csv.gz", "--output", output)
    assert done.returncode == 0, done.stderr
    spec = CellModelSpec.model_validate(yaml.safe_load(output.read_text(encoding="utf-8")))
    assert spec.chemistry == "lfp"
    assert spec.fit is not None
    assert spec.fit.hppc_quality
    assert all(q.voltage_rmse_mv > 0.0 for q in spec.fit.hppc_quality)
    assert "RMSE" in done.stdout


def test_cell_fit_with_an_incomplete_datasheet_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = CELLS_DATA / "nmc-200ah"
    sheet = yaml.safe_load((data / "datasheet.yaml").read_text(encoding="utf-8"))
    del sheet["max_charge_voltage_v"]
    datasheet = tmp_path / "datasheet.yaml"
    datasheet.write_text(yaml.safe_dump(sheet), encoding="utf-8")
    output = tmp_path / "model.yaml"
    done = in_process(capsys, "cell", "fit", "--datasheet", datasheet, "--ocv", data / "ocv_test_25c.csv.gz",
                      "--hppc", data / "hppc_25c.csv.gz", "--output", output)
    assert_clear_failure(done, str(datasheet), "max_charge_voltage_v")
    assert not output.exists()


def test_cell_fit_with_a_pack_log_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = CELLS_DATA / "nmc-200ah"
    done = in_process(capsys, "cell", "fit", "--datasheet", data / "datasheet.yaml",
                      "--ocv", data / "pack16s_udds.csv.gz", "--hppc", data / "hppc_25c.csv.gz",
                      "--output", tmp_path / "model.yaml")
    assert_clear_failure(done, "pack16s_udds.csv.gz", "cell_voltage_v_1")


def committed_model() -> dict[str, object]:
    raw = yaml.safe_load((DEFAULT_MAPPINGS_DIR / "cells" / "nmc-200ah.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def broken_models() -> dict[str, tuple[dict[str, object], str]]:
    """name -> (model file content, the key its problem must name)."""
    falling = committed_model()
    ocv = falling["ocv"]
    assert isinstance(ocv, dict)
    row = list(ocv["voltage_v"][1])
    row[50], row[51] = row[51], row[50]  # OCV falls between 50 % and 51 % SoC
    ocv["voltage_v"][1] = row
    missing = committed_model()
    del missing["nominal_capacity_ah"]
    misspelt = committed_model()
    misspelt["nominal_capacity"] = misspelt.pop("nominal_capacity_ah")
    negative = committed_model()
    negative["limits"]["max_charge_voltage_v"] = -4.2  # type: ignore[index]
    short_row = committed_model()
    short_row["ocv"]["voltage_v"][2].pop()  # type: ignore[index]
    slow_rc = committed_model()
    slow_rc["equivalent_circuit"]["rc"][1]["tau_s"][0][3] = 1e6  # type: ignore[index]
    rc_mapping = committed_model()
    circuit = rc_mapping["equivalent_circuit"]
    assert isinstance(circuit, dict)
    circuit["rc"] = {"pairs": circuit["rc"]}  # a mapping where a list belongs: a long input, cut in the message
    return {
        "falling_ocv": (falling, "ocv.voltage_v[1][51]"),  # the entry that falls, not just the section
        "missing_key": (missing, "nominal_capacity_ah"),
        "misspelt_key": (misspelt, "nominal_capacity"),
        "negative_limit": (negative, "limits.max_charge_voltage_v"),
        "short_ocv_row": (short_row, "ocv.voltage_v[2]"),
        "rc_tau_out_of_range": (slow_rc, "equivalent_circuit.rc[1].tau_s[0][3]"),
        "rc_not_a_list": (rc_mapping, "equivalent_circuit.rc"),
    }


@pytest.mark.parametrize("name", sorted(broken_models()))
def test_broken_cell_model_is_rejected_at_start_with_file_key_and_fix(capsys: pytest.CaptureFixture[str], name: str,
                                                                     tmp_path: Path) -> None:
    content, key = broken_models()[name]
    cells = tmp_path / "cells"
    cells.mkdir()
    path = cells / f"{name}.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_cell_model(tmp_path, name)
    problems = caught.value.problems
    assert any(p.source == str(path) and p.key == key and p.fix for p in problems), problems
    output = tmp_path / "states.csv"
    run = bms_gateway if name == "falling_ocv" else partial(in_process, capsys)  # one as a real process
    done = run("replay", "--cell", path, "--input", short_log(tmp_path, 20), "--output", output)
    assert_clear_failure(done, str(path), key)
    assert not output.exists()


def test_falling_ocv_row_names_the_table_and_stays_short(tmp_path: Path) -> None:
    content, _ = broken_models()["falling_ocv"]
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "falling.yaml").write_text(yaml.safe_dump(content), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_cell_model(tmp_path, "falling")
    (problem,) = caught.value.problems
    assert "voltage_v" in problem.key
    assert len(str(problem)) < 500
    assert "25.0 degC" in problem.message  # which OCV curve
    assert "rise with SoC" in problem.message
    assert "cell fit" in problem.fix  # a table-specific fix, not pydantic's generic one


@pytest.mark.parametrize("name", sorted(broken_models()))
def test_every_cell_model_problem_is_one_short_line(tmp_path: Path, name: str) -> None:
    content, key = broken_models()[name]
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / f"{name}.yaml").write_text(yaml.safe_dump(content), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_cell_model(tmp_path, name)
    problems = caught.value.problems
    assert [p.key for p in problems if p.key == key] == [key]
    for problem in problems:  # a misspelt key is two problems: the unknown and the missing key
        assert len(str(problem)) < 500, str(problem)
        assert "Value error" not in problem.message  # pydantic's wrapper text is not shown


def test_replay_writes_the_safety_core_columns(replayed: tuple[States, str]) -> None:
    states, _ = replayed
    current, power = states["discharge_current_limit_a"], states["discharge_power_limit_w"]
    assert (current >= 0.0).all()
    assert (power >= 0.0).all()
    flowing = current > 1.0
    assert flowing.mean() > 0.5  # after the ramp-up from 0 the replayed cell may discharge
    volts_per_ampere = power[flowing] / current[flowing]
    assert ((volts_per_ampere > 2.0) & (volts_per_ampere < 4.3)).all()  # one cell's voltage under that current
    assert (states["discharge_current_limit_10s_a"] >= states["discharge_current_limit_30s_a"] - 1e-6).all()
    assert set(np.unique(states["balancing_status"])) <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0}
