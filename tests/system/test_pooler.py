"""Behind a transaction-mode pooler (``DATABASE_POOLER=transaction``): the API (gunicorn) and the
worker (dramatiq) run through a real PgBouncer in transaction mode, started by the test, with one
server connection for all of them, so any prepared statement or session state of ours would
break on the next transaction. Without the setting, our prepared statements do break there."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import requests

from tests.conftest import JWT_SECRET, REDIS_URL, skip_unless_ci
from tests.support.fakes.pgbouncer import PgBouncer, pgbouncer_path
from tests.support.fakes.redis_server import free_port
from tests.support.processes import Processes, product_env
from tests.support.waiting import wait_until
from tribe_api.auth import mint_token
from tribe_shared import db
from tribe_shared.contract import JobStatus
from tribe_shared.models import utcnow
from tribe_shared.sql.delivery import claim

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

HEADERS = {"Authorization": f"Bearer {mint_token(JWT_SECRET, role='service_role')}"}


@pytest.fixture
def pgbouncer(postgres_url) -> Iterator[PgBouncer]:
    if pgbouncer_path() is None:
        skip_unless_ci("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    bouncer = PgBouncer(postgres_url, pool_size=1).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
def pooled_url(postgres_url, pgbouncer) -> Iterator[str]:
    """This run's test database, reached through PgBouncer; emptied afterwards."""
    yield pgbouncer.url(postgres_url.rsplit("/", 1)[1])
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE notification_jobs, users CASCADE")
    connection.close()


@pytest.fixture
def system(pooled_url, sendgrid, tmp_path, redis_namespace) -> Iterator[str]:
    """release, web (2 gunicorn workers) and worker (4 threads), all through PgBouncer."""
    port = free_port()
    env = product_env(
        tmp_path,
        database_url=pooled_url,
        redis_url=REDIS_URL,
        sendgrid_url=sendgrid.url,
        port=port,
        DATABASE_POOLER="transaction",
        REDIS_NAMESPACE=redis_namespace,
        WEB_CONCURRENCY="2",
    )
    processes = Processes(tmp_path, env)
    base = processes.start_release_web_worker(port, threads=4, ready_path="/api/health/ready")
    yield base
    processes.stop_all()


def test_the_api_and_the_worker_work_through_a_transaction_mode_pgbouncer(system, sendgrid):
    # Given the API and the worker reach PostgreSQL only through PgBouncer in transaction mode
    session = requests.Session()
    emails = [
        {"to": f"reader{i}@example.com", "type": "system", "templateData": {"title": f"#{i}"}}
        for i in range(12)
    ]

    # When emails are accepted one by one and in bulk
    job_ids = [
        session.post(f"{system}/api/notifications/send-email", json=body, headers=HEADERS).json()[
            "jobId"
        ]
        for body in emails[:6]
    ]
    bulk = session.post(
        f"{system}/api/notifications/send-bulk-email", json={"emails": emails[6:]}, headers=HEADERS
    )
    assert bulk.status_code == 202, bulk.text
    job_ids += [job["jobId"] for job in bulk.json()["jobs"]]

    # Then every one is claimed, sent and recorded, each once
    def all_sent():
        statuses = [
            session.get(f"{system}/api/jobs/{job_id}", headers=HEADERS).json()["job"]["status"]
            for job_id in job_ids
        ]
        return all(status == JobStatus.SENT for status in statuses)

    wait_until(all_sent, timeout=30, what="every job sent through PgBouncer")
    assert sorted(sendgrid.job_ids) == sorted(job_ids)
    detail = session.get(f"{system}/api/jobs/{job_ids[0]}", headers=HEADERS).json()
    assert [log["status"] for log in detail["delivery_logs"]] == ["sent"]
    assert session.get(f"{system}/api/health/ready").status_code == 200


def claims_on_two_connections(url: str, pooler: str) -> tuple[list, list]:
    """Two worker threads, each holding a client connection of its own, claim one after the
    other through PgBouncer; returns what each claimed and the errors raised."""
    database = db.bind(url, pooler=pooler)
    claimed, errors = [], []
    first_done, second_done = threading.Event(), threading.Event()

    def worker_thread(wait_for: threading.Event | None, done: threading.Event, hold: bool):
        with db.connection():
            if wait_for is not None:
                wait_for.wait(10)
            try:
                claimed.append(claim([uuid.uuid4()], utcnow(), utcnow()))
            except Exception as exc:  # peewee's wrapping of the driver's error
                errors.append(exc)
            done.set()
            if hold:  # keep this client connection until the other thread has claimed
                second_done.wait(10)

    threads = [
        threading.Thread(target=worker_thread, args=(None, first_done, True)),
        threading.Thread(target=worker_thread, args=(first_done, second_done, False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.close_all()
    return claimed, errors


def test_without_the_setting_prepared_statements_break_behind_the_pooler(pooled_url):
    # When two worker threads claim through PgBouncer's one server connection, preparing the
    # claim on their own client connections
    claimed, errors = claims_on_two_connections(pooled_url, "none")

    # Then the second one's PREPARE meets the first one's on the shared server connection
    assert claimed == [[]]
    (error,) = errors
    assert "tribe_claim" in str(error) and "already exists" in str(error)


def test_with_the_setting_the_same_claims_run_as_plain_statements(pooled_url):
    claimed, errors = claims_on_two_connections(pooled_url, "transaction")

    assert errors == []
    assert claimed == [[], []]
