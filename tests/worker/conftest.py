"""Fixtures of the worker's tests: forward proxies in front of the fake SendGrid."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fakes.proxy import PASSWORD, USER, FakeProxy


@pytest.fixture
def proxy() -> Iterator[FakeProxy]:
    fake = FakeProxy().start()
    yield fake
    fake.stop()


@pytest.fixture
def guarded_proxy() -> Iterator[FakeProxy]:
    """A proxy that wants ``USER``/``PASSWORD``."""
    fake = FakeProxy(credentials=(USER, PASSWORD)).start()
    yield fake
    fake.stop()
