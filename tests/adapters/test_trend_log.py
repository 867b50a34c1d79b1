"""The trend log in a real SQLite file: rows back as written, unknown values as NaN, windows, retention."""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from gateway.adapters.trend_log import CELL_COLUMNS, PACK_COLUMNS, CellTrendRow, PackTrendRow, TrendLog
from gateway.errors import AdapterError
from gateway.settings import TrendSettings


def _pack_row(at: float, pack_id: str = "p1", soc: float = 0.5) -> PackTrendRow:
    values = [float(i) for i in range(len(PACK_COLUMNS))]
    values[PACK_COLUMNS.index("soc")] = soc
    return PackTrendRow(at, pack_id, tuple(values))


def _cell_row(at: float, cells: int = 4, pack_id: str = "p1") -> CellTrendRow:
    return CellTrendRow(at, pack_id, tuple([float(c) + 0.25 * k for c in range(cells)]
                                           for k in range(len(CELL_COLUMNS))))


def test_pack_rows_come_back_column_wise_in_time_order_with_unknown_as_nan(tmp_path: Path) -> None:
    log = TrendLog(tmp_path / "store.sqlite")
    log.append([_pack_row(20.0, soc=0.7), _pack_row(10.0, soc=math.nan), _pack_row(15.0, "other")])
    series = log.pack_series("p1")
    assert series.time.tolist() == [10.0, 20.0]
    assert math.isnan(series.columns["soc"][0])
    assert series.columns["soc"][1] == 0.7
    assert series.columns["temperature_max_c"].tolist() == [float(PACK_COLUMNS.index("temperature_max_c"))] * 2
    assert log.pack_series("p1", since=12.0).time.tolist() == [20.0]
    assert log.pack_ids() == ["other", "p1"]


def test_cell_vectors_are_float32_per_cell_and_a_shorter_pack_is_padded_with_nan(tmp_path: Path) -> None:
    log = TrendLog(tmp_path / "store.sqlite")
    row = _cell_row(1.0, cells=4)
    row = CellTrendRow(1.0, "p1", ((3.6001, math.nan, 3.7, 3.65), *row.vectors[1:]))
    log.append([], [row, _cell_row(2.0, cells=3)])
    series = log.cell_series("p1")
    voltages = series.columns["cell_voltage_v"]
    assert voltages.shape == (2, 4)
    assert voltages[0, 0] == pytest.approx(3.6001, abs=1e-6)
    assert math.isnan(voltages[0, 1])
    assert math.isnan(voltages[1, 3])
    assert voltages[1, 2] == 2.0
    assert series.columns["cell_capacity_ah"][1].tolist()[:3] == [1.0, 2.0, 3.0]
    size = sqlite3.connect(tmp_path / "store.sqlite").execute(
        "SELECT length(cell_voltage_v) FROM cell_trends ORDER BY time").fetchall()
    assert size == [(16,), (12,)]


def test_prune_removes_only_samples_older_than_the_retention(tmp_path: Path) -> None:
    log = TrendLog(tmp_path / "store.sqlite", TrendSettings(retention_days=1.0))
    now = time.time()
    log.append([_pack_row(now - 2 * 86_400.0), _pack_row(now - 3600.0)],
               [_cell_row(now - 2 * 86_400.0), _cell_row(now)])
    assert log.prune(now) == 2
    assert log.pack_series("p1").time.tolist() == [now - 3600.0]
    assert np.array_equal(log.cell_series("p1").time, [now])


def test_a_reader_never_creates_a_database_and_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="cannot be opened"):
        TrendLog(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    sqlite3.connect(tmp_path / "other.sqlite").execute("CREATE TABLE unrelated (x)")
    with pytest.raises(AdapterError, match=r"no trend tables; fix"):
        TrendLog(tmp_path / "other.sqlite", create=False)


def test_rows_written_survive_a_new_connection(tmp_path: Path) -> None:
    TrendLog(tmp_path / "store.sqlite").append([_pack_row(1.0)], [_cell_row(1.0)])
    reader = TrendLog(tmp_path / "store.sqlite", create=False)
    assert reader.pack_series("p1").time.tolist() == [1.0]
    assert reader.cell_series("p1").columns["cell_soc"].shape == (1, 4)
