"""Structured logs: one JSON object per line, for the processes that run in production.

A record renders as its message plus every ``extra`` field given to the logging call::

    log.info("request", extra={"method": "GET", "status": 200})
    {"ts": "2025-01-01T12:00:00.000Z", "level": "INFO", "logger": "tribe_api.access",
     "message": "request", "method": "GET", "status": 200}

Callers decide what goes in ``extra``: never secrets, tokens or email bodies.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """The record's time, level, logger and message, its ``extra`` fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        entry = {
            "ts": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: int | str = logging.INFO) -> None:
    """Send every log record of this process to stderr as one JSON line (replacing handlers)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
