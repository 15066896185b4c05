"""PostgreSQL prepared statements (the claim and the record of every email): prepared once per
connection, and again on the connection that replaces one the server dropped."""

from __future__ import annotations

import psycopg2
import pytest

from tests.support.jobs import email_job, reload
from tribe_shared.contract import JobStatus
from tribe_shared.db import DATABASE_DOWN_ERRORS, database
from tribe_shared.models import utcnow
from tribe_shared.sql import delivery, run

pytestmark = pytest.mark.postgres

ECHO = run.Prepared("tribe_test_next", ("integer",), "SELECT $1 + 1")


def prepared_names() -> list[str]:
    rows = database.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()
    return sorted(name for (name,) in rows)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_email_statements_are_prepared_once_per_connection(db_url):
    jobs = [email_job(), email_job()]
    now = utcnow()

    (first,) = delivery.claim([jobs[0].id], now, now)
    delivery.record_sent([first], "sendgrid", "m-1", 5, now)
    claimed = delivery.claim([jobs[1].id], now, now)
    delivery.record_sent(claimed, "sendgrid", "m-2", 5, now)

    assert prepared_names() == ["tribe_claim", "tribe_log_sent", "tribe_mark_sent"]
    for job, message_id in zip(jobs, ["m-1", "m-2"], strict=True):
        job = reload(job)
        assert (job.status, job.message_id, job.attempts) == (JobStatus.SENT, message_id, 1)
        ((attempt, status),) = [(log.attempt, log.status) for log in job.delivery_logs]
        assert (attempt, status) == (1, "sent")


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_connection_the_server_dropped_is_replaced_and_prepares_again(db_url):
    assert database.execute_sql(*ECHO.bind([1])).fetchone() == (2,)
    pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]

    # When the server drops the connection (a restart, a failover, an operator)
    with psycopg2.connect(db_url) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(DATABASE_DOWN_ERRORS):
        database.execute_sql(*ECHO.bind([2]))
    database.close()

    # Then the next connection prepares the statement again
    assert database.execute_sql(*ECHO.bind([3])).fetchone() == (4,)
    assert database.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    assert "tribe_test_next" in prepared_names()
