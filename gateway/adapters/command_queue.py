"""Operator commands through the embedded store: `bms-gateway ack|reset` writes a row, the engine executes it.

Who may reset a trip is whoever may write the gateway's database file (its owner and group on the gateway host):
the command records the operator's name, and the engine logs it with the outcome in the event log.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import AdapterError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operator_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issued_at REAL NOT NULL,
    pack_id TEXT NOT NULL,
    action TEXT NOT NULL,
    operator TEXT NOT NULL,
    done_at REAL,
    outcome TEXT
)
"""


@dataclass(frozen=True)
class QueuedCommand:
    id: int
    issued_at: float
    pack_id: str
    action: str
    operator: str


class CommandQueue:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=5.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as error:
            raise AdapterError(f"command queue {path}: cannot be opened ({error}); "
                               "fix the [store] path or its permissions") from error

    def submit(self, pack_id: str, action: str, operator: str) -> int:
        try:
            cursor = self._db.execute(
                "INSERT INTO operator_commands (issued_at, pack_id, action, operator) VALUES (?, ?, ?, ?)",
                (time.time(), pack_id, action, operator))
        except sqlite3.Error as error:
            raise AdapterError(f"command queue {self.path}: cannot queue the command ({error})") from error
        return int(cursor.lastrowid or 0)

    def pending(self) -> list[QueuedCommand]:
        try:
            rows = self._db.execute("SELECT id, issued_at, pack_id, action, operator FROM operator_commands "
                                    "WHERE done_at IS NULL ORDER BY id").fetchall()
        except sqlite3.Error as error:
            raise AdapterError(f"command queue {self.path}: cannot be read ({error})") from error
        return [QueuedCommand(int(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]

    def complete(self, command_id: int, outcome: str) -> None:
        try:
            self._db.execute("UPDATE operator_commands SET done_at = ?, outcome = ? WHERE id = ?",
                             (time.time(), outcome, command_id))
        except sqlite3.Error as error:
            raise AdapterError(f"command queue {self.path}: cannot record an outcome ({error})") from error

    def outcome(self, command_id: int) -> str | None:
        row = self._db.execute("SELECT outcome FROM operator_commands WHERE id = ?", (command_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def close(self) -> None:
        self._db.close()
