"""gateway/cellfit: capacity, OCV and HPPC fits on the reference tests and on synthetic tests with known answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml

from gateway.bms.cell_model import CellModel, load_cell_model
from gateway.cellfit.builder import read_datasheet
from gateway.cellfit.hppc_fit import TAU_GRID_S, fit_hppc
from gateway.cellfit.ocv_fit import OcvTest, capacity_from_test, fit_ocv
from gateway.cellfit.quality import fit_quality
from gateway.cellfit.rc_filter import filtered_currents
from gateway.cellfit.segments import charge_throughput_ah, split_steps
from gateway.errors import LogError, MappingError
from gateway.logs.measurement_log import MeasurementLog, read_measurement_log
from gateway.settings import DEFAULT_MAPPINGS_DIR

DATA = Path(__file__).resolve().parents[2] / "data" / "cells" / "nmc-200ah"
MODEL = load_cell_model(DEFAULT_MAPPINGS_DIR, "nmc-200ah")
MAX_V = 4.2


@pytest.fixture(scope="module")
def ocv_logs() -> dict[int, MeasurementLog]:
    return {t: read_measurement_log(DATA / f"ocv_test_{t}c.csv.gz") for t in (0, 25, 40)}


@pytest.fixture(scope="module")
def capacity(ocv_logs: dict[int, MeasurementLog]) -> float:
    return capacity_from_test(ocv_logs[25], 0.5)


@pytest.fixture(scope="module")
def ocv_curves(ocv_logs: dict[int, MeasurementLog], capacity: float) -> dict[int, OcvTest]:
    return {t: fit_ocv(log, 0.5, capacity, MAX_V) for t, log in ocv_logs.items()}


def test_capacity_from_the_25c_ocv_test(capacity: float, ocv_logs: dict[int, MeasurementLog]) -> None:
    assert 200.0 <= capacity <= 212.0
    true_ah = json.loads((DATA / "ocv_test_25c.json").read_text(encoding="utf-8"))["true_capacity_ah"][0]
    assert capacity == pytest.approx(true_ah, rel=0.01)
    # the capacity is the discharged charge over the start SoC: half the start SoC, twice the capacity
    assert capacity_from_test(ocv_logs[25], 0.25) == pytest.approx(2.0 * capacity)


@pytest.mark.parametrize("temperature", [0, 25, 40])
def test_ocv_curves_rise_with_soc_and_end_at_the_upper_limit(ocv_curves: dict[int, OcvTest],
                                                             temperature: int) -> None:
    curve = ocv_curves[temperature]
    assert curve.soc_grid[0] == 0.0
    assert curve.soc_grid[-1] == 1.0
    assert (np.diff(curve.soc_grid) > 0.0).all()
    assert (np.diff(curve.ocv_v) > 0.0).all()
    assert curve.ocv_v[-1] == MAX_V
    assert 2.4 <= curve.ocv_v[0] <= 2.8  # SoC 0 is the end of the C/20 discharge at 2.5 V, relaxed
    assert 3.6 <= float(curve.at(np.array([0.5]))[0]) <= 3.9
    assert curve.temperature_c == pytest.approx(temperature, abs=2.0)


def test_ocv_curves_of_the_three_temperatures_agree_at_mid_soc(ocv_curves: dict[int, OcvTest]) -> None:
    middle = np.linspace(0.1, 0.9, 17)
    values = np.array([curve.at(middle) for curve in ocv_curves.values()])
    assert np.ptp(values, axis=0).max() < 0.02


def test_hppc_25c_gives_r0_at_mid_soc(capacity: float, ocv_curves: dict[int, OcvTest]) -> None:
    log = read_measurement_log(DATA / "hppc_25c.csv.gz")
    fit = fit_hppc(log, 1.0, capacity, ocv_curves[25].at)
    assert len(fit.blocks) >= 5
    assert fit.temperature_c == pytest.approx(25.0, abs=1.0)
    middle = min(fit.blocks, key=lambda b: abs(b.soc - 0.5))
    assert abs(middle.soc - 0.5) < 0.06
    assert 0.4e-3 <= middle.r0_ohm <= 0.9e-3
    socs = [b.soc for b in fit.blocks]
    assert socs == sorted(socs, reverse=True)  # one block per 10 % of discharge, from full
    for block in fit.blocks:
        (r1, tau1), (r2, tau2) = block.rc
        assert r1 >= 0.0
        assert r2 >= 0.0
        assert tau2 >= 2.0 * tau1
        assert block.rmse_v < 0.01


def synthetic_log(name: str, segments: Sequence[tuple[float, float, float]]) -> MeasurementLog:
    """A noise-free single-cell log from (duration s, current A, sample period s) segments; voltage left at 0."""
    time_s, current_a = [0.0], [0.0]
    for duration, amps, period in segments:
        for _ in range(round(duration / period)):
            time_s.append(time_s[-1] + period)
            current_a.append(amps)
    time = np.round(np.asarray(time_s), 6)
    return MeasurementLog(Path(name), time, np.asarray(current_a), np.zeros((len(time), 1)),
                          np.full((len(time), 1), 25.0))


def with_voltage(log: MeasurementLog, voltage_v: np.ndarray) -> MeasurementLog:
    return MeasurementLog(log.path, log.time_s, log.current_a, voltage_v[:, None], log.temperature_c)


def rc_response(time_s: np.ndarray, current_a: np.ndarray, tau_s: float) -> np.ndarray:
    """Exact zero-order hold: row k's current over (t[k-1], t[k]], the branch relaxed at the start."""
    z, out = 0.0, np.empty(len(time_s))
    for k, dt in enumerate(np.diff(time_s, prepend=time_s[0])):
        decay = np.exp(-dt / tau_s)
        z = decay * z + (1.0 - decay) * current_a[k]
        out[k] = z
    return out


def synthetic_hppc(r0_ohm: float, pairs: Sequence[tuple[float, float]], capacity_ah: float = 200.0,
                   blocks: int = 4) -> MeasurementLog:
    """The reference procedure (1 h rest, 1C pulse, 0.75C charge pulse, C/2 for 10 %) on a known circuit."""
    block = [(3600.0, 0.0, 1.0), (10.0, -capacity_ah, 0.1), (40.0, 0.0, 0.1), (10.0, 0.75 * capacity_ah, 0.1),
             (40.0, 0.0, 0.1), (720.0, -0.5 * capacity_ah, 1.0)]
    log = synthetic_log("synthetic_hppc.csv", block * blocks + [(3600.0, 0.0, 1.0)])
    soc = 1.0 + charge_throughput_ah(log.time_s, log.current_a) / capacity_ah
    voltage = MODEL.ocv_v(soc) + r0_ohm * log.current_a
    for r_ohm, tau_s in pairs:
        voltage = voltage + r_ohm * rc_response(log.time_s, log.current_a, tau_s)
    return with_voltage(log, voltage)


def test_hppc_fit_recovers_a_known_circuit() -> None:
    fast, slow = float(TAU_GRID_S[9]), float(TAU_GRID_S[20])  # on the search grid: exactly recoverable
    log = synthetic_hppc(0.6e-3, [(0.4e-3, fast), (0.3e-3, slow)])
    fit = fit_hppc(log, 1.0, 200.0, MODEL.ocv_v)
    assert len(fit.blocks) == 4
    assert fit.skipped_blocks == ()
    per_block = (200.0 * 10.0 - 150.0 * 10.0 + 100.0 * 720.0) / 3600.0 / 200.0  # SoC moved by one block
    for number, block in enumerate(fit.blocks):
        assert block.number == number + 1
        assert block.soc == pytest.approx(1.0 - number * per_block, abs=1e-6)  # SoC just before its pulse
        assert block.r0_ohm == pytest.approx(0.6e-3, rel=0.01)
        (r1, tau1), (r2, tau2) = block.rc
        assert (tau1, tau2) == pytest.approx((fast, slow))
        assert r1 == pytest.approx(0.4e-3, rel=0.02)
        assert r2 == pytest.approx(0.3e-3, rel=0.02)
        assert block.rmse_v < 1e-4


def test_hppc_fit_of_time_constants_off_the_grid_keeps_r0_and_the_total() -> None:
    log = synthetic_hppc(0.6e-3, [(0.4e-3, 12.0), (0.3e-3, 400.0)])
    fit = fit_hppc(log, 1.0, 200.0, MODEL.ocv_v)
    for block in fit.blocks:
        assert block.r0_ohm == pytest.approx(0.6e-3, rel=0.03)
        total = block.r0_ohm + sum(r for r, _ in block.rc)
        assert total == pytest.approx(1.3e-3, rel=0.05)


def test_hppc_fit_is_not_misled_by_an_ocv_curve_wrong_in_slope() -> None:
    """Where the OCV curve given to the fit is off over the 10 % partial discharge, R0 and the pairs still hold."""
    log = synthetic_hppc(0.6e-3, [(0.4e-3, float(TAU_GRID_S[9])), (0.3e-3, float(TAU_GRID_S[20]))])

    def too_steep(soc: np.ndarray) -> np.ndarray:  # 0.1 V per unit of SoC steeper than the truth
        result: np.ndarray = MODEL.ocv_v(soc) + 0.1 * (soc - 0.5)
        return result

    fit = fit_hppc(log, 1.0, 200.0, too_steep)
    assert len(fit.blocks) == 4
    for block in fit.blocks:
        assert block.r0_ohm == pytest.approx(0.6e-3, rel=0.02)
        (r1, _), (r2, _) = block.rc
        assert r1 == pytest.approx(0.4e-3, rel=0.05)
        assert r2 == pytest.approx(0.3e-3, rel=0.05)


def test_a_block_no_circuit_describes_is_skipped() -> None:
    log = synthetic_hppc(0.6e-3, [(0.4e-3, 10.0), (0.3e-3, 300.0)])
    pulses = [step.start for step in split_steps(log.current_a) if step.sign < 0 and step.stop - step.start < 600]
    third = slice(pulses[2], pulses[3] - 100)  # inside block 3's fit window only
    wild = log.cell_voltage_v[:, 0].copy()
    wild[third] += 0.2 * np.sin(np.arange(third.stop - third.start) / 7.0)  # 140 mV RMS no RC circuit makes
    fit = fit_hppc(with_voltage(log, wild), 1.0, 200.0, MODEL.ocv_v)
    assert fit.skipped_blocks == (3,)
    assert [b.number for b in fit.blocks] == [1, 2, 4]


def synthetic_ocv_test(capacity_ah: float = 200.0, overpotential_ohm: float = 1e-3) -> MeasurementLog:
    """From SoC 0.5: C/20 charge to full, rest, C/20 discharge to empty, rest, C/20 charge to full (10 s rows)."""
    c20 = capacity_ah / 20.0
    log = synthetic_log("synthetic_ocv.csv", [(36000.0, c20, 10.0), (3600.0, 0.0, 10.0), (72000.0, -c20, 10.0),
                                               (3600.0, 0.0, 10.0), (72000.0, c20, 10.0)])
    soc = 0.5 + charge_throughput_ah(log.time_s, log.current_a) / capacity_ah
    return with_voltage(log, MODEL.ocv_v(soc) + overpotential_ohm * log.current_a)


def test_ocv_fit_recovers_a_known_curve_from_symmetric_overpotentials() -> None:
    log = synthetic_ocv_test()
    assert capacity_from_test(log, 0.5) == pytest.approx(200.0, rel=1e-9)
    curve = fit_ocv(log, 0.5, 200.0, MAX_V)
    inner = (curve.soc_grid > 0.02) & (curve.soc_grid < 0.98)
    error = curve.ocv_v[inner] - MODEL.ocv_v(curve.soc_grid[inner])
    assert np.abs(error).max() < 0.002  # the +-10 mV overpotential cancels between discharge and charge
    assert curve.ocv_v[-1] == MAX_V


def rest_and_charge_only() -> MeasurementLog:
    log = synthetic_log("no_discharge.csv", [(600.0, 0.0, 10.0), (3600.0, 10.0, 10.0), (600.0, 0.0, 10.0)])
    return with_voltage(log, np.full(log.rows, 3.7))


def test_an_ocv_test_without_a_discharge_is_rejected() -> None:
    log = rest_and_charge_only()
    for fit in (lambda: capacity_from_test(log, 0.5), lambda: fit_ocv(log, 0.5, 200.0, MAX_V)):
        with pytest.raises(LogError) as caught:
            fit()
        assert caught.value.problem.source == "no_discharge.csv"
        assert caught.value.problem.key == "current_a"
        assert "discharge" in caught.value.problem.message
        assert "Fix: " in str(caught.value)


def test_an_ocv_test_read_from_a_file_without_a_discharge_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ocv_test.csv"
    path.write_text("time_s,current_a,cell_voltage_v_1,temperature_c_1\n"
                    + "".join(f"{10 * k},{5.0 if 10 <= k < 50 else 0.0},3.7,25\n" for k in range(60)),
                    encoding="utf-8")
    with pytest.raises(LogError) as caught:
        capacity_from_test(read_measurement_log(path), 0.5)
    assert str(path) in str(caught.value)


def test_a_discharge_without_rests_around_it_is_rejected() -> None:
    log = synthetic_log("no_rest.csv", [(3600.0, 10.0, 10.0), (36000.0, -10.0, 10.0), (3600.0, 10.0, 10.0)])
    with pytest.raises(LogError, match="between two rests"):
        capacity_from_test(log, 0.5)


def test_an_ocv_test_without_the_final_slow_charge_is_rejected() -> None:
    log = synthetic_log("no_charge.csv", [(36000.0, 10.0, 10.0), (3600.0, 0.0, 10.0), (72000.0, -10.0, 10.0),
                                          (3600.0, 0.0, 10.0)])
    log = with_voltage(log, np.linspace(4.2, 2.5, log.rows))
    with pytest.raises(LogError, match="slow charge"):
        fit_ocv(log, 0.5, 200.0, MAX_V)


def test_a_discharge_that_ends_above_the_start_soc_is_rejected() -> None:
    log = synthetic_log("too_short.csv", [(36000.0, 10.0, 10.0), (3600.0, 0.0, 10.0), (3600.0, -10.0, 10.0),
                                          (3600.0, 0.0, 10.0)])
    with pytest.raises(LogError, match="above the start SoC"):
        capacity_from_test(log, 0.5)


def test_an_hppc_test_without_pulses_is_rejected() -> None:
    log = with_voltage(synthetic_log("no_pulses.csv", [(3600.0, 0.0, 1.0), (720.0, -100.0, 1.0)]),
                       np.full(4321, 3.7))
    with pytest.raises(LogError, match="no HPPC pulse blocks"):
        fit_hppc(log, 1.0, 200.0, MODEL.ocv_v)


def test_an_hppc_test_with_too_few_blocks_is_rejected() -> None:
    log = synthetic_hppc(0.6e-3, [(0.4e-3, 10.0), (0.3e-3, 300.0)], blocks=2)
    with pytest.raises(LogError, match="at least 3"):
        fit_hppc(log, 1.0, 200.0, MODEL.ocv_v)


def test_charge_throughput_holds_each_rows_current_over_the_interval_before_it() -> None:
    time_s = np.array([0.0, 1.0, 3.0, 4.0])
    current_a = np.array([99.0, 3600.0, -1800.0, 0.0])  # the first row's current flows over no time
    np.testing.assert_allclose(charge_throughput_ah(time_s, current_a), [0.0, 1.0, 0.0, 0.0])


def test_steps_split_where_the_current_changes_sign() -> None:
    steps = split_steps(np.array([0.0, 0.0, -5.0, -5.0, -4.0, 1e-9, 3.0, 3.0]))
    assert [(s.start, s.stop, s.sign) for s in steps] == [(0, 2, 0), (2, 5, -1), (5, 6, 0), (6, 8, 1)]


def test_rc_filter_is_the_exact_zero_order_hold_response() -> None:
    time_s = np.array([0.0, 0.5, 1.5, 4.0, 10.0])
    current_a = np.array([0.0, 10.0, 10.0, 10.0, -4.0])
    taus = np.array([0.7, 30.0])
    result = filtered_currents(time_s, current_a, taus)
    for column, tau in enumerate(taus):
        np.testing.assert_allclose(result[:, column], rc_response(time_s, current_a, float(tau)), rtol=1e-12)
    # a constant current from rest (row 1's current flows from t = 0): i (1 - exp(-t / tau))
    np.testing.assert_allclose(result[3], 10.0 * (1.0 - np.exp(-4.0 / taus)), rtol=1e-12)


def test_committed_model_quality_matches_its_fit_record(capacity: float) -> None:
    assert MODEL.spec.fit is not None
    recorded = next(q for q in MODEL.spec.fit.hppc_quality if abs(q.temperature_c - 25.0) < 2.0)
    quality = fit_quality(CellModel(MODEL.spec), read_measurement_log(DATA / "hppc_25c.csv.gz"), 1.0, capacity)
    assert quality.temperature_c == recorded.temperature_c
    assert quality.voltage_rmse_mv == pytest.approx(recorded.voltage_rmse_mv, abs=0.05)
    assert quality.voltage_max_abs_mv == pytest.approx(recorded.voltage_max_abs_mv, abs=0.5)


def test_datasheet_reading(tmp_path: Path) -> None:
    sheet = read_datasheet(DATA / "datasheet.yaml")
    assert sheet.cell_id == "nmc-200ah"
    assert sheet.chemistry == "nmc"  # from "NMC811 positive / graphite-SiOx negative"
    assert sheet.limits["max_charge_voltage_v"] == 4.2
    raw = yaml.safe_load((DATA / "datasheet.yaml").read_text(encoding="utf-8"))
    raw["chemistry"] = "sodium-ion"
    del raw["min_discharge_voltage_v"]
    del raw["nominal_voltage_v"]
    path = tmp_path / "datasheet.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        read_datasheet(path)
    assert {p.key for p in caught.value.problems} == {"min_discharge_voltage_v", "nominal_voltage_v"}
    assert all(p.source == str(path) and p.fix for p in caught.value.problems)
    raw["min_discharge_voltage_v"], raw["nominal_voltage_v"] = 2.5, 3.6
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(MappingError, match="chemistry"):
        read_datasheet(path)


@pytest.mark.parametrize("cell", ["nmc-200ah", "lfp-230ah"])
def test_committed_models_give_the_10s_resistance_of_the_data(cell: str) -> None:
    """The fitted circuit's 10 s pulse resistance at 50 % and 25 degC against the simulator's: within the
    issue's R0 target (±10 %), so that a cell that has not aged reads as unaged (today nmc +2.3 %, lfp +5.0 %)."""
    meta = json.loads((DATA.parent / cell / "udds.json").read_text())
    measured = float(meta["resistance_10s_50soc_25c_ohm"][0])
    model = load_cell_model(DEFAULT_MAPPINGS_DIR, cell)
    assert model.pulse_resistance_ohm() == pytest.approx(measured, rel=0.10)
