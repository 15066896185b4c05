"""tribe_shared.logs: one JSON object per record, with the call's ``extra`` fields."""

from __future__ import annotations

import json
import logging
import sys

from tribe_shared.logs import JsonFormatter


def record(message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    logger = logging.getLogger("tribe_api.access")
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, message, args, exc_info, extra=extra
    )


def test_a_record_renders_as_one_json_line_with_its_message_and_extra_fields():
    line = JsonFormatter().format(
        record("GET %s %d", "/api/jobs", 200, route="/api/jobs", status=200)
    )

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "GET /api/jobs 200"
    assert (entry["level"], entry["logger"]) == ("INFO", "tribe_api.access")
    assert (entry["route"], entry["status"]) == ("/api/jobs", 200)
    assert entry["time"].endswith("Z")
    assert "args" not in entry and "msg" not in entry


def test_a_traceback_is_kept_in_the_same_line():
    try:
        raise ValueError("boom")
    except ValueError:
        entry = json.loads(JsonFormatter().format(record("failed", exc_info=sys.exc_info())))

    assert "ValueError: boom" in entry["exception"]
