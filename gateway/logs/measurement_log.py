"""Read a measurement log (`time_s, current_a, cell_voltage_v_1..N, temperature_c_1..M`, .csv or .csv.gz).

Handling of imperfect logs (documented in docs/estimation.md):

* a missing row is a time gap; the estimator integrates the current over it when the gap is short and
  coasts (no integration, uncertainty grows) when it is longer than the configured maximum;
* an empty or NaN cell in a voltage, current or temperature column is a sensor dropout for that
  sample: the value is passed on as NaN and the estimator coasts for what it cannot see;
* a missing or non-finite `time_s`, timestamps that do not strictly increase, a missing required
  column, an unknown or duplicated column, or text that is not a number are errors that name the
  file, the row or column and the fix.
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gateway.errors import LogError

FloatArray = NDArray[np.float64]

_NUMBERED = re.compile(r"^(cell_voltage_v|temperature_c)_(\d+)$")


@dataclass(frozen=True)
class MeasurementLog:
    path: Path
    time_s: FloatArray  # rows
    current_a: FloatArray  # rows, positive = charging
    cell_voltage_v: FloatArray  # rows x N
    temperature_c: FloatArray  # rows x M

    @property
    def series_cells(self) -> int:
        return int(self.cell_voltage_v.shape[1])

    @property
    def rows(self) -> int:
        return int(self.time_s.shape[0])


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8")


def _numbered_columns(path: Path, names: list[str], prefix: str) -> list[int]:
    found: dict[int, int] = {}
    for index, name in enumerate(names):
        match = _NUMBERED.match(name)
        if match and match.group(1) == prefix:
            found[int(match.group(2))] = index
    expected = list(range(1, len(found) + 1))
    if sorted(found) != expected:
        raise LogError(path, f"columns {prefix}_*", f"numbered {sorted(found)}, not 1..{len(found)} without gaps",
                       f"number the {prefix} columns 1..N consecutively")
    return [found[k] for k in expected]


def _column_layout(path: Path, names: list[str]) -> tuple[int, int, list[int], list[int]]:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise LogError(path, "header", f"duplicated column(s) {', '.join(duplicates)}", "keep one of each column")
    for required in ("time_s", "current_a"):
        if required not in names:
            raise LogError(path, "header", f"required column {required!r} is missing",
                           "the header must start with time_s,current_a,cell_voltage_v_1,... (FORMAT.md)")
    unknown = [n for n in names if n not in ("time_s", "current_a") and not _NUMBERED.match(n)]
    if unknown:
        raise LogError(path, "header", f"unknown column(s) {', '.join(unknown)}",
                       "remove them: a log has time_s, current_a, cell_voltage_v_1..N and temperature_c_1..M")
    voltages = _numbered_columns(path, names, "cell_voltage_v")
    temperatures = _numbered_columns(path, names, "temperature_c")
    if not voltages:
        raise LogError(path, "header", "no cell_voltage_v_1..N columns", "add one voltage column per series cell")
    if not temperatures:
        raise LogError(path, "header", "no temperature_c_1..M columns", "add at least one temperature column")
    return names.index("time_s"), names.index("current_a"), voltages, temperatures


def _parse_table(path: Path, handle: io.TextIOBase, width: int) -> FloatArray:
    try:
        table = np.loadtxt(handle, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as error:
        raise LogError(path, "data", f"not a table of numbers ({error})",
                       "use '.' as decimal separator, ',' between fields and one value per column") from error
    if table.size == 0:
        raise LogError(path, "data", "no data rows", "record at least two samples")
    if table.shape[1] != width:
        raise LogError(path, "data", f"rows have {table.shape[1]} fields, the header {width}",
                       "give every row one value per header column")
    return table


def _check_time(path: Path, time_s: FloatArray) -> None:
    bad = np.flatnonzero(~np.isfinite(time_s))
    if bad.size:
        raise LogError(path, f"row {int(bad[0]) + 2}", "time_s is missing or not finite",
                       "every row needs a time; drop rows without one")
    backwards = np.flatnonzero(np.diff(time_s) <= 0.0)
    if backwards.size:
        row = int(backwards[0]) + 3  # +1 header, +1 one-based, +1 the later row of the pair
        raise LogError(path, f"row {row}", f"time_s {time_s[backwards[0] + 1]!r} does not increase "
                       f"(previous row {time_s[backwards[0]]!r})", "sort the log by time_s and remove duplicate times")


def read_measurement_log(path: Path) -> MeasurementLog:
    if not path.is_file():
        raise LogError(path, "file", "does not exist", "give the path of a .csv or .csv.gz measurement log")
    try:
        with _open_text(path) as handle:
            names = [name.strip() for name in handle.readline().strip().split(",")]
            time_col, current_col, voltage_cols, temperature_cols = _column_layout(path, names)
            table = _parse_table(path, handle, len(names))
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise LogError(path, "file", f"cannot be read ({error})", "give an uncompressed or gzip CSV file") from error
    time_s = np.ascontiguousarray(table[:, time_col])
    _check_time(path, time_s)
    return MeasurementLog(
        path=path,
        time_s=time_s,
        current_a=np.ascontiguousarray(table[:, current_col]),
        cell_voltage_v=np.ascontiguousarray(table[:, voltage_cols]),
        temperature_c=np.ascontiguousarray(table[:, temperature_cols]),
    )
