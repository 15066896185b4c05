"""Fixtures of the system tests that more than one module uses."""

from tests.support.mail_sink import mail_sink  # noqa: F401 - the fixture
