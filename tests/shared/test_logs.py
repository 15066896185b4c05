"""tribe_shared.logs: one JSON object per record, with the call's ``extra`` fields; handlers a CLI
installed write JSON too, and peewee never logs a statement's parameters."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from tribe_shared.logs import JsonFormatter, configure_logging

#: Words of a statement's parameters (an email's body): they must never reach the logs.
BODY = "Maya-took-her-first-steps-today"


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


def test_a_record_becomes_one_json_line_with_its_extra_fields():
    record = logging.LogRecord(
        "tribe.test", logging.INFO, __file__, 1, "job %s sent", ("j1",), None
    )
    record.job_id = "j1"
    record.attempt = 2

    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "job j1 sent"
    assert (entry["level"], entry["logger"]) == ("INFO", "tribe.test")
    assert (entry["job_id"], entry["attempt"]) == ("j1", 2)
    assert entry["time"].endswith("Z")


def test_an_exception_is_kept_in_the_same_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = __import__("sys").exc_info()

    entry = json.loads(JsonFormatter().format(record))

    assert "ValueError: boom" in entry["exception"]


@pytest.fixture
def root_logger():
    """The root logger, restored after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    formatters = [h.formatter for h in handlers]
    yield root
    root.handlers[:] = handlers
    for handler, formatter in zip(handlers, formatters, strict=True):
        handler.setFormatter(formatter)
    root.setLevel(level)


def test_configure_logging_makes_the_handlers_a_cli_installed_write_json(root_logger):
    # Given a handler installed by a CLI (as dramatiq's worker process has)
    stream = io.StringIO()
    root_logger.handlers[:] = [logging.StreamHandler(stream)]

    configure_logging(logging.INFO)
    logging.getLogger("tribe.test").info("hello %s", "there", extra={"job_id": "j1"})

    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "hello there"
    assert json.loads(line)["job_id"] == "j1"


def test_even_at_debug_peewee_does_not_log_query_parameters(root_logger):
    stream = io.StringIO()
    root_logger.handlers[:] = [logging.StreamHandler(stream)]
    peewee = logging.getLogger("peewee")
    peewee_level = peewee.level
    try:
        configure_logging(logging.DEBUG)
        peewee.debug("INSERT ... %s", BODY)
        logging.getLogger("tribe.test").debug("still here")
    finally:
        peewee.setLevel(peewee_level)

    assert BODY not in stream.getvalue()
    assert "still here" in stream.getvalue()
