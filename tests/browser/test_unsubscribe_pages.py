"""The unsubscribe pages in a real browser: Debian's ``chromium``, driven by Selenium through
``chromium-driver``, against the API served over HTTP. Confirm, undo, stop everything, and a
bad link; a screenshot of each page goes to ``var/test-output/screenshots/``."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import skip_unless_ci
from tests.support.family import family
from tests.support.family_api import digest_schedule
from tests.support.processes import REPO
from tribe_api.app import create_app
from tribe_shared.models import DigestSchedule, GroupUnsubscribe, Suppression, utcnow
from tribe_shared.settings import DEV_UNSUBSCRIBE_SECRET
from tribe_shared.unsubscribe import Scope, UnsubscribeTokens

SCREENSHOTS = REPO / "var" / "test-output" / "screenshots"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")
#: What a headless chromium needs here (root, no GPU, nothing fetched from outside).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=800,700",
)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(settings, stub_broker) -> Iterator[str]:
    """The API on a free local port (HTTP, as a browser reaches it)."""
    server = make_server(
        "127.0.0.1", 0, create_app(settings, broker=stub_broker), handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver = CHROMIUM
    if not (Path(binary).exists() and (Path(driver).exists() or shutil.which("chromedriver"))):
        skip_unless_ci("Debian's chromium and chromium-driver are not installed (.ci/run does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.set_page_load_timeout(15)
    yield chrome
    chrome.quit()


def appears(browser, element_id: str):
    """The element, once the page that holds it has loaded (a click's POST takes a moment)."""
    return WebDriverWait(browser, 10).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )


def shot(browser, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / f"unsubscribe-{name}.png"))


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
