"""Reading measurement logs (data/cells/FORMAT.md): good logs, documented dropouts, and every rejection."""

from __future__ import annotations

import gzip
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from gateway.errors import LogError
from gateway.logs.measurement_log import read_measurement_log

HEADER = "time_s,current_a,cell_voltage_v_1,cell_voltage_v_2,temperature_c_1"
GOOD_ROWS = ("0,-10.5,3.701,3.702,25.1", "1.0,-10.4,3.700,3.701,25.1", "2.02,0,3.705,3.706,25.2")


def write_log(directory: Path, name: str, header: str, rows: tuple[str, ...] | list[str]) -> Path:
    text = "\n".join((header, *rows)) + "\n"
    path = directory / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rejection(path: Path) -> LogError:
    with pytest.raises(LogError) as caught:
        read_measurement_log(path)
    return caught.value


def assert_names_file_and_fix(error: LogError, path: Path) -> str:
    text = str(error)
    assert str(path) in text
    assert error.problem.source == str(path)
    assert "Fix: " in text
    assert error.problem.fix.strip()
    return text


@pytest.mark.parametrize("name", ["log.csv", "log.csv.gz"])
def test_good_log_plain_and_gzip(tmp_path: Path, name: str) -> None:
    log = read_measurement_log(write_log(tmp_path, name, HEADER, GOOD_ROWS))
    assert log.rows == 3
    assert log.series_cells == 2
    np.testing.assert_array_equal(log.time_s, [0.0, 1.0, 2.02])
    np.testing.assert_array_equal(log.current_a, [-10.5, -10.4, 0.0])
    np.testing.assert_array_equal(log.cell_voltage_v, [[3.701, 3.702], [3.700, 3.701], [3.705, 3.706]])
    np.testing.assert_array_equal(log.temperature_c, [[25.1], [25.1], [25.2]])


def test_columns_are_found_by_name_not_position(tmp_path: Path) -> None:
    header = "temperature_c_2,cell_voltage_v_2,current_a,temperature_c_1,time_s,cell_voltage_v_1"
    path = write_log(tmp_path, "shuffled.csv", header, ["20,3.2,-1,21,0,3.1", "22,3.4,-2,23,1,3.3"])
    log = read_measurement_log(path)
    np.testing.assert_array_equal(log.time_s, [0.0, 1.0])
    np.testing.assert_array_equal(log.current_a, [-1.0, -2.0])
    np.testing.assert_array_equal(log.cell_voltage_v, [[3.1, 3.2], [3.3, 3.4]])
    np.testing.assert_array_equal(log.temperature_c, [[21.0, 20.0], [23.0, 22.0]])


def test_reference_log_reads() -> None:
    log = read_measurement_log(Path(__file__).parents[2] / "data" / "cells" / "nmc-200ah" / "pack16s_udds.csv.gz")
    assert log.series_cells == 16
    assert log.temperature_c.shape[1] == 16
    assert (np.diff(log.time_s) > 0).all()
    assert np.isfinite(log.cell_voltage_v).all()


@pytest.mark.parametrize("name", ["dropout.csv", "dropout.csv.gz"])
def test_nan_voltage_current_and_temperature_pass_through(tmp_path: Path, name: str) -> None:
    rows = ["0,-10,3.70,3.71,25", "1,nan,3.70,3.71,25", "2,-10,NaN,3.71,25", "3,-10,3.70,3.71,nan"]
    log = read_measurement_log(write_log(tmp_path, name, HEADER, rows))
    assert log.rows == 4  # a dropout keeps its row
    assert math.isnan(log.current_a[1])
    assert math.isnan(log.cell_voltage_v[2, 0])
    assert log.cell_voltage_v[2, 1] == 3.71  # only the dropped channel
    assert math.isnan(log.temperature_c[3, 0])
    assert np.isfinite(log.current_a[[0, 2, 3]]).all()
    assert np.isfinite(log.time_s).all()


@pytest.mark.parametrize("name", ["empty.csv", "empty.csv.gz"])
def test_empty_field_is_a_dropout_like_nan(tmp_path: Path, name: str) -> None:
    rows = ["0,-10,3.70,3.71,25", "1,,3.70,3.71,25", "2,-10,,3.71,25", "3,-10,3.70,3.71,", "4,,,,"]
    log = read_measurement_log(write_log(tmp_path, name, HEADER, rows))
    assert math.isnan(log.current_a[1])
    assert math.isnan(log.cell_voltage_v[2, 0])
    assert math.isnan(log.temperature_c[3, 0])
    assert np.isnan(log.cell_voltage_v[4]).all()
    assert math.isnan(log.current_a[4])
    np.testing.assert_array_equal(log.time_s, [0.0, 1.0, 2.0, 3.0, 4.0])
    assert log.cell_voltage_v[2, 1] == 3.71  # only the empty field is missing
    assert np.isnan(log.cell_voltage_v).sum() == 3


@pytest.mark.parametrize("name", ["absent.csv", "absent.csv.gz"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    error = rejection(path)
    text = assert_names_file_and_fix(error, path)
    assert "does not exist" in text


def test_directory_is_not_a_log(tmp_path: Path) -> None:
    error = rejection(tmp_path)
    assert_names_file_and_fix(error, tmp_path)
    assert "is a directory" in error.problem.message


@pytest.mark.parametrize(("header", "missing"), [
    ("current_a,cell_voltage_v_1,temperature_c_1", "time_s"),
    ("time_s,cell_voltage_v_1,temperature_c_1", "current_a"),
])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_missing_required_column(tmp_path: Path, header: str, missing: str, suffix: str) -> None:
    width = header.count(",") + 1
    path = write_log(tmp_path, f"missing{suffix}", header, [",".join(["1"] * width)])
    error = rejection(path)
    text = assert_names_file_and_fix(error, path)
    assert error.problem.key == "header"
    assert repr(missing) in text


@pytest.mark.parametrize(("header", "what"), [
    ("time_s,current_a,temperature_c_1", "cell_voltage_v"),
    ("time_s,current_a,cell_voltage_v_1", "temperature_c"),
])
def test_missing_voltage_or_temperature_columns(tmp_path: Path, header: str, what: str) -> None:
    path = write_log(tmp_path, "partial.csv", header, ["0,1,2"])
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert what in error.problem.message


@pytest.mark.parametrize("unknown", ["soc", "cell_voltage_1", "temperature_c_x", "Time_s", "cell_voltage_v_\u0661",
                                     "cell_voltage_v_+2"])
def test_unknown_column(tmp_path: Path, unknown: str) -> None:
    header = f"time_s,current_a,cell_voltage_v_1,temperature_c_1,{unknown}"
    path = write_log(tmp_path, "unknown.csv.gz", header, ["0,1,3.7,25,9"])
    error = rejection(path)
    text = assert_names_file_and_fix(error, path)
    assert "unknown column" in text
    assert unknown in error.problem.message


@pytest.mark.parametrize("duplicate", ["cell_voltage_v_1", "current_a", "temperature_c_1"])
def test_duplicated_column(tmp_path: Path, duplicate: str) -> None:
    header = f"time_s,current_a,cell_voltage_v_1,temperature_c_1,{duplicate}"
    path = write_log(tmp_path, "duplicated.csv", header, ["0,1,3.7,25,3.7"])
    error = rejection(path)
    text = assert_names_file_and_fix(error, path)
    assert "duplicated" in text
    assert duplicate in error.problem.message


@pytest.mark.parametrize(("header", "first", "second"), [
    ("time_s,current_a,cell_voltage_v_1,cell_voltage_v_01,temperature_c_1", "cell_voltage_v_1", "cell_voltage_v_01"),
    ("time_s,current_a,cell_voltage_v_1,temperature_c_002,temperature_c_2,temperature_c_1", "temperature_c_002",
     "temperature_c_2"),
])
def test_same_cell_number_written_twice_is_a_duplicate(tmp_path: Path, header: str, first: str, second: str) -> None:
    width = header.count(",") + 1
    path = write_log(tmp_path, "zero_padded.csv", header, [",".join(["3.7"] * width)])
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert error.problem.key == "header"
    assert f"{first} and {second}" in error.problem.message


def test_zero_padded_numbers_alone_are_accepted(tmp_path: Path) -> None:
    header = "time_s,current_a,cell_voltage_v_01,cell_voltage_v_02,temperature_c_01"
    log = read_measurement_log(write_log(tmp_path, "padded.csv", header, ["0,1,3.1,3.2,25"]))
    np.testing.assert_array_equal(log.cell_voltage_v, [[3.1, 3.2]])


@pytest.mark.parametrize(("header", "prefix"), [
    ("time_s,current_a,cell_voltage_v_1,cell_voltage_v_3,temperature_c_1", "cell_voltage_v"),
    ("time_s,current_a,cell_voltage_v_2,temperature_c_1", "cell_voltage_v"),
    ("time_s,current_a,cell_voltage_v_1,temperature_c_0", "temperature_c"),
    ("time_s,current_a,cell_voltage_v_1,temperature_c_1,temperature_c_3", "temperature_c"),
])
def test_numbering_with_gaps(tmp_path: Path, header: str, prefix: str) -> None:
    width = header.count(",") + 1
    path = write_log(tmp_path, "gaps.csv", header, [",".join(["1"] * width)])
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert prefix in error.problem.key
    assert "1..N" in error.problem.fix


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_text_that_is_not_a_number(tmp_path: Path, suffix: str) -> None:
    path = write_log(tmp_path, f"text{suffix}", HEADER, [GOOD_ROWS[0], "1,abc,3.70,3.71,25"])
    error = rejection(path)
    text = assert_names_file_and_fix(error, path)
    assert "abc" in text
    assert "row" in text
    assert "column" in text


def test_decimal_comma_is_not_a_number(tmp_path: Path) -> None:
    path = write_log(tmp_path, "comma.csv", "time_s;current_a;cell_voltage_v_1;temperature_c_1", ["0;1,5;3,7;25"])
    error = rejection(path)  # the whole header is one unknown column
    assert_names_file_and_fix(error, path)


def test_text_error_uses_the_same_row_numbers_as_other_errors(tmp_path: Path) -> None:
    path = write_log(tmp_path, "text.csv", HEADER, [GOOD_ROWS[0], "1,abc,3.70,3.71,25"])
    error = rejection(path)
    assert error.problem.key == "row 3, column current_a"
    assert "'abc' is not a number" in error.problem.message


@pytest.mark.parametrize(("field", "key"), [
    ("3.70 # calibrated", "row 5, column cell_voltage_v_1"),  # not silently cut at '#'
    ('"3.70"', "row 5, column cell_voltage_v_1"),
    ("1_000", "row 5, column cell_voltage_v_1"),
    ("\uff13.70", "row 5, column cell_voltage_v_1"),  # a full-width digit
    (" ", "row 5, column cell_voltage_v_1"),  # spaces are not an empty field
    ("3,70", "row 5"),  # decimal comma: one field too many
])
def test_text_in_a_later_row_names_that_row_and_column(tmp_path: Path, field: str, key: str) -> None:
    path = write_log(tmp_path, "late.csv.gz", HEADER, [*GOOD_ROWS, f"3,-10,{field},3.71,25"])
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert error.problem.key == key


def test_row_numbers_count_blank_lines_like_an_editor(tmp_path: Path) -> None:
    rows = ["0,-1,3.7,3.7,25", "", "1,-1,3.7,3.7,25", "", "", "1,-1,3.7,3.7,25"]
    error = rejection(write_log(tmp_path, "blank.csv", HEADER, rows))
    assert error.problem.key == "row 7"  # header 1, data 2, 4, 7
    rows = ["0,-1,3.7,3.7,25", "", "1,x,3.7,3.7,25"]
    assert rejection(write_log(tmp_path, "blank.csv", HEADER, rows)).problem.key == "row 4, column current_a"
    log = read_measurement_log(write_log(tmp_path, "blank.csv", HEADER, [GOOD_ROWS[0], "", *GOOD_ROWS[1:], ""]))
    assert log.rows == 3  # blank lines are not samples


@pytest.mark.parametrize(("rows", "row", "fields"), [
    (["0,1,3.7,3.7"], "row 2", "has 4 fields"),
    ([GOOD_ROWS[0], "1,1,3.7,3.7,25,9", GOOD_ROWS[2]], "row 3", "has 6 fields"),
    ([*GOOD_ROWS, "3,-1,3.7,3.7,25,"], "row 5", "has 6 fields"),  # a trailing ','
])
def test_rows_with_the_wrong_number_of_fields(tmp_path: Path, rows: list[str], row: str, fields: str) -> None:
    path = write_log(tmp_path, "short.csv", HEADER, rows)
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert error.problem.key == row
    assert fields in error.problem.message


@pytest.mark.parametrize(("times", "row"), [
    (("0", "1", "1"), "row 4"),  # duplicate time
    (("0", "2", "1"), "row 4"),  # backwards
    (("5", "4", "6"), "row 3"),
])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_time_must_strictly_increase(tmp_path: Path, times: tuple[str, ...], row: str, suffix: str) -> None:
    rows = [f"{t},-1,3.7,3.7,25" for t in times]
    path = write_log(tmp_path, f"time{suffix}", HEADER, rows)
    error = rejection(path)
    text = assert_names_file_and_fix(error, path)
    assert error.problem.key == row
    assert "does not increase" in text


def test_time_error_shows_plain_numbers(tmp_path: Path) -> None:
    path = write_log(tmp_path, "time.csv", HEADER, [f"{t},-1,3.7,3.7,25" for t in ("0", "1", "1")])
    text = str(rejection(path))
    assert "np.float64" not in text
    assert "time_s 1.0 does not increase (previous row 1.0)" in text


@pytest.mark.parametrize(("value", "row"), [("nan", "row 3"), ("inf", "row 2"), ("-inf", "row 4")])
def test_time_must_be_finite(tmp_path: Path, value: str, row: str) -> None:
    times = ["0", "1", "2"]
    times[int(row[-1]) - 2] = value
    path = write_log(tmp_path, "time.csv.gz", HEADER, [f"{t},-1,3.7,3.7,25" for t in times])
    error = rejection(path)
    text = assert_names_file_and_fix(error, path)
    assert error.problem.key == row
    assert "time_s" in text


def test_empty_time_field_is_rejected(tmp_path: Path) -> None:
    path = write_log(tmp_path, "no_time.csv", HEADER, [GOOD_ROWS[0], ",-1,3.7,3.7,25"])
    assert_names_file_and_fix(rejection(path), path)


def test_corrupt_gzip_is_a_log_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(b"time_s,current_a\n not gzip at all")
    assert_names_file_and_fix(rejection(path), path)


def test_truncated_gzip_is_a_log_error(tmp_path: Path) -> None:
    good = write_log(tmp_path, "good.csv.gz", HEADER, [f"{k},-1,3.7,3.7,25" for k in range(2000)])
    path = tmp_path / "truncated.csv.gz"
    path.write_bytes(good.read_bytes()[:-40])
    assert_names_file_and_fix(rejection(path), path)


@pytest.mark.parametrize("rows", [[], ["", "", ""]])
def test_header_only_log_is_rejected_without_a_warning(tmp_path: Path, rows: list[str]) -> None:
    path = write_log(tmp_path, "header_only.csv", HEADER, rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        error = rejection(path)
    assert "no data rows" in str(error)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert "is empty" in error.problem.message


def test_blank_first_row_is_not_a_header(tmp_path: Path) -> None:
    path = write_log(tmp_path, "blank_first.csv", "", [HEADER, *GOOD_ROWS])
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert error.problem.key == "row 1"
    assert "time_s,current_a" in error.problem.fix


@pytest.mark.parametrize(("header", "fields"), [
    (HEADER + ",", "field(s) 6 of 6"),  # a trailing ','
    ("time_s,,current_a,cell_voltage_v_1,temperature_c_1", "field(s) 2 of 5"),
])
def test_header_field_without_a_name(tmp_path: Path, header: str, fields: str) -> None:
    path = write_log(tmp_path, "unnamed.csv", header, ["0,1,3.7,3.7,25,"])
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert error.problem.key == "header"
    assert fields in error.problem.message


@pytest.mark.parametrize(("header", "hint"), [
    ('"time_s","current_a","cell_voltage_v_1","temperature_c_1"', "quotes"),
    ("time_s\tcurrent_a\tcell_voltage_v_1\ttemperature_c_1", "','"),
])
def test_quoted_or_tab_separated_header_gets_a_specific_fix(tmp_path: Path, header: str, hint: str) -> None:
    path = write_log(tmp_path, "other_dialect.csv", header, ["0,1,3.7,25"])
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert "unknown column" in error.problem.message
    assert hint in error.problem.fix


@pytest.mark.parametrize(("value", "column"), [
    ("inf", "current_a"), ("-inf", "cell_voltage_v_2"), ("1e999", "temperature_c_1"),
])
def test_infinite_measurement_is_rejected(tmp_path: Path, value: str, column: str) -> None:
    values = {"current_a": "-1", "cell_voltage_v_1": "3.7", "cell_voltage_v_2": "3.7", "temperature_c_1": "25"}
    values[column] = value
    rows = [GOOD_ROWS[0], f"1,{','.join(values.values())}"]
    path = write_log(tmp_path, "infinite.csv", HEADER, rows)
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert error.problem.key == f"row 3, column {column}"
    assert "nan" in error.problem.fix


@pytest.mark.parametrize(("row", "column", "fix"), [
    ("1,-1,3701,3702,25", "cell_voltage_v_1", "millivolts"),
    ("1,-1,3.7,-3.7,25", "cell_voltage_v_2", "volts"),
    ("1,-1,3.7,3.7,298.15", "temperature_c_1", "kelvin"),
])
def test_voltage_in_millivolts_or_temperature_in_kelvin(tmp_path: Path, row: str, column: str, fix: str) -> None:
    path = write_log(tmp_path, "units.csv.gz", HEADER, [GOOD_ROWS[0], row])
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert error.problem.key == f"row 3, column {column}"
    assert fix in error.problem.fix


def test_plausible_extremes_are_accepted(tmp_path: Path) -> None:
    rows = ["0,-2000,0.0,5.5,-40", "1,2000,-0.5,9.9,150", "2,0,nan,,"]
    log = read_measurement_log(write_log(tmp_path, "extremes.csv", HEADER, rows))
    assert log.rows == 3


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_text_that_is_not_utf8_names_the_row(tmp_path: Path, suffix: str) -> None:
    text = "\n".join((HEADER, GOOD_ROWS[0], "1,-1,3.7,3.7,25 \xb0C", "")).encode("latin-1")
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes(gzip.compress(text) if suffix.endswith(".gz") else text)
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert error.problem.key == "row 3"
    assert "0xb0" in error.problem.message
    assert "UTF-8" in error.problem.fix


def test_utf16_text_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    path.write_bytes("\n".join((HEADER, *GOOD_ROWS)).encode("utf-16"))
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert "UTF-16" in error.problem.message


def test_byte_order_mark_and_windows_or_mac_line_ends_are_read(tmp_path: Path) -> None:
    for name, newline in (("crlf.csv", "\r\n"), ("cr.csv", "\r")):
        path = tmp_path / name
        path.write_bytes(("\ufeff" + newline.join((HEADER, *GOOD_ROWS)) + newline).encode("utf-8"))
        log = read_measurement_log(path)
        np.testing.assert_array_equal(log.time_s, [0.0, 1.0, 2.02])
        np.testing.assert_array_equal(log.temperature_c, [[25.1], [25.1], [25.2]])


def test_plain_csv_named_gz(tmp_path: Path) -> None:
    path = write_log(tmp_path, "plain.csv", HEADER, GOOD_ROWS).rename(tmp_path / "plain.csv.gz")
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert "not gzip-compressed" in error.problem.message


def test_gzip_named_csv(tmp_path: Path) -> None:
    path = write_log(tmp_path, "packed.csv.gz", HEADER, GOOD_ROWS).rename(tmp_path / "packed.csv")
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert ".csv.gz" in error.problem.fix


def test_gzip_with_a_damaged_middle_is_a_log_error(tmp_path: Path) -> None:
    good = write_log(tmp_path, "good.csv.gz", HEADER, [f"{k},-1,3.7,3.7,25" for k in range(2000)])
    damaged = bytearray(good.read_bytes())
    for k in range(len(damaged) // 2, len(damaged) // 2 + 64):
        damaged[k] ^= 0x5A
    path = tmp_path / "damaged.csv.gz"
    path.write_bytes(bytes(damaged))
    error = rejection(path)
    assert_names_file_and_fix(error, path)
    assert "corrupt or truncated" in error.problem.message
