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
from typing import Any

from gateway.errors import AdapterError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS estimator_state (
    pack_id TEXT PRIMARY KEY,
    cell_model TEXT NOT NULL,
    cells INTEGER NOT NULL,
    state TEXT NOT NULL,
    saved_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class PackCheckpoint:
    """One pack's estimator and usage state; `state` is a JSON-ready document (runtime/checkpoints.py)."""

    pack_id: str
    cell_model: str
    cells: int
    state: dict[str, Any]
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
        rows = self._db.execute("SELECT pack_id, cell_model, cells, state, saved_at FROM estimator_state").fetchall()
        return {row[0]: PackCheckpoint(row[0], row[1], int(row[2]), json.loads(row[3]), float(row[4]))
                for row in rows}

    def save(self, checkpoints: list[PackCheckpoint]) -> None:
        now = time.time()
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO estimator_state VALUES (?, ?, ?, ?, ?)",
                    [(c.pack_id, c.cell_model, c.cells, json.dumps(c.state), now) for c in checkpoints])
        except sqlite3.Error as error:
            raise AdapterError(f"store {self.path}: checkpoint failed ({error})") from error

    def close(self) -> None:
        self._db.close()
