"""How `bms-gateway events` prints safety events: csv, json (same keys as the csv header) or an aligned table."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from gateway.domain.events import BmsEvent

FIELDS = ("time_iso", "time", "pack_id", "kind", "code", "severity", "cell", "value", "threshold", "operator",
          "detail")
TABLE_HEADER = ("TIME (UTC)", "PACK", "KIND", "CODE", "SEVERITY", "CELL", "VALUE", "THRESHOLD", "OPERATOR",
                 "DETAIL")

Record = dict[str, str | int | float | None]


def iso_utc(time: float) -> str:
    return datetime.fromtimestamp(time, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_record(event: BmsEvent) -> Record:
    """One event as FIELDS -> value; an unknown (NaN) value or threshold is None."""
    return {"time_iso": iso_utc(event.time), "time": event.time, "pack_id": event.pack_id, "kind": event.kind.value,
            "code": event.code, "severity": event.severity.name.lower(), "cell": event.cell,
            "value": _none_if_nan(event.value), "threshold": _none_if_nan(event.threshold),
            "operator": event.operator, "detail": event.detail}


def render_csv(events: Sequence[BmsEvent]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(event_record(event) for event in events)
    return text.getvalue()


def render_json(events: Sequence[BmsEvent]) -> str:
    # JSON has no infinity: a non-finite number is written as null, like NaN
    records = [{key: None if isinstance(value, float) and not math.isfinite(value) else value
                for key, value in event_record(event).items()} for event in events]
    return json.dumps(records, indent=2) + "\n"


def render_table(events: Sequence[BmsEvent]) -> str:
    rows = [TABLE_HEADER, *(table_row(event_record(event)) for event in events)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Sequence[BmsEvent]], str]] = {
    "csv": render_csv, "json": render_json, "table": render_table}


def table_row(record: Record) -> tuple[str, ...]:
    shown = {key: "-" if value is None or value == "" else str(value) for key, value in record.items()}
    for key in ("value", "threshold"):
        number = record[key]
        if isinstance(number, float):
            shown[key] = f"{number:.6g}"
    return (shown["time_iso"], shown["pack_id"], shown["kind"], shown["code"], shown["severity"], shown["cell"],
            shown["value"], shown["threshold"], shown["operator"], shown["detail"])


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value
