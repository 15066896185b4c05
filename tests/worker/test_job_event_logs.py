"""The log lines of job state changes (``tribe_worker.job_events``): one JSON line per change,
with the job id, actor, attempt and duration, and never a secret or an email's body (StubBroker,
real Worker, fake SendGrid, real database). How a record becomes JSON: tests/shared/test_logs.py."""

from __future__ import annotations

import json
import logging

from tests.support.fakes.sendgrid import API_KEY, Reply
from tests.support.jobs import email_job, reload
from tests.support.waiting import drain
from tribe_shared.contract import Actor, JobStatus
from tribe_shared.logs import JsonFormatter

#: Words of the email's body: they must reach SendGrid and never the logs.
BODY = "Maya-took-her-first-steps-today"
CONTENT = {"type": "system", "subject": None, "templateData": {"title": "News", "message": BODY}}


def job_lines(caplog, job) -> list[dict]:
    """The JSON lines the worker wrote about ``job``, in order."""
    formatter = JsonFormatter()
    entries = [json.loads(formatter.format(r)) for r in caplog.records]
    return [e for e in entries if e.get("job_id") == str(job.id)]


def send(worker_app, job) -> None:
    worker_app.actors[Actor.SEND_EMAIL].send(str(job.id))


def test_a_sent_job_logs_claimed_then_sent_with_its_id_actor_attempt_and_duration(
    worker_app, stub_broker, stub_worker, sendgrid, caplog
):
    caplog.set_level(logging.DEBUG, logger="tribe_worker.jobs")
    job = email_job(content=CONTENT)

    send(worker_app, job)
    drain(stub_broker, stub_worker)

    assert reload(job).status == JobStatus.SENT
    claimed, sent = job_lines(caplog, job)
    for line, state in ((claimed, "claimed"), (sent, "sent")):
        assert line["state"] == state
        assert line["actor"] == Actor.SEND_EMAIL.value
        assert line["attempt"] == 1
        assert line["kind"] == "email"
        assert isinstance(line["duration_ms"], int) and line["duration_ms"] >= 0
    assert sent["provider"] == "sendgrid"
    assert sent["provider_message_id"] == reload(job).message_id


def test_a_transient_then_a_permanent_failure_log_retrying_then_failed(
    worker_app, stub_broker, stub_worker, sendgrid, caplog
):
    caplog.set_level(logging.INFO)
    sendgrid.script(Reply(500), Reply(400, body={"errors": [{"message": "Bad address."}]}))
    job = email_job(content=CONTENT)

    send(worker_app, job)
    drain(stub_broker, stub_worker)

    assert reload(job).status == JobStatus.FAILED
    # At INFO, the outcome of each attempt (claims are DEBUG lines)
    states = [(line["state"], line["attempt"]) for line in job_lines(caplog, job)]
    assert states == [("retrying", 1), ("failed", 2)]
    retrying, failed = job_lines(caplog, job)
    assert "500" in retrying["reason"] and retrying["delay_ms"] > 0
    assert "Bad address" in failed["reason"]
    assert failed["level"] == "WARNING"


def test_no_log_line_carries_the_api_key_the_authorization_or_the_emails_body(
    worker_app, stub_broker, stub_worker, sendgrid, caplog
):
    sendgrid.script(Reply(500))
    job = email_job(content=CONTENT)
    # Everything the worker logs, down to peewee's SQL (the job's INSERT above is not the worker's)
    caplog.set_level(logging.DEBUG)

    send(worker_app, job)
    drain(stub_broker, stub_worker)

    # SendGrid got the body, with the key...
    assert any(BODY in json.dumps(request.body) for request in sendgrid.requests)
    # ...and no line of any logger, at any level, has either
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert job_lines(caplog, job)
    assert API_KEY not in text
    assert "Bearer" not in text
    assert BODY not in text
