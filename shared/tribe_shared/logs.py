"""Structured logs: one JSON object per line, for the processes that run in production.

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, plus every field
the call passed in ``extra`` (``log.info("job sent", extra={"job_id": ...})``) and the
exception's traceback when there is one. Never pass secrets or email bodies as fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message and its ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: int | str = logging.INFO) -> None:
    """Log JSON lines at ``level``: through the root logger's handlers if something (the
    ``dramatiq`` or ``periodiq`` CLI) installed them, else to stderr.

    peewee's query lines stay off even at DEBUG: they carry the parameters, email contents among
    them.
    """
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    root.setLevel(level)
    logging.getLogger("peewee").setLevel(logging.INFO)


def _utc(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
