"""The update email links to the Tribe app's page where its recipient mutes these emails, when
``PUBLIC_BASE_URL`` says where the app is; without it the email has no mute link at all."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.family import group_of, recipient_of, user
from tests.support.family_api import post_update
from tests.support.mail import the_one_email
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.worker import build_worker

APP = "https://app.tribe.example"


@pytest.fixture
def public_base_url() -> str | None:
    return APP


@pytest.fixture
def worker_app(settings, stub_broker, sendgrid, public_base_url):
    """The conftest worker, told where the Tribe app is (or not)."""
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    configured = replace(settings, public_base_url=public_base_url)
    return build_worker(configured, broker=stub_broker, provider=provider)


def test_the_update_email_links_to_the_page_that_mutes_its_recipient(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    # Given Nana in Alice's group, and a worker that knows where the Tribe app is
    alice = user(tokens.alice_id)
    group = group_of(alice)
    nana = recipient_of(alice, groups=(group,))

    # When Alice posts an update and it is delivered
    post_update(api, tokens.alice, group)
    _, html, text = the_one_email(stub_broker, stub_worker, sendgrid)

    # Then both parts of Nana's email link to the page that mutes Nana
    mute_url = f"{APP}/recipients/{nana.id}/mute"
    assert f'href="{mute_url}"' in html
    assert f"Mute these emails: {mute_url}" in text


@pytest.mark.parametrize("public_base_url", [None])
def test_without_a_public_base_url_the_update_email_has_no_mute_link(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    alice = user(tokens.alice_id)
    group = group_of(alice)
    recipient_of(alice, groups=(group,))

    post_update(api, tokens.alice, group)
    _, html, text = the_one_email(stub_broker, stub_worker, sendgrid)

    assert "Mute" not in html
    assert "Mute" not in text
