"""Fixtures of the system tests that more than one module uses: the tools they run, the mail
sink."""

from __future__ import annotations

import shutil

import pytest

from tests.support.deploy_files import missing_tool
from tests.support.mail_sink import mail_sink  # noqa: F401 - the fixture


@pytest.fixture(scope="module")
def promtool() -> str:
    """Prometheus's promtool (Debian's ``prometheus`` package); skips (fails under CI) without."""
    path = shutil.which("promtool")
    if path is None:
        missing_tool("promtool")
    return path
