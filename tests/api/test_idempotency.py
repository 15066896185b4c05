"""Safe retries: a POST sent again with the same ``Idempotency-Key`` gets the first answer and
creates nothing; another body with the key is a 422; keys are per caller; two requests with
one key at once make one result; only 2xx answers are kept; expired keys are cleaned up."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

import psycopg2
import pytest
from falcon import testing

from tests.support.clocks import Clock
from tests.support.concurrency import concurrently
from tests.support.email_api import BULK, EMAIL, SEND, email, job_rows
from tests.support.fakes.redis_server import free_port
from tests.support.family import NOTIFICATION_CONTENT, family, recipient_of, user
from tests.support.http_assertions import assert_json_error
from tests.support.queues import queued_messages
from tests.support.waiting import wait_until
from tribe_api.app import create_app
from tribe_api.idempotency import KEY_LIFETIME
from tribe_shared import db as shared_db
from tribe_shared.models import (
    DigestSchedule,
    IdempotencyKey,
    NotificationJob,
    Update,
    utcnow,
)
from tribe_worker import retention

KEY = "Idempotency-Key"


@pytest.fixture
def clock() -> Clock:
    return Clock(utcnow())


@pytest.fixture
def api(settings, stub_broker, worker_app, clock) -> testing.TestClient:
    """The API on the stub broker, with a clock the test moves."""
    return testing.TestClient(create_app(settings, broker=stub_broker, clock=clock))


@pytest.fixture
def alices(db_url, tokens):
    """Alice's recipient Nana (a user may email only their own recipients)."""
    return family(tokens.alice_id, email=EMAIL["to"])


def keyed(headers: dict, key: str) -> dict:
    return {**headers, KEY: key}


def send(api, headers, body=EMAIL, key="retry-1", path=SEND):
    return api.simulate_post(path, json=body, headers=keyed(headers, key))


# --- the same request again: the first answer, nothing new ------------------------------


def test_a_retry_with_the_same_key_and_body_gets_the_first_answer_and_creates_nothing(
    api, tokens, alices, stub_broker
):
    first = send(api, tokens.alice)
    again = send(api, tokens.alice)

    assert first.status_code == again.status_code == 202, again.text
    assert again.json == first.json
    assert again.text == first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    (job,) = job_rows()
    assert str(job.id) == first.json["jobId"]
    assert len(queued_messages(stub_broker)) == 1


def test_the_first_answers_job_is_stored_and_handed_over_once_its_transaction_commits(
    api, tokens, alices, stub_broker
):
    response = send(api, tokens.alice)

    (job,) = job_rows()
    assert job.status == response.json["status"] == "queued"
    (message,) = queued_messages(stub_broker)
    assert message.args == (str(job.id),)
    assert IdempotencyKey.select().count() == 1


def test_a_request_without_the_key_is_not_remembered_and_pays_nothing_for_it(
    api, tokens, alices, caplog
):
    api.simulate_post(SEND, json=EMAIL, headers=tokens.alice)  # the caller's users row, once
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        assert api.simulate_post(SEND, json=EMAIL, headers=tokens.alice).status_code == 202

    statements = [str(record.msg) for record in caplog.records if record.name == "peewee"]
    assert statements and not any("idempotency" in sql for sql in statements)
    assert not any("SAVEPOINT" in sql for sql in statements)  # no request-wide transaction
    assert len(job_rows()) == 2
    assert IdempotencyKey.select().count() == 0


# --- another request with the key ------------------------------------------------------


def test_the_same_key_with_another_body_is_a_422_idempotency_conflict(api, tokens, alices):
    send(api, tokens.alice)

    response = send(api, tokens.alice, email(subject="Something else"))

    body = assert_json_error(response, 422)
    assert body["code"] == "idempotency_conflict"
    assert len(job_rows()) == 1


def test_the_same_key_on_another_route_is_a_conflict_too(api, tokens, alices):
    send(api, tokens.alice)

    response = send(api, tokens.alice, {"emails": [EMAIL]}, path=BULK)

    assert assert_json_error(response, 422)["code"] == "idempotency_conflict"
    assert len(job_rows()) == 1


def test_keys_are_per_caller(api, tokens, alices):
    family(tokens.bob_id, email=EMAIL["to"])

    answers = [send(api, headers) for headers in (tokens.alice, tokens.bob, tokens.service_key)]

    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert len({answer.json["jobId"] for answer in answers}) == 3
    assert len(job_rows()) == 3


# --- only a 2xx is kept -----------------------------------------------------------------


def test_a_refused_first_attempt_is_not_kept_so_the_same_key_works_once_fixed(api, tokens, db_url):
    user(tokens.alice_id)
    refused = send(api, tokens.alice)  # Nana is not yet one of Alice's recipients
    assert_json_error(refused, 422)
    assert IdempotencyKey.select().count() == 0

    family(tokens.alice_id, email=EMAIL["to"])
    accepted = send(api, tokens.alice)

    assert accepted.status_code == 202, accepted.text
    assert "Idempotent-Replayed" not in accepted.headers
    assert [str(job.id) for job in job_rows()] == [accepted.json["jobId"]]


def test_a_503_while_the_database_is_down_is_not_kept_and_the_same_key_works_once_it_is_back(
    api, tokens, alices
):
    bound = shared_db.database.obj
    unreachable = shared_db.bind(f"postgresql://postgres@127.0.0.1:{free_port()}/tribe")
    try:
        refused = send(api, tokens.alice)
    finally:
        unreachable.close_all()
        shared_db.database.initialize(bound)
    assert_json_error(refused, 503)

    accepted = send(api, tokens.alice)

    assert accepted.status_code == 202, accepted.text
    assert "Idempotent-Replayed" not in accepted.headers
    assert [str(job.id) for job in job_rows()] == [accepted.json["jobId"]]


# --- the header itself ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "tab\there", "caf\u00e9", "x" * 256])
def test_a_malformed_key_is_a_400_and_nothing_is_stored(api, tokens, alices, key):
    response = send(api, tokens.alice, key=key)

    body = assert_json_error(response, 400)
    assert "Idempotency-Key" in body["description"]
    assert job_rows() == []


def test_the_longest_key_and_inner_spaces_are_accepted(api, tokens, alices):
    assert send(api, tokens.alice, key="k" * 255).status_code == 202
    assert send(api, tokens.alice, key="order 42: retry").status_code == 202


def test_the_key_on_a_route_that_does_not_honour_it_changes_nothing(api, tokens, db_url):
    for _ in range(2):
        response = api.simulate_post(
            "/api/groups", json={"name": "Grandparents"}, headers=keyed(tokens.alice, "g")
        )
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
    assert IdempotencyKey.select().count() == 0


# --- every accepting route ---------------------------------------------------------------


def _send_email(fam):
    return "/api/notifications/send-email", EMAIL, NotificationJob


def _bulk(fam):
    return BULK, {"emails": [EMAIL, email(subject="Two")]}, NotificationJob


def _notification(fam):
    body = {
        "recipient_id": str(fam.recipient.id),
        "group_id": str(fam.group.id),
        "content": NOTIFICATION_CONTENT,
    }
    return "/api/notifications", body, NotificationJob


def _update(fam):
    return "/api/updates", {"group_id": str(fam.group.id), "content_type": "text"}, Update


def _digest_schedule(fam):
    other = recipient_of(fam.owner, name="Grandpa", groups=(fam.group,))
    body = {
        "recipient_id": str(other.id),
        "group_id": str(fam.group.id),
        "frequency": "daily",
        "delivery_time": "09:00",
        "timezone": "Europe/London",
    }
    return "/api/digest-schedules", body, DigestSchedule


@pytest.mark.parametrize("route", [_send_email, _bulk, _notification, _update, _digest_schedule])
def test_every_accepting_route_replays_its_first_answer(api, tokens, alices, route):
    path, body, model = route(alices)

    first = send(api, tokens.alice, body, path=path)
    rows = model.select().count()
    jobs = NotificationJob.select().count()
    again = send(api, tokens.alice, body, path=path)

    assert 200 <= first.status_code < 300, first.text
    assert (again.status_code, again.text) == (first.status_code, first.text)
    assert again.headers.get("Location") == first.headers.get("Location")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (model.select().count(), NotificationJob.select().count()) == (rows, jobs)
    assert rows >= 1


def test_the_openapi_document_shows_the_header_on_the_accepting_routes_only(api):
    paths = api.simulate_get("/api/openapi.json").json["paths"]

    def has_key(path, method):
        return KEY in {p["name"] for p in paths[path][method].get("parameters", [])}

    for path in (
        "/api/notifications/send-email",
        "/api/notifications/send-bulk-email",
        "/api/notifications",
        "/api/updates",
        "/api/digest-schedules",
    ):
        assert has_key(path, "post"), path
    assert not has_key("/api/groups", "post")
    assert not has_key("/api/digest-schedules", "get")


# --- two at once ------------------------------------------------------------------------


def test_concurrent_requests_with_one_key_make_one_result(api, tokens, alices, stub_broker):
    answers = concurrently(*[lambda: send(api, tokens.alice)] * 4)

    assert [answer.status_code for answer in answers] == [202] * 4
    assert len({answer.text for answer in answers}) == 1
    assert len(job_rows()) == 1
    assert len(queued_messages(stub_broker)) == 1
    assert sum("Idempotent-Replayed" in answer.headers for answer in answers) == 3


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_second_request_arriving_while_the_first_runs_waits_and_replays_its_answer(
    api, tokens, alices, stub_broker, db_url
):
    # Given the first request held mid-way (its key claimed, its job INSERT waiting on a lock)
    blocker = psycopg2.connect(db_url)
    blocker.cursor().execute("LOCK TABLE notification_jobs IN EXCLUSIVE MODE")
    answers = {}

    def run(name):
        answers[name] = send(api, tokens.alice)

    first = threading.Thread(target=run, args=("first",))
    first.start()
    wait_until(lambda: _waiting_on_locks(db_url) == 1, timeout=10)
    # When a second request with the key arrives, it waits on the first's claim
    second = threading.Thread(target=run, args=("second",))
    second.start()
    wait_until(lambda: _waiting_on_locks(db_url) == 2, timeout=10)
    blocker.rollback()
    blocker.close()
    first.join(10)
    second.join(10)

    # Then it gets the first's answer once that commits, and nothing was created twice
    assert answers["first"].status_code == answers["second"].status_code == 202
    assert answers["second"].text == answers["first"].text
    assert answers["second"].headers["Idempotent-Replayed"] == "true"
    assert len(job_rows()) == 1
    assert len(queued_messages(stub_broker)) == 1


def _waiting_on_locks(db_url) -> int:
    with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        (count,) = cur.fetchone()
    conn.close()
    return count


# --- 24 hours, then cleaned up -----------------------------------------------------------


def test_a_key_is_replayed_for_24_hours_and_then_is_a_new_request(api, tokens, alices, clock):
    first = send(api, tokens.alice)
    clock.now += KEY_LIFETIME - timedelta(seconds=1)
    assert send(api, tokens.alice).text == first.text

    clock.now += timedelta(seconds=1)
    later = send(api, tokens.alice)

    assert later.status_code == 202
    assert later.json["jobId"] != first.json["jobId"]
    assert len(job_rows()) == 2


def test_retention_deletes_expired_keys_and_keeps_live_ones(api, tokens, alices, clock):
    send(api, tokens.alice, key="old")
    clock.now += timedelta(hours=23)
    send(api, tokens.alice, email(subject="New"), key="new")
    clock.now += timedelta(hours=1, seconds=1)

    run = retention.apply_retention(job_days=90, content_days=30, clock=clock, batch_size=1)

    assert run.keys == 1
    assert [row.key for row in IdempotencyKey.select()] == ["new"]
    assert len(job_rows()) == 2


def test_an_unknown_key_is_a_fresh_request_for_each_caller(api, tokens, alices):
    assert send(api, tokens.alice, key=str(uuid.uuid4())).status_code == 202
    assert send(api, tokens.alice, key=str(uuid.uuid4())).status_code == 202
    assert len(job_rows()) == 2
