"""The console's pages over the API's own queries: keyset pages through the job list, a bad
filter said plainly, a bulk confirmation that only counts, a suppression lifted by its form."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.support.console import FORM, csrf_of, signed_in
from tests.support.family import user
from tests.support.family_api import job_row
from tribe_shared.contract import JobStatus
from tribe_shared.models import BulkAction, Suppression, utcnow


def job_ids(html: str) -> list[str]:
    return re.findall(r'<a href="/admin/jobs/([0-9a-f-]{36})"', html)


def test_the_job_list_pages_by_keyset_in_either_order_without_overlap(api, tokens):
    owner = user(tokens.alice_id).id
    start = utcnow() - timedelta(hours=1)
    for i in range(60):
        job_row(owner, created_at=start + timedelta(seconds=i))
    session = signed_in(api, tokens)

    for order in ("desc", "asc"):
        first = api.simulate_get("/admin/jobs", params={"order": order}, headers=session)
        next_link = re.search(r'id="next-page" href="([^"]+)"', first.text).group(1)
        second = api.simulate_get(next_link.replace("&amp;", "&"), headers=session)

        assert (first.status_code, second.status_code) == (200, 200)
        assert len(job_ids(first.text)) == 50 and len(job_ids(second.text)) == 10
        assert not set(job_ids(first.text)) & set(job_ids(second.text))
        assert 'id="next-page"' not in second.text


def test_a_bad_filter_is_said_plainly(api, tokens):
    response = api.simulate_get(
        "/admin/jobs", params={"created_after": "last tuesday"}, headers=signed_in(api, tokens)
    )

    assert response.status_code == 400
    assert "created_after" in re.search(r'id="filter-error">([^<]+)<', response.text).group(1)


def test_the_bulk_confirmation_counts_and_changes_nothing(api, tokens):
    owner = user(tokens.alice_id).id
    for _ in range(3):
        job_row(owner, status=JobStatus.FAILED, to_email="nana@example.com")
    job_row(owner, status=JobStatus.FAILED, to_email="joe@example.com")

    response = api.simulate_get(
        "/admin/bulk",
        params={"action": "retry", "to": "nana@example.com"},
        headers=signed_in(api, tokens),
    )

    assert response.status_code == 200
    assert "<strong>3</strong> job(s) will be sent again" in response.text
    assert BulkAction.select().count() == 0


def test_a_suppression_is_lifted_from_its_page(api, tokens):
    Suppression.create(email="nana@example.com", reason="bounced", suppressed_at=utcnow())
    session = signed_in(api, tokens)
    page = api.simulate_get("/admin/suppressions", headers=session)
    assert "nana@example.com" in page.text

    lifted = api.simulate_post(
        "/admin/suppressions",
        body=f"csrf={csrf_of(page.text)}&email=nana%40example.com",
        headers={**FORM, **session},
    )

    assert lifted.status_code == 303
    assert Suppression.select().count() == 0
