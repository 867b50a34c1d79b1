"""The embedded store (SQLite, WAL): estimator state checkpoints that survive a restart or kill -9.

Each checkpoint is one transaction, so a crash leaves either the previous or the new checkpoint,
never a mix; at most one checkpoint interval of progress is lost.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import AdapterError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pack_state (
    pack_id TEXT PRIMARY KEY,
    cell_model TEXT NOT NULL,
    cell_soc TEXT NOT NULL,
    ah_charged REAL NOT NULL,
    ah_discharged REAL NOT NULL,
    wh_charged REAL NOT NULL,
    wh_discharged REAL NOT NULL,
    saved_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class PackCheckpoint:
    pack_id: str
    cell_model: str
    cell_soc: tuple[float, ...]
    ah_charged: float
    ah_discharged: float
    wh_charged: float
    wh_discharged: float
    saved_at: float = 0.0


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as error:
            raise AdapterError(f"store {path}: cannot be opened ({error}); "
                               "fix [store] path / BMSGW_STORE__PATH or its permissions") from error

    def load(self) -> dict[str, PackCheckpoint]:
        rows = self._db.execute(
            "SELECT pack_id, cell_model, cell_soc, ah_charged, ah_discharged, wh_charged, wh_discharged, "
            "saved_at FROM pack_state").fetchall()
        return {row[0]: PackCheckpoint(row[0], row[1], tuple(json.loads(row[2])), *row[3:]) for row in rows}

    def save(self, checkpoints: list[PackCheckpoint]) -> None:
        now = time.time()
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO pack_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(c.pack_id, c.cell_model, json.dumps(list(c.cell_soc)), c.ah_charged, c.ah_discharged,
                      c.wh_charged, c.wh_discharged, now) for c in checkpoints])
        except sqlite3.Error as error:
            raise AdapterError(f"store {self.path}: checkpoint failed ({error})") from error

    def close(self) -> None:
        self._db.close()
