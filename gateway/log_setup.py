"""How the gateway logs: text lines for a terminal, or one JSON object per line for a log shipper
(`log_format = "json"`: journald, Docker, Loki, Elasticsearch), on standard error, never a secret.

Secrets cannot reach a log line in full: a PEM private key block, and the value after `password`,
`passphrase`, `secret` or `token` (as `key=value`, `key: value` or a JSON/Python `"key": "value"`),
are replaced by `[redacted]` in every message, exception text included, whichever format.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"
_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL)
_SECRET_VALUE = re.compile(
    r"""(?P<key>["']?\b\w*(?:password|passphrase|secret|token)\w*["']?\s*[:=]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;}\]]+)""", re.IGNORECASE)

_configured: LogFormat = "text"


def redact(text: str) -> str:
    text = _PEM_KEY.sub(REDACTED, text)
    return _SECRET_VALUE.sub(lambda m: m["key"] + REDACTED, text)


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One object per line: time (UTC, ISO-8601), level, logger, message, process; exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                 .replace("+00:00", "Z"), "level": record.levelname, "logger": record.name,
                 "message": redact(record.getMessage()), "process": record.processName}
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int | str, log_format: LogFormat = "text") -> None:
    """The root logger writes to standard error in `log_format`; asyncua only from WARNING on (its INFO is noise)."""
    global _configured
    _configured = log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else RedactingTextFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])  # a no-op where logging is set up already (pytest)
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger().level))


def current_logging() -> tuple[int, LogFormat]:
    """This process's level and format, for a child process to log the same way."""
    return logging.getLogger().level, _configured
