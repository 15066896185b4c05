"""The unsubscribe pages in a real browser: Debian's ``chromium``, driven by Selenium through
``chromium-driver``, against the API served over HTTP. Confirm, undo, stop everything, and a
bad link; a screenshot of each page goes to ``var/test-output/screenshots/``."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import appears, save_screenshot
from tests.support.family import family
from tests.support.family_api import digest_schedule
from tribe_shared.models import DigestSchedule, GroupUnsubscribe, Suppression, utcnow
from tribe_shared.settings import DEV_UNSUBSCRIBE_SECRET
from tribe_shared.unsubscribe import Scope, UnsubscribeTokens


def shot(browser, name: str) -> None:
    save_screenshot(browser, f"unsubscribe-{name}")


def link(fam) -> str:
    token = UnsubscribeTokens(DEV_UNSUBSCRIBE_SECRET).sign(
        fam.recipient.id, fam.group.id, Scope.GROUP, utcnow()
    )
    return f"/api/unsubscribe/{token}"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_confirm_then_undo_in_a_real_browser(served, browser):
    # Given Nana, on a digest of the Smiths' group, opening the link of one of their emails
    fam = family(email="nana@example.com")
    fam.group.family_name = "The Smiths"
    fam.group.save()
    schedule = digest_schedule(fam.recipient, fam.group)
    browser.get(served + link(fam))

    # Then the page says what will happen, and opening it changed nothing
    shot(browser, "1-confirm")
    assert "You will no longer get updates from The Smiths by email" in browser.page_source
    assert GroupUnsubscribe.select().count() == 0

    # When she confirms
    browser.find_element(By.ID, "confirm").click()

    # Then she is unsubscribed from the group and her digest of it is paused
    assert appears(browser, "state-unsubscribed")
    shot(browser, "2-unsubscribed")
    assert GroupUnsubscribe.select().count() == 1
    assert DigestSchedule.get_by_id(schedule.id).is_active is False

    # When she changes her mind
    browser.find_element(By.ID, "undo").click()

    # Then she gets the group's emails again, her digest resumed
    assert appears(browser, "state-resubscribed")
    shot(browser, "3-resubscribed")
    assert GroupUnsubscribe.select().count() == 0
    resumed = DigestSchedule.get_by_id(schedule.id)
    assert resumed.is_active is True and resumed.next_digest_scheduled is not None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stop_all_tribe_emails_then_undo_in_a_real_browser(served, browser):
    fam = family(email="Nana@Example.com")
    browser.get(served + link(fam))

    browser.find_element(By.ID, "confirm-all").click()

    assert appears(browser, "state-suppressed")
    shot(browser, "4-all-stopped")
    assert Suppression.get_by_id("nana@example.com").reason == "unsubscribed"

    browser.find_element(By.ID, "undo").click()

    assert appears(browser, "state-resubscribed")
    assert Suppression.select().count() == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_altered_link_shows_a_clear_page_in_a_real_browser(served, browser):
    fam = family()
    altered = link(fam)[:-3] + "AAA"

    browser.get(served + altered)

    assert appears(browser, "state-invalid")
    assert "Nothing was changed" in browser.page_source
    shot(browser, "5-invalid-link")
