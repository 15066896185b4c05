"""Fixtures of the system tests: the tools they run."""

from __future__ import annotations

import shutil

import pytest

from tests.support.deploy_files import missing_tool


@pytest.fixture(scope="module")
def promtool() -> str:
    """Prometheus's promtool (Debian's ``prometheus`` package); skips (fails under CI) without."""
    path = shutil.which("promtool")
    if path is None:
        missing_tool("promtool")
    return path
