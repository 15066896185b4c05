"""A group's opt-in to AI digest summaries and a recipient's locale, through the API."""

from __future__ import annotations

import pytest

from tests.support.email_api import SEND, email, job_rows
from tribe_shared.models import Group, Recipient


@pytest.fixture
def group(api, tokens) -> dict:
    response = api.simulate_post("/api/groups", json={"name": "Grandparents"}, headers=tokens.alice)
    assert response.status_code == 201, response.text
    return response.json


def test_a_group_has_no_ai_summary_unless_it_asks(api, tokens, group):
    assert group["ai_summary"] is False
    asked = api.simulate_post(
        "/api/groups", json={"name": "Friends", "ai_summary": True}, headers=tokens.alice
    )
    assert asked.status_code == 201, asked.text
    assert asked.json["ai_summary"] is True


def test_a_group_opts_in_and_out_with_a_patch(api, tokens, group):
    path = f"/api/groups/{group['id']}"

    opted_in = api.simulate_patch(path, json={"ai_summary": True}, headers=tokens.alice)

    assert opted_in.status_code == 200, opted_in.text
    assert opted_in.json["ai_summary"] is True
    assert Group.get_by_id(group["id"]).ai_summary is True
    assert api.simulate_get(path, headers=tokens.alice).json["ai_summary"] is True
    off = api.simulate_patch(path, json={"ai_summary": False}, headers=tokens.alice)
    assert off.json["ai_summary"] is False


def test_another_users_group_cannot_be_changed_and_the_flag_is_a_boolean(api, tokens, group):
    path = f"/api/groups/{group['id']}"
    assert (
        api.simulate_patch(path, json={"ai_summary": True}, headers=tokens.bob).status_code == 404
    )
    wrong = api.simulate_patch(path, json={"ai_summary": "yes"}, headers=tokens.alice)
    assert wrong.status_code == 400


def test_a_recipient_has_a_locale(api, tokens, group):
    created = api.simulate_post(
        "/api/recipients",
        json={"name": "Abuela", "email": "abuela@example.com", "locale": "es-MX"},
        headers=tokens.alice,
    )
    assert created.status_code == 201, created.text
    assert created.json["locale"] == "es-MX"
    assert Recipient.get_by_id(created.json["id"]).locale == "es-MX"

    path = f"/api/recipients/{created.json['id']}"
    changed = api.simulate_patch(path, json={"locale": "en"}, headers=tokens.alice)
    assert changed.status_code == 200, changed.text
    assert changed.json["locale"] == "en"


@pytest.mark.parametrize("locale", ["xx", "klingon", "es_XX_bad!"])
def test_an_unknown_locale_is_refused(api, tokens, locale):
    response = api.simulate_post(
        "/api/recipients",
        json={"name": "Abuela", "email": "abuela@example.com", "locale": locale},
        headers=tokens.alice,
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["locale"]


def test_an_ad_hoc_email_may_say_its_locale(api, tokens):
    response = api.simulate_post(
        SEND, json=email(to="abuela@example.com", locale="es"), headers=tokens.service
    )

    assert response.status_code == 202, response.text
    (job,) = job_rows()
    assert job.content["locale"] == "es"
    bad = api.simulate_post(SEND, json=email(locale="zz-nope"), headers=tokens.service)
    assert bad.status_code == 400
