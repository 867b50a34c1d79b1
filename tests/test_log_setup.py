"""Log formats: JSON lines a shipper can parse, text for a terminal, and secrets redacted in both."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from gateway.log_setup import REDACTED, JsonFormatter, RedactingTextFormatter, redact

KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize(("text", "expected"), [
    ("password=hunter2 next", f"password={REDACTED} next"),
    ('{"password": "hunter 2", "user": "otto"}', f'{{"password": {REDACTED}, "user": "otto"}}'),
    ("{'db_passphrase': 'x y'}", f"{{'db_passphrase': {REDACTED}}}"),
    ("OPC_TOKEN: abc123;", f"OPC_TOKEN: {REDACTED};"),
    (f"loaded {KEY} done", f"loaded {REDACTED} done"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE... (cut)", REDACTED),
    ("user 'otto' refused: unknown user or wrong password", "user 'otto' refused: unknown user or wrong password"),
    ("cell 3 at 4.21 V", "cell 3 at 4.21 V"),
])
def test_redact_hides_secret_values_and_keeps_everything_else(text: str, expected: str) -> None:
    assert redact(text) == expected


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("password=hunter2")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("gateway.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_json_line_has_time_level_logger_message_and_process() -> None:
    entry = json.loads(JsonFormatter().format(_record("pack %s: %s", "pack-01", "über \"hot\"")))
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "gateway.test"
    assert entry["message"] == 'pack pack-01: über "hot"'
    assert entry["process"] == "MainProcess"
    assert entry["time"].endswith("Z")
    assert "exception" not in entry


def test_exceptions_are_one_json_field_and_redacted_in_both_formats() -> None:
    entry = json.loads(JsonFormatter().format(_record("failed", exc=True)))
    assert "Traceback" in entry["exception"]
    assert "hunter2" not in entry["exception"]
    text = RedactingTextFormatter("%(message)s").format(_record("with token=%s", "abc", exc=True))
    assert "abc" not in text
    assert "hunter2" not in text
    assert "ValueError" in text


def test_configure_logging_writes_json_lines_to_standard_error_in_a_fresh_process() -> None:
    result = subprocess.run([sys.executable, "-c", "import logging; from gateway.log_setup import configure_logging;"
                             "configure_logging('INFO', 'json'); logging.getLogger('gateway.x').info('ready %d', 3)"],
                            capture_output=True, text=True, timeout=60)
    assert json.loads(result.stderr)["message"] == "ready 3"
