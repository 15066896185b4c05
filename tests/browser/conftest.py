"""What the browser tests share: Debian's ``chromium`` driven by Selenium through
``chromium-driver``, and the API served over HTTP (helpers in ``tests/support/browser.py``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import skip_unless_ci
from tests.support.browser import serve
from tribe_api.app import create_app

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


@pytest.fixture
def served(settings, stub_broker) -> Iterator[str]:
    """The API on a stub broker, on a free local port."""
    with serve(create_app(settings, broker=stub_broker)) as url:
        yield url


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
