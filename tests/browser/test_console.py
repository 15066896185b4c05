"""The operator console in a real browser (Debian's ``chromium`` through ``chromium-driver``)
against the real API on PostgreSQL and Redis, with a worker on the same Redis sending through
the fake SendGrid: sign in, find a failed job by its address, read its timeline, retry it and
watch it become ``sent``; retry 200 failed jobs in bulk and follow the progress; cancel an
update's scheduled fan-out; the digests, suppressions and dead letters; sign out; no session or
a forged CSRF token is refused. A screenshot of each page goes to
``var/test-output/screenshots/console-*.png``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
import requests
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import WAIT_SECONDS, appears, save_screenshot, serve
from tests.support.fakes.sendgrid import Reply
from tests.support.family import group_of, recipient_of, update_in, user
from tests.support.family_api import digest_schedule, job_row
from tests.support.jobs import SYSTEM_EMAIL, reload
from tests.support.waiting import wait_until
from tests.support.workers import heartbeat, running_worker, scheduler_ran
from tribe_api.app import create_app
from tribe_api.auth import mint_service_role_key
from tribe_shared.contract import JobKind, JobStatus
from tribe_shared.models import NotificationJob, Suppression, utcnow
from tribe_shared.redis_broker import build_broker
from tribe_worker.worker import build_worker

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)

INVALID_ADDRESS = Reply(400, body={"errors": [{"message": "Does not contain a valid address."}]})


@dataclass
class Console:
    url: str
    key: str
    settings: object


@pytest.fixture
def console(redis_settings, redis_client, sendgrid) -> Iterator[Console]:
    """The API with its console, and a worker (four threads) on the same Redis."""
    settings = replace(redis_settings, email_rate_limit_per_second=100_000)
    broker = build_broker(settings)
    worker = build_worker(settings, broker=broker)
    app = create_app(settings, broker=worker.broker, redis_client=redis_client)
    heartbeat(redis_client, settings.redis_namespace)
    scheduler_ran(redis_client, settings.redis_namespace)
    with running_worker(worker.broker, threads=4), serve(app) as url:
        yield Console(url, mint_service_role_key(settings.jwt_secret), settings)
    broker.close()


def sign_in(browser, console: Console, page: str = "/admin") -> None:
    browser.get(console.url + page)
    appears(browser, "sign-in")
    browser.find_element(By.ID, "name").send_keys("Ada Operator")
    browser.find_element(By.ID, "token").send_keys(console.key)
    browser.find_element(By.ID, "sign-in").click()
    appears(browser, "sign-out")


def text_becomes(browser, element_id: str, expected: str, *, reload_page: bool = False) -> None:
    """Wait until the element's text is ``expected`` (reloading the page between looks, for
    a page that does not refresh itself)."""

    def shows(driver):
        if reload_page:
            driver.refresh()
        found = driver.find_elements(By.ID, element_id)
        return bool(found) and found[0].text.strip() == expected

    # A page that refreshes itself may replace the element between finding and reading it, or
    # be between documents when the driver asks (any driver error then: look again).
    WebDriverWait(
        browser,
        WAIT_SECONDS,
        poll_frequency=0.3,
        ignored_exceptions=(WebDriverException,),
    ).until(shows)


def failed_emails(count: int, request_id: str) -> list[NotificationJob]:
    owner = user().id
    return [
        job_row(
            owner,
            status=JobStatus.FAILED,
            to_email=f"guest{i}@example.com",
            content=SYSTEM_EMAIL,
            failure_reason="SendGrid 503 (retries exhausted)",
            retry_count=5,
            processed_at=utcnow(),
            request_id=request_id,
        )
        for i in range(count)
    ]


def test_find_a_failed_job_by_address_read_its_timeline_retry_it_and_see_it_sent(
    console, browser, sendgrid
):
    # Given an email SendGrid refused, sent through the API and failed by the worker
    sendgrid.script(INVALID_ADDRESS)
    email = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}
    accepted = requests.post(
        console.url + "/api/notifications/send-email",
        json=email,
        headers={"Authorization": f"Bearer {console.key}"},
        timeout=10,
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["jobId"]
    wait_until(lambda: reload(job_id).status == JobStatus.FAILED, what="the job to fail")

    # When the operator signs in, and finds it by its address
    sign_in(browser, console)
    assert appears(browser, "warnings-h")
    save_screenshot(browser, "console-1-overview")
    browser.get(console.url + "/admin/jobs")
    browser.find_element(By.ID, "f-to").send_keys("nana@example.com")
    browser.find_element(By.ID, "apply-filter").click()
    appears(browser, "match-count")
    save_screenshot(browser, "console-2-jobs")
    browser.find_element(By.CSS_SELECTOR, f"a[href='/admin/jobs/{job_id}']").click()

    # Then its timeline says what happened and why
    timeline = appears(browser, "timeline").text
    assert "permanent_failure" in timeline
    assert "Does not contain a valid address" in timeline
    assert "valid address" in browser.find_element(By.ID, "failure-reason").text
    save_screenshot(browser, "console-3-job-failed")

    # When they retry it (SendGrid takes it this time)
    browser.find_element(By.ID, "retry").click()
    assert appears(browser, "notice")

    # Then it is sent
    text_becomes(browser, "job-status", "sent", reload_page=True)
    assert "sent" in browser.find_element(By.ID, "timeline").text
    save_screenshot(browser, "console-4-job-sent")
    assert reload(job_id).status == JobStatus.SENT


def test_a_bulk_retry_of_200_failed_jobs_shows_its_count_and_progress(console, browser):
    jobs = failed_emails(200, "outage-night")
    failed_emails(3, "another-request")

    sign_in(browser, console, "/admin/jobs?status=failed&request_id=outage-night")
    assert "200" in appears(browser, "match-count").text
    browser.find_element(By.ID, "bulk-retry").click()

    assert "200 job(s) will be sent again" in appears(browser, "bulk-count").text
    save_screenshot(browser, "console-5-bulk-confirm")
    browser.find_element(By.ID, "confirm-bulk").click()

    appears(browser, "action-progress")
    text_becomes(browser, "action-status", "done")
    assert "200 of 200 job(s) retried" in browser.find_element(By.ID, "action-progress").text
    save_screenshot(browser, "console-6-bulk-done")
    wait_until(
        lambda: all(reload(job).status == JobStatus.SENT for job in jobs),
        timeout=60,
        what="the 200 retried jobs to be sent",
    )
    assert NotificationJob.select().where(NotificationJob.status == JobStatus.FAILED).count() == 3


def test_an_updates_scheduled_fan_out_is_cancelled_from_the_console(console, browser):
    owner = user()
    group = group_of(owner)
    update = update_in(group)
    fan_out = [
        job_row(
            owner.id,
            kind=JobKind.NOTIFICATION,
            status=JobStatus.PENDING,
            recipient=recipient_of(owner, email=f"r{i}@example.com").id,
            group=group.id,
            family_update=update.id,
            scheduled_for=utcnow() + timedelta(hours=3),
        )
        for i in range(12)
    ]

    sign_in(browser, console, f"/admin/jobs?update_id={update.id}")
    browser.find_element(By.ID, "bulk-cancel").click()
    assert "12 job(s) will be cancelled" in appears(browser, "bulk-count").text
    browser.find_element(By.ID, "confirm-bulk").click()

    text_becomes(browser, "action-status", "done")
    assert all(reload(job).status == JobStatus.CANCELLED for job in fan_out)


def test_sign_out_and_what_is_refused_without_a_session_or_with_a_forged_csrf_token(
    console, browser
):
    owner = user()
    recipient = recipient_of(owner, email="grandpa@example.com")
    group = group_of(owner)
    schedule = digest_schedule(recipient, group)
    schedule.next_digest_scheduled = utcnow() + timedelta(minutes=20)
    schedule.created_at = utcnow() - timedelta(days=1)
    schedule.save()
    update_in(group, "First steps", created_at=utcnow() - timedelta(hours=2))
    Suppression.create(
        email="bounced@example.com", reason="bounced", source="sendgrid:bounce",
        suppressed_at=utcnow(),
    )  # fmt: skip
    waiting = job_row(owner.id, status=JobStatus.PENDING, scheduled_for=utcnow() + timedelta(1))

    # No session: a page sends you to sign in, a form is refused
    browser.get(console.url + "/admin/digests")
    assert appears(browser, "sign-in")
    save_screenshot(browser, "console-0-sign-in")
    refused = requests.post(
        f"{console.url}/admin/jobs/{waiting.id}/cancel", data={"csrf": "guess"}, timeout=10
    )
    assert refused.status_code == 403

    # Signed in: the digests and suppressions pages
    sign_in(browser, console, "/admin/digests")
    assert appears(browser, "due-soon")
    save_screenshot(browser, "console-7-digests")
    browser.find_element(By.CSS_SELECTOR, f"a[href='/admin/digests/{schedule.id}']").click()
    assert "1 update(s)" in appears(browser, "preview-count").text
    save_screenshot(browser, "console-7-digest-preview")
    browser.get(console.url + "/admin/suppressions")
    assert "bounced@example.com" in appears(browser, "suppressions").text
    save_screenshot(browser, "console-8-suppressions")
    browser.get(console.url + "/admin/dead-letters")
    assert appears(browser, "dead-letters")
    save_screenshot(browser, "console-9-dead-letters")

    # A form whose CSRF token is not the session's changes nothing
    browser.get(f"{console.url}/admin/jobs/{waiting.id}")
    csrf = browser.find_element(By.CSS_SELECTOR, "form[action$='/cancel'] input[name=csrf]")
    browser.execute_script("arguments[0].value = 'forged'", csrf)
    browser.find_element(By.ID, "cancel").click()
    assert appears(browser, "refused")
    assert reload(waiting).status == JobStatus.PENDING

    # Signing out ends the session
    browser.get(console.url + "/admin")
    browser.find_element(By.ID, "sign-out").click()
    assert "You are signed out" in appears(browser, "notice").text
    browser.get(console.url + "/admin/jobs")
    assert appears(browser, "sign-in")


def test_the_overview_charts_the_last_hours_sends_and_failures(console, browser):
    # Given an hour of sends, with a burst of failures twenty minutes ago
    owner = user().id
    now = utcnow()
    for minute in range(60):
        for _ in range(3 + minute % 7):
            job_row(owner, status=JobStatus.SENT, processed_at=now - timedelta(minutes=minute))
    for _ in range(6):
        job_row(owner, status=JobStatus.FAILED, processed_at=now - timedelta(minutes=20))

    sign_in(browser, console, "/admin")
    browser.set_window_size(1200, 1500)

    chart = appears(browser, "chart-desc").get_attribute("textContent")
    assert "6 failed" in chart
    assert "1 h failed" not in browser.find_element(By.ID, "warnings-h").text
    # The overview of the README (docs/console.png is a copy of this one)
    save_screenshot(browser, "console-overview-wide")
