"""The console's sign-in (issue #16): a service-role key becomes a short-lived, HttpOnly,
Secure, SameSite=Strict session cookie; every form carries a CSRF token; nothing is reachable
without a session; a user's token is refused."""

from __future__ import annotations

import pytest

from tests.support.console import FORM, csrf_of, sign_in, signed_in
from tests.support.family import user
from tests.support.family_api import job_row
from tests.support.jobs import reload
from tribe_api.auth import mint_service_role_key
from tribe_api.console.session import COOKIE
from tribe_shared.contract import JobStatus
from tribe_shared.models import utcnow

PAGES = ["/admin", "/admin/jobs", "/admin/digests", "/admin/suppressions"]


def test_a_service_role_key_becomes_a_strict_http_only_secure_session_cookie(api, tokens):
    response = sign_in(api, mint_service_role_key(tokens.secret))

    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    cookie = response.cookies[COOKIE]
    assert cookie.http_only and cookie.secure and cookie.same_site == "Strict"
    assert cookie.path == "/admin"
    assert 0 < cookie.max_age <= 30 * 60
    assert mint_service_role_key(tokens.secret) not in cookie.value


@pytest.mark.parametrize("page", PAGES)
def test_every_page_answers_with_a_session(api, tokens, page):
    response = api.simulate_get(page, headers=signed_in(api, tokens))

    assert response.status_code == 200, response.text
    assert "Signed in as Ada" in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("page", PAGES)
def test_a_page_without_a_session_redirects_to_sign_in(api, page):
    response = api.simulate_get(page)

    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/sign-in?next=")


def test_a_users_token_is_refused_clearly(api, tokens):
    token = tokens.alice["Authorization"].split()[1]

    response = sign_in(api, token)

    assert response.status_code == 403
    assert "a user&#39;s token, not an operator&#39;s" in response.text
    assert COOKIE not in response.cookies


def test_a_forged_key_is_refused(api):
    response = sign_in(api, "eyJhbGciOiJIUzI1NiJ9.e30.forged")

    assert response.status_code == 401
    assert COOKIE not in response.cookies


def test_a_form_without_a_session_or_with_a_forged_csrf_token_changes_nothing(api, tokens):
    job = job_row(user(tokens.alice_id).id, status=JobStatus.QUEUED)
    path = f"/admin/jobs/{job.id}/cancel"
    session = signed_in(api, tokens)

    without = api.simulate_post(path, body="csrf=x", headers=FORM)
    forged = api.simulate_post(path, body="csrf=forged", headers={**FORM, **session})
    altered = {"Cookie": session["Cookie"][:-3] + "abc"}
    tampered = api.simulate_post(path, body="csrf=x", headers={**FORM, **altered})

    assert (without.status_code, forged.status_code, tampered.status_code) == (403, 403, 403)
    assert reload(job).status == JobStatus.QUEUED


def test_a_job_is_cancelled_from_its_page_and_sign_out_ends_the_session(api, tokens):
    job = job_row(user(tokens.alice_id).id, status=JobStatus.PENDING, scheduled_for=utcnow())
    session = signed_in(api, tokens)
    page = api.simulate_get(f"/admin/jobs/{job.id}", headers=session)
    csrf = csrf_of(page.text)

    cancelled = api.simulate_post(
        f"/admin/jobs/{job.id}/cancel", body=f"csrf={csrf}", headers={**FORM, **session}
    )
    out = api.simulate_post("/admin/sign-out", body=f"csrf={csrf}", headers={**FORM, **session})

    assert cancelled.status_code == 303
    assert reload(job).status == JobStatus.CANCELLED
    assert out.status_code == 303
    assert out.cookies[COOKIE].value == ""
