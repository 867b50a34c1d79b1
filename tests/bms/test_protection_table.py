"""The protection table as data: parsing, validation errors with file, key and fix, and its generated docs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.bms.predictive_settings import PredictiveSettings
from gateway.bms.protection_docs import render_markdown, update_document
from gateway.bms.protection_rules import load_protection_table
from gateway.bms.threshold_expression import parse_threshold
from gateway.domain.alarms import AlarmCode
from gateway.errors import MappingError
from gateway.settings import DEFAULT_MAPPINGS_DIR
from tests.bms.helpers import parameters
from tests.bms.helpers import rules as build_default_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "protection.md"
MINIMAL = """version: 1
rules:
  - {code: cell_overvoltage, severity: trip, quantity: max_cell_voltage_v, above: %s, delay_s: 0.5}
"""


def test_expressions_are_factor_reference_offset_or_a_number() -> None:
    references = {"pack.capacity_ah": np.array([200.0, 100.0])}
    assert parse_threshold("0.02 * pack.capacity_ah").resolve(references, 2).tolist() == [4.0, 2.0]
    assert parse_threshold("pack.capacity_ah - 10").resolve(references, 2).tolist() == [190.0, 90.0]
    assert parse_threshold("-3.5").resolve(references, 2).tolist() == [-3.5, -3.5]
    assert str(parse_threshold("1.5 * pack.capacity_ah + 2")) == "1.5 * pack.capacity_ah + 2"


@pytest.mark.parametrize(("threshold", "mentions"), [
    ("cell.max_voltage + 0.1", "unknown reference 'cell.max_voltage'; valid references: cell.max_charge_voltage_v"),
    ("cell.max_charge_voltage_v plus 1", "is not `[factor *] reference [+|- offset]` or a number"),
])
def test_a_bad_threshold_is_rejected_with_file_key_and_the_valid_references(tmp_path: Path, threshold: str,
                                                                           mentions: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(MINIMAL % threshold, encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_protection_table(DEFAULT_MAPPINGS_DIR, str(path))
    text = str(raised.value)
    assert str(path) in text
    assert "rules[0].above" in text
    assert mentions in text


def test_an_unknown_code_and_a_rule_without_direction_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("version: 1\nrules:\n  - {code: cell_overheat, severity: alarm, quantity: max_temperature_c, "
                    "above: 60}\n  - {code: cell_overvoltage, severity: alarm, quantity: max_cell_voltage_v}\n",
                    encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_protection_table(DEFAULT_MAPPINGS_DIR, str(path))
    text = str(raised.value)
    assert "rules[0].code" in text
    assert "unknown alarm code 'cell_overheat'" in text
    assert "give exactly one of `above` or `below`" in text


def test_the_default_table_uses_every_code() -> None:
    table = load_protection_table(DEFAULT_MAPPINGS_DIR)
    assert {rule.alarm_code for rule in table.rules} == set(AlarmCode)


def test_the_default_predictive_rules_are_the_thresholds_the_benchmark_measured() -> None:
    """bench/predictive.py measures the predictive statistics against PredictiveSettings' thresholds and holds."""
    rules = {rule.code: rule for rule in build_default_rules(parameters(packs=1))}
    s = PredictiveSettings()
    expected = {
        AlarmCode.RESISTANCE_RISE: (s.resistance.excess, s.resistance.clear, s.resistance.hold_s),
        AlarmCode.LOCAL_HEATING: (s.heating.excess_c, s.heating.clear_c, s.heating.hold_s),
        AlarmCode.SOC_DRIFT: (s.drift.leak_c_rate, s.drift.clear_c_rate, s.drift.hold_s),
        AlarmCode.CURRENT_INSTABILITY: (1.0, s.current.clear_fraction, s.current.hold_s),
    }
    for code, (above, clear_at, delay_s) in expected.items():
        rule = rules[code]
        assert rule.direction == "above"
        assert rule.threshold[0] == pytest.approx(above)
        assert rule.clear_threshold[0] == pytest.approx(clear_at)
        assert rule.delay_s == delay_s


def test_docs_protection_md_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    generated = render_markdown(load_protection_table(DEFAULT_MAPPINGS_DIR))
    assert update_document(text, generated) == text, \
        "docs/protection.md is stale: run `python -m gateway.bms.protection_docs --write docs/protection.md`"
