"""Opening the store's database file for one of its parts (event log, trend log): WAL, the part's tables, and
errors that name the file and the fix."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from gateway.errors import AdapterError

OPEN_FIX = "fix [store] path / BMSGW_STORE__PATH or its permissions"


def open_part(path: Path, part: str, schema: Sequence[str], *, create: bool, synchronous: Literal["FULL", "NORMAL"],
              read_mode: Literal["rw", "ro"] = "rw") -> sqlite3.Connection:
    """A connection usable from any thread. `create`: make the file and tables if missing; otherwise open what
    exists (`read_mode`), a missing file being an error instead of a new empty database. `part` names it in errors."""
    try:
        if not create:
            return sqlite3.connect(f"{path.resolve().as_uri()}?mode={read_mode}", uri=True, isolation_level=None,
                                   check_same_thread=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except (sqlite3.Error, OSError) as error:
        raise AdapterError(f"{part} {path}: cannot be opened ({error}); {OPEN_FIX}") from error
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        for statement in schema:
            db.execute(statement)
    except sqlite3.Error as error:
        db.close()
        raise AdapterError(f"{part} {path}: cannot be opened ({error}); {OPEN_FIX}") from error
    return db
