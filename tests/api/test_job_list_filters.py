"""GET /api/jobs's filters of issue #16: an update's fan-out, the originating request, the
address, the kind and a creation range (and the console uses the same query)."""

from __future__ import annotations

from datetime import timedelta

from tests.support.family import group_of, update_in, user
from tests.support.family_api import JOBS, job_row
from tests.support.http_assertions import assert_json_error
from tribe_shared.contract import JobKind
from tribe_shared.models import utcnow


def ids(api, headers, **query) -> set[str]:
    response = api.simulate_get(JOBS, params=query, headers=headers)
    assert response.status_code == 200, response.text
    return {job["id"] for job in response.json["jobs"]}


def test_jobs_are_filtered_by_update_request_address_kind_and_creation_range(api, tokens):
    alice = user(tokens.alice_id)
    update = update_in(group_of(alice))
    now = utcnow()
    of_update = job_row(alice.id, family_update=update.id, kind=JobKind.NOTIFICATION)
    of_request = job_row(alice.id, request_id="req-42", to_email="grandpa@example.com")
    old = job_row(alice.id, created_at=now - timedelta(days=3))
    digest = job_row(alice.id, kind=JobKind.DIGEST)

    assert ids(api, tokens.alice, update_id=str(update.id)) == {str(of_update.id)}
    assert ids(api, tokens.alice, request_id="req-42") == {str(of_request.id)}
    assert ids(api, tokens.service_key, to="grandpa@example.com") == {str(of_request.id)}
    assert ids(api, tokens.alice, kind="digest") == {str(digest.id)}
    before = (now - timedelta(days=1)).isoformat()
    assert ids(api, tokens.alice, created_before=before) == {str(old.id)}
    assert str(old.id) not in ids(api, tokens.alice, created_after=before)


def test_another_users_update_is_a_404(api, tokens):
    update = update_in(group_of(user(tokens.bob_id)))

    response = api.simulate_get(JOBS, params={"update_id": str(update.id)}, headers=tokens.alice)

    assert "update_id" in assert_json_error(response, 404)["description"]
