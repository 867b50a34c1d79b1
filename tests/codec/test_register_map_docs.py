"""The register map as documentation: docs/modbus.md is current, the CSV is importable."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from gateway.codec.command_registers import PACK_COMMANDS, SITE_COMMANDS
from gateway.codec.register_docs import CSV_COLUMNS, modbus_reference, render_csv, render_markdown
from gateway.codec.register_map import RegisterMap, load_register_map
from gateway.config_loader import load_settings
from gateway.demo import demo_settings_overrides
from gateway.settings import DEFAULT_MAPPINGS_DIR, GatewaySettings, ModbusSettings, PackSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "modbus.md"


@pytest.fixture(scope="module")
def native() -> RegisterMap:
    return load_register_map(DEFAULT_MAPPINGS_DIR, "native")


def test_docs_modbus_md_is_current(native: RegisterMap, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("BMSGW_")]:
        monkeypatch.delenv(name)
    settings = load_settings(None, demo_settings_overrides())  # what `bms-gateway registers` uses
    assert DOCS.read_text(encoding="utf-8") == render_markdown(native, settings), \
        "docs/modbus.md is stale: regenerate with `bms-gateway registers --format md > docs/modbus.md`"


def test_docs_modbus_csv_is_current(native: RegisterMap) -> None:
    assert (DOCS.parent / "modbus.csv").read_text(encoding="utf-8") == render_csv(native), \
        "docs/modbus.csv is stale: regenerate with `bms-gateway registers --format csv > docs/modbus.csv`"


def test_markdown_explains_the_conventions(native: RegisterMap) -> None:
    settings = GatewaySettings(
        modbus=ModbusSettings(site_unit_id=10, first_pack_unit_id=20),
        packs=(PackSettings(id="a", bus="can0", node_address=1),
               PackSettings(id="b", bus="can0", node_address=2, modbus_unit_id=42)),
    )
    text = render_markdown(native, settings)
    assert "unit id **10**" in text
    assert "| `a` | 20 |" in text
    assert "| `b` | 42 |" in text
    for phrase in ("high word first", "0xFFFF", "0x8000", "0xFFFFFFFF", "0x80000000",
                   "positive when charging", "exception 01", "exception 02", "value = raw x scale"):
        assert phrase in text, phrase
    assert "| 64-95 | 30065-30096 | `cell_voltage[1..32]` | 32 x uint16 | 32 | 0.001 | V |" in text
    assert "| 27 | 30028 | *(reserved)* |" in text
    assert "| 8 | `pack_reported_fault` |" in text


def test_csv_has_one_row_per_value(native: RegisterMap) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(native))))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    values = sum(entry.values for unit in (native.site, native.pack) for entry in unit.entries)
    assert len(rows) == values + len(SITE_COMMANDS) + len(PACK_COMMANDS)  # plus the command registers
    by_name = {(row["unit"], row["name"]): row for row in rows}
    cell = by_name[("pack", "cell_voltage_1")]
    assert (cell["table"], cell["address"], cell["reference"], cell["type"], cell["words"], cell["scale"],
            cell["engineering_unit"]) == ("input", "64", "30065", "uint16", "1", "0.001", "V")
    assert by_name[("pack", "temperature_48")]["address"] == "175"
    current = by_name[("site", "site_current")]
    assert (current["type"], current["words"], current["scale"]) == ("int32", "2", "0.1")
    holding = by_name[("pack", "set_soc")]
    assert (holding["table"], holding["reference"], holding["words"]) == ("holding", "40004", "1")
    assert "accepts 0..10000" in holding["description"]


@pytest.mark.parametrize(("table", "address", "reference"), [
    ("input", 0, "30001"), ("input", 9998, "39999"), ("input", 9999, "310000"), ("holding", 15, "40016"),
])
def test_modicon_references(table: str, address: int, reference: str) -> None:
    assert modbus_reference(table, address) == reference  # type: ignore[arg-type]
