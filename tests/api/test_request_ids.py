"""Following one request everywhere: an ``X-Request-ID`` (the client's, or one made up) is echoed
in the response, stored with the jobs the request created and carried in every worker log line
about them."""

from __future__ import annotations

import logging
import re

import pytest

from tests.support.family import family
from tests.support.family_api import create_group, create_recipient
from tests.support.jobs import reload
from tests.support.waiting import drain
from tribe_shared.models import NotificationJob

SEND_EMAIL = "/api/notifications/send-email"
EMAIL = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}


@pytest.fixture(autouse=True)
def nana_is_alices(db_url, tokens):
    """Alice's recipient Nana: a user may email only their own recipients."""
    return family(tokens.alice_id, email=EMAIL["to"])


def test_a_request_without_an_id_gets_one_in_its_response(api, tokens):
    first = api.simulate_get("/api/health/live")
    second = api.simulate_get("/api/health/live")

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_a_client_s_request_id_is_echoed_and_stored_with_its_job(api, tokens):
    headers = {**tokens.alice, "X-Request-ID": "checkout-7f3a"}

    response = api.simulate_post(SEND_EMAIL, json=EMAIL, headers=headers)

    assert response.headers["X-Request-ID"] == "checkout-7f3a"
    job_id = response.json["jobId"]
    assert reload(job_id).request_id == "checkout-7f3a"
    detail = api.simulate_get(f"/api/jobs/{job_id}", headers=tokens.alice).json
    assert detail["job"]["request_id"] == "checkout-7f3a"


@pytest.mark.parametrize("given", ["has spaces", "x" * 129, "line\\nbreak", "<script>"])
def test_a_request_id_that_is_not_sensible_is_replaced(api, tokens, given):
    response = api.simulate_post(
        SEND_EMAIL, json=EMAIL, headers={**tokens.service, "X-Request-ID": given}
    )

    replaced = response.headers["X-Request-ID"]
    assert replaced != given and re.fullmatch(r"[0-9a-f]{32}", replaced)
    assert reload(response.json["jobId"]).request_id == replaced


def test_every_job_of_a_bulk_request_and_of_an_update_s_fan_out_carries_its_id(api, tokens):
    bulk = api.simulate_post(
        "/api/notifications/send-bulk-email",
        json={"emails": [EMAIL, {**EMAIL, "to": "papa@example.com"}]},
        headers={**tokens.service, "X-Request-ID": "bulk-1"},
    )
    group = create_group(api, tokens.alice)
    for name in ("Nana", "Papa"):
        create_recipient(api, tokens.alice, name=name, group_ids=[group["id"]])
    update = api.simulate_post(
        "/api/updates",
        json={"group_id": group["id"], "content_type": "text", "title": "First steps"},
        headers={**tokens.alice, "X-Request-ID": "update-1"},
    )
    assert update.status_code == 202, update.text

    by_request = {
        request_id: NotificationJob.select().where(NotificationJob.request_id == request_id).count()
        for request_id in ("bulk-1", "update-1")
    }
    assert by_request == {"bulk-1": 2, "update-1": 2}
    assert bulk.status_code == 202


def test_every_worker_log_line_about_the_job_carries_the_request_id(
    api, tokens, stub_broker, stub_worker, caplog
):
    caplog.set_level(logging.DEBUG, logger="tribe_worker.jobs")
    headers = {**tokens.alice, "X-Request-ID": "trace-me-42"}
    job_id = api.simulate_post(SEND_EMAIL, json=EMAIL, headers=headers).json["jobId"]

    drain(stub_broker, stub_worker)

    lines = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
    assert {r.state for r in lines} >= {"claimed", "sent"}
    assert {r.request_id for r in lines} == {"trace-me-42"}
