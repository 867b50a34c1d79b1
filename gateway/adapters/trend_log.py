"""The trend log (SQLite, WAL): pack figures every 5 minutes, per-cell vectors every hour (by default).

It lives in the store's database file beside the checkpoints and the event log, on its own connection.
`pack_trends` has one row per online pack and sample (NULL where a value was unknown); `cell_trends`
keeps each per-cell quantity as little-endian float32 (NaN where unknown), 128 bytes for 32 cells.
`bms-gateway report` reads both back; Prometheus keeps the high-resolution history, this keeps the
long one a maintenance team asks about (SoH over a year) on the gateway itself.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.adapters.sqlite_file import OPEN_FIX, open_part
from gateway.errors import AdapterError
from gateway.settings import TrendSettings

PACK_COLUMNS = ("soc", "soh", "soh_resistance", "pack_voltage_v", "pack_current_a", "cell_voltage_min_v",
                "cell_voltage_max_v", "temperature_min_c", "temperature_max_c", "charge_current_limit_a",
                "discharge_current_limit_a", "cell_soc_spread")
CELL_COLUMNS = ("cell_voltage_v", "temperature_c", "cell_soc", "cell_resistance_ohm", "cell_capacity_ah")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pack_trends (time REAL NOT NULL, pack_id TEXT NOT NULL, "
    + ", ".join(f"{name} REAL" for name in PACK_COLUMNS) + ")",
    "CREATE INDEX IF NOT EXISTS pack_trends_by_pack_time ON pack_trends (pack_id, time)",
    "CREATE INDEX IF NOT EXISTS pack_trends_by_time ON pack_trends (time)",
    "CREATE TABLE IF NOT EXISTS cell_trends (time REAL NOT NULL, pack_id TEXT NOT NULL, "
    + ", ".join(f"{name} BLOB NOT NULL" for name in CELL_COLUMNS) + ")",
    "CREATE INDEX IF NOT EXISTS cell_trends_by_pack_time ON cell_trends (pack_id, time)",
    "CREATE INDEX IF NOT EXISTS cell_trends_by_time ON cell_trends (time)",
)
_SECONDS_PER_DAY = 86_400.0
_CELL_DTYPE = np.dtype("<f4")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PackTrendRow:
    time: float
    pack_id: str
    values: tuple[float, ...]  # PACK_COLUMNS, NaN when unknown


@dataclass(frozen=True)
class CellTrendRow:
    time: float
    pack_id: str
    vectors: tuple[Sequence[float], ...]  # CELL_COLUMNS, one value per cell (per sensor for temperature_c)


@dataclass(frozen=True)
class PackTrendSeries:
    """A pack's samples over a window, column-wise: `time` and one array per name in PACK_COLUMNS."""

    time: FloatArray
    columns: dict[str, FloatArray]


@dataclass(frozen=True)
class CellTrendSeries:
    """A pack's per-cell samples: `time` (samples) and, per name in CELL_COLUMNS, samples x cells."""

    time: FloatArray
    columns: dict[str, FloatArray]


class TrendLog:
    """Appends and reads trend samples. Thread-safe: the recorder writes from a worker thread."""

    def __init__(self, path: Path, settings: TrendSettings | None = None, *, create: bool = True) -> None:
        self.path = path
        self.settings = settings or TrendSettings()
        self._lock = threading.Lock()
        self._db = _connect(path, create)

    def append(self, packs: Sequence[PackTrendRow], cells: Sequence[CellTrendRow] = ()) -> None:
        pack_rows = [(row.time, row.pack_id, *(None if math.isnan(v) else v for v in row.values)) for row in packs]
        cell_rows = [(row.time, row.pack_id, *(np.asarray(v, dtype=_CELL_DTYPE).tobytes() for v in row.vectors))
                     for row in cells]
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(f"INSERT INTO pack_trends VALUES ({', '.join('?' * (2 + len(PACK_COLUMNS)))})",
                                     pack_rows)
                self._db.executemany(f"INSERT INTO cell_trends VALUES ({', '.join('?' * (2 + len(CELL_COLUMNS)))})",
                                     cell_rows)
        except sqlite3.Error as error:
            raise AdapterError(f"trend log {self.path}: write failed ({error}); {OPEN_FIX}") from error

    def pack_series(self, pack_id: str, since: float = -math.inf, until: float = math.inf) -> PackTrendSeries:
        rows = self._select(f"SELECT time, {', '.join(PACK_COLUMNS)} FROM pack_trends "
                            "WHERE pack_id = ? AND time >= ? AND time <= ? ORDER BY time", pack_id, since, until)
        table = np.array(rows, dtype=float).reshape(len(rows), 1 + len(PACK_COLUMNS))  # NULL -> nan
        return PackTrendSeries(table[:, 0], {name: table[:, 1 + i] for i, name in enumerate(PACK_COLUMNS)})

    def cell_series(self, pack_id: str, since: float = -math.inf, until: float = math.inf) -> CellTrendSeries:
        rows = self._select(f"SELECT time, {', '.join(CELL_COLUMNS)} FROM cell_trends "
                            "WHERE pack_id = ? AND time >= ? AND time <= ? ORDER BY time", pack_id, since, until)
        columns: dict[str, FloatArray] = {}
        for i, name in enumerate(CELL_COLUMNS):
            vectors = [np.frombuffer(row[1 + i], dtype=_CELL_DTYPE) for row in rows]
            width = max((len(v) for v in vectors), default=0)
            matrix = np.full((len(rows), width), np.nan)
            for r, vector in enumerate(vectors):  # a swapped pack may have had another cell count
                matrix[r, :len(vector)] = vector
            columns[name] = matrix
        return CellTrendSeries(np.array([row[0] for row in rows], dtype=float), columns)

    def pack_ids(self) -> list[str]:
        return [row[0] for row in self._select("SELECT DISTINCT pack_id FROM pack_trends ORDER BY pack_id")]

    def prune(self, now: float) -> int:
        """Delete samples older than `retention_days`; return how many rows went."""
        cutoff = now - self.settings.retention_days * _SECONDS_PER_DAY
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                removed: int = self._db.execute("DELETE FROM pack_trends WHERE time < ?", (cutoff,)).rowcount
                removed += self._db.execute("DELETE FROM cell_trends WHERE time < ?", (cutoff,)).rowcount
        except sqlite3.Error as error:
            raise AdapterError(f"trend log {self.path}: pruning failed ({error}); {OPEN_FIX}") from error
        return removed

    def close(self) -> None:
        self._db.close()

    def _select(self, query: str, *parameters: object) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self._db.execute(query, parameters).fetchall()
        except sqlite3.Error as error:
            raise AdapterError(f"trend log {self.path}: cannot be read ({error}); "
                               "fix: point it at the gateway's store database ([store] path)") from error


def _connect(path: Path, create: bool) -> sqlite3.Connection:
    # a report only reads (ro); a sample lost to a power cut is harmless (NORMAL), events are FULL
    db = open_part(path, "trend log", _SCHEMA, create=create, synchronous="NORMAL", read_mode="ro")
    if not create and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'pack_trends'").fetchone() is None:
        db.close()
        raise AdapterError(f"trend log {path}: the database has no trend tables; fix: point it at the store of a "
                           "gateway that ran with [trends] enabled")
    return db
