"""Read a measurement log (`time_s, current_a, cell_voltage_v_1..N, temperature_c_1..M`, .csv or .csv.gz).

Handling of imperfect logs (documented in docs/estimation.md):

* a missing row is a time gap; the estimator integrates the current over it when the gap is short and
  coasts (no integration, uncertainty grows) when it is longer than the configured maximum;
* an empty field or `nan` in a voltage, current or temperature column is a sensor dropout for that
  sample: the value is passed on as NaN and the estimator coasts for what it cannot see;
* everything else that is wrong is an error (`LogError`) that names the file, where (`header`, or
  `row R` / `row R, column NAME` with the header as row 1, as an editor shows the file) and the fix:
  a file that is empty, not gzip although named .gz (or the reverse), corrupt or truncated gzip, not
  UTF-8; a header with an empty, unknown or duplicated column (also `cell_voltage_v_01` next to
  `cell_voltage_v_1`), a missing required column or numbered columns with gaps; no data rows; a row
  with the wrong number of fields; text that is not a number; a missing or non-finite `time_s` or
  timestamps that do not strictly increase; an infinite measurement; a cell voltage or temperature
  far outside what a cell can show (a log in mV or kelvin).

The happy path is vectorised: one decompress and decode, one `np.loadtxt` and array checks. A log
with empty fields is parsed a second time after a few `str.replace` passes turn them into `nan`; only
when something is wrong is the text scanned line by line to say where.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gateway.errors import LogError

FloatArray = NDArray[np.float64]

_NUMBERED = re.compile(r"(cell_voltage_v|temperature_c)_([0-9]+)")
_GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_FORMAT_HEADER = "time_s,current_a,cell_voltage_v_1..N,temperature_c_1..M (FORMAT.md)"
_NOT_A_NUMBER_FIX = ("write plain numbers with '.' as decimal separator (no quotes, units, '#' comments or thousands "
                     "separators); leave a missing sample empty or write nan")


@dataclass(frozen=True)
class _Plausible:
    """A range no cell measurement in the named unit leaves; outside it the log uses another unit."""

    what: str
    low: float
    high: float
    unit: str
    fix: str


_VOLTAGE = _Plausible("cell voltage", -1.0, 10.0, "V", "write cell voltages in volts (divide millivolts by 1000)")
_TEMPERATURE = _Plausible("temperature", -100.0, 200.0, "degC", "write temperatures in degC (kelvin minus 273.15)")


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


@dataclass(frozen=True)
class _Layout:
    time: int
    current: int
    voltages: list[int]
    temperatures: list[int]


def _number(value: float | np.floating) -> str:
    """A value for a message: `1.0`, not `np.float64(1.0)`."""
    return repr(float(value))


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise LogError(path, "file", f"cannot be read ({error.strerror or error})",
                       "check the path and that the file is readable") from error
    compressed = raw.startswith(_GZIP_MAGIC)
    if path.suffix != ".gz":
        if compressed:
            raise LogError(path, "file", "is gzip-compressed but its name does not end in .gz",
                           "name it NAME.csv.gz (or decompress it to NAME.csv)")
        return raw
    if not compressed:
        raise LogError(path, "file", "is named .gz but is not gzip-compressed",
                       "compress it with gzip, or drop the .gz from its name if it is a plain CSV file")
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise LogError(path, "file", f"gzip data is corrupt or truncated ({error})",
                       "copy or export the log again (`gzip -t FILE` checks a file)") from error


def _decode(path: Path, raw: bytes) -> str:
    if raw.startswith(_UTF16_BOMS):
        raise LogError(path, "file", "is UTF-16 text", "save the log as UTF-8 (or plain ASCII) CSV")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        row = raw.count(b"\n", 0, error.start) + 1
        raise LogError(path, f"row {row}", f"byte 0x{raw[error.start]:02x} is not UTF-8 text",
                       "save the log as UTF-8 (a log needs only ASCII: numbers, ',', '.' and the column names)"
                       ) from error
    if "\r" in text:  # Windows or old Mac line ends
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _unknown_fix(unknown: list[str]) -> str:
    if any('"' in name or "'" in name for name in unknown):
        return "remove the quotes: the format has no quoting"
    if any(separator in name for name in unknown for separator in ";\t|"):
        return "separate the columns with ',' and write decimals with '.'"
    return "remove them: a log has only time_s, current_a, cell_voltage_v_1..N and temperature_c_1..M"


def _numbered_columns(path: Path, names: list[str], prefix: str) -> list[int]:
    found: dict[int, int] = {}
    for index, name in enumerate(names):
        match = _NUMBERED.fullmatch(name)
        if match is None or match.group(1) != prefix:
            continue
        number = int(match.group(2))
        if number in found:
            raise LogError(path, "header", f"columns {names[found[number]]} and {name} are both {prefix} "
                           f"number {number}", f"keep one of them: number the {prefix} columns 1..N, once each")
        found[number] = index
    expected = list(range(1, len(found) + 1))
    if sorted(found) != expected:
        raise LogError(path, f"columns {prefix}_*", f"numbered {sorted(found)}, not 1..{len(found)} without gaps",
                       f"number the {prefix} columns 1..N consecutively")
    return [found[k] for k in expected]


def _column_layout(path: Path, header: str) -> tuple[list[str], _Layout]:
    if not header.strip():
        raise LogError(path, "row 1", "the first row is empty, not the header", f"start the file with {_FORMAT_HEADER}")
    names = [name.strip() for name in header.split(",")]
    unnamed = [str(index + 1) for index, name in enumerate(names) if not name]
    if unnamed:
        raise LogError(path, "header", f"field(s) {', '.join(unnamed)} of {len(names)} have no column name",
                       "remove the empty header field (a doubled or trailing ',') or name the column")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise LogError(path, "header", f"duplicated column(s) {', '.join(duplicates)}", "keep one of each column")
    unknown = [n for n in names if n not in ("time_s", "current_a") and not _NUMBERED.fullmatch(n)]
    if unknown:
        raise LogError(path, "header", f"unknown column(s) {', '.join(unknown)}", _unknown_fix(unknown))
    for required in ("time_s", "current_a"):
        if required not in names:
            raise LogError(path, "header", f"required column {required!r} is missing",
                           f"the header must name {_FORMAT_HEADER}")
    voltages = _numbered_columns(path, names, "cell_voltage_v")
    temperatures = _numbered_columns(path, names, "temperature_c")
    if not voltages:
        raise LogError(path, "header", "no cell_voltage_v_1..N columns", "add one voltage column per series cell")
    if not temperatures:
        raise LogError(path, "header", "no temperature_c_1..M columns", "add at least one temperature column")
    return names, _Layout(names.index("time_s"), names.index("current_a"), voltages, temperatures)


def _file_row(body: str, index: int) -> int:
    """The file's row (header = row 1) of data row `index`; np.loadtxt skips empty lines, so count them."""
    if "\n\n" not in body and not body.startswith("\n"):
        return index + 2
    data_rows = (row for row, line in enumerate(body.split("\n"), start=2) if line)
    return next(islice(data_rows, index, None))


def _fill_empty_fields(body: str) -> str:
    """`,,` -> `,nan,` (also at a line's start and end): an empty field is a dropout, like nan."""
    text = f"\n{body}\n".replace("\n,", "\nnan,").replace(",\n", ",nan\n")
    return text.replace(",,", ",nan,").replace(",,", ",nan,")  # twice: a run ",,," overlaps


def _parses(text: str) -> bool:
    try:
        np.loadtxt([text], delimiter=",", comments=None, ndmin=2, dtype=np.float64)
    except ValueError:
        return False
    return True


def _first_bad_field(path: Path, names: list[str], body: str, detail: str) -> LogError:
    """Error path only: find the first row or field np.loadtxt refused, with the file's row numbering."""
    for row, line in enumerate(body.split("\n"), start=2):
        if not line:
            continue
        fields = line.split(",")
        if len(fields) != len(names):
            return LogError(path, f"row {row}", f"has {len(fields)} fields, the header {len(names)}",
                            "give every row one value per header column (an empty field for a missing sample)")
        if _parses(",".join(field or "nan" for field in fields)):
            continue
        for name, field in zip(names, fields, strict=True):
            if field and not _parses(field):
                return LogError(path, f"row {row}, column {name}", f"{field!r} is not a number", _NOT_A_NUMBER_FIX)
    return LogError(path, "data", f"not a table of numbers ({detail})", _NOT_A_NUMBER_FIX)


def _loadtxt(body: str) -> FloatArray:
    # np.loadtxt reads a byte stream behind a TextIOWrapper faster than an io.StringIO of the same text
    handle = io.TextIOWrapper(io.BytesIO(body.encode("utf-8")), encoding="utf-8")
    table: FloatArray = np.loadtxt(handle, delimiter=",", comments=None, ndmin=2, dtype=np.float64)
    return table


def _parse_table(path: Path, names: list[str], body: str) -> FloatArray:
    if not body or body.isspace():  # before np.loadtxt, which warns about empty input
        raise LogError(path, "data", "no data rows, only the header", "add the samples below the header, one row each")
    try:
        table = _loadtxt(body)
    except ValueError:
        try:  # empty fields (dropouts) cost a second pass only in the logs that have them
            table = _loadtxt(_fill_empty_fields(body))
        except ValueError as error:
            raise _first_bad_field(path, names, body, str(error)) from error
    if table.shape[1] != len(names):
        raise _first_bad_field(path, names, body, f"rows have {table.shape[1]} fields, the header {len(names)}")
    return table


def _check_time(path: Path, body: str, time_s: FloatArray) -> None:
    bad = np.flatnonzero(~np.isfinite(time_s))
    if bad.size:
        raise LogError(path, f"row {_file_row(body, int(bad[0]))}",
                       f"time_s is missing or not finite ({_number(time_s[bad[0]])})",
                       "every row needs a finite time; drop rows without one")
    backwards = np.flatnonzero(np.diff(time_s) <= 0.0)
    if backwards.size:
        later = int(backwards[0]) + 1
        raise LogError(path, f"row {_file_row(body, later)}", f"time_s {_number(time_s[later])} does not increase "
                       f"(previous row {_number(time_s[later - 1])})",
                       "sort the log by time_s and remove duplicate times")


def _check_finite(path: Path, body: str, names: list[str], table: FloatArray) -> None:
    infinite = np.isinf(table)
    if infinite.any():
        row, column = (int(i) for i in np.argwhere(infinite)[0])
        raise LogError(path, f"row {_file_row(body, row)}, column {names[column]}",
                       f"{_number(table[row, column])} is not a measurement",
                       "leave a sample the sensor did not deliver empty or write nan")


def _check_range(path: Path, body: str, names: list[str], columns: list[int], values: FloatArray,
                 plausible: _Plausible) -> None:
    outside = (values < plausible.low) | (values > plausible.high)  # NaN (a dropout) compares False
    if outside.any():
        row, column = (int(i) for i in np.argwhere(outside)[0])
        raise LogError(path, f"row {_file_row(body, row)}, column {names[columns[column]]}",
                       f"{_number(values[row, column])} is not a {plausible.what} in {plausible.unit} (plausible: "
                       f"{plausible.low:g}..{plausible.high:g})", plausible.fix)


def read_measurement_log(path: Path) -> MeasurementLog:
    if path.is_dir():
        raise LogError(path, "file", "is a directory", "give the path of a .csv or .csv.gz measurement log")
    if not path.is_file():
        raise LogError(path, "file", "does not exist", "give the path of a .csv or .csv.gz measurement log")
    text = _decode(path, _read_bytes(path))
    if not text or text.isspace():
        raise LogError(path, "file", "is empty", f"give a log with the header {_FORMAT_HEADER} and one row per sample")
    header, _, body = text.partition("\n")
    names, layout = _column_layout(path, header)
    table = _parse_table(path, names, body)
    time_s = np.ascontiguousarray(table[:, layout.time])
    _check_time(path, body, time_s)
    _check_finite(path, body, names, table)
    voltage_v = np.ascontiguousarray(table[:, layout.voltages])
    temperature_c = np.ascontiguousarray(table[:, layout.temperatures])
    _check_range(path, body, names, layout.voltages, voltage_v, _VOLTAGE)
    _check_range(path, body, names, layout.temperatures, temperature_c, _TEMPERATURE)
    return MeasurementLog(path=path, time_s=time_s, current_a=np.ascontiguousarray(table[:, layout.current]),
                          cell_voltage_v=voltage_v, temperature_c=temperature_c)
