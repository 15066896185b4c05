"""Free-form JSON (``templateData``, ``content``) is bounded at the edge: too deep or too large is
a 400 naming the field before anything is written, and JSON too deep to parse is a 400 too,
never a 500 with a traceback."""

from __future__ import annotations

import json

import pytest

from tests.support.family import family
from tests.support.family_api import every_row
from tests.support.http_assertions import assert_json_error, error_fields
from tribe_api.schemas.fields import MAX_JSON_BYTES, MAX_JSON_DEPTH

SEND = "/api/notifications/send-email"
BULK = "/api/notifications/send-bulk-email"
NOTIFICATIONS = "/api/notifications"


def nested(depth: int) -> dict:
    """``{"a": {"a": ... {}}}``, ``depth`` objects deep."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def deep_text(depth: int) -> str:
    """JSON text of objects nested ``depth`` deep, written out (too deep to build as objects)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def post_json(api, path: str, text: str, headers):
    return api.simulate_post(
        path, body=text, headers={**headers, "Content-Type": "application/json"}
    )


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 400])
def test_template_data_nested_too_deep_is_refused_naming_it(api, tokens, depth):
    email = {"to": "nana@example.com", "type": "system", "templateData": nested(depth)}

    response = api.simulate_post(SEND, json=email, headers=tokens.service)

    body = assert_json_error(response, 400)
    assert error_fields(body) == {"templateData"}
    assert "levels deep" in body["errors"][0]["message"]
    assert every_row()["NotificationJob"] == []


def test_template_data_as_deep_as_allowed_is_accepted(api, tokens):
    email = {"to": "nana@example.com", "type": "system", "templateData": nested(MAX_JSON_DEPTH)}

    response = api.simulate_post(SEND, json=email, headers=tokens.service)

    assert response.status_code == 202, response.text


def test_template_data_too_large_is_refused_naming_it(api, tokens):
    email = {"to": "a@example.com", "type": "system", "templateData": {"t": "x" * MAX_JSON_BYTES}}

    response = api.simulate_post(SEND, json=email, headers=tokens.service)

    assert error_fields(assert_json_error(response, 400)) == {"templateData"}


def test_a_notifications_content_is_no_place_for_nested_json(api, tokens):
    fam = family(tokens.alice_id, email="nana@example.com")
    notification = {
        "recipient_id": str(fam.recipient.id),
        "group_id": str(fam.group.id),
        "content": {"title": "Hi", "extra": nested(400)},
    }

    response = api.simulate_post(NOTIFICATIONS, json=notification, headers=tokens.alice)

    assert error_fields(assert_json_error(response, 400)) == {"content.extra"}
    assert every_row()["NotificationJob"] == []


@pytest.mark.parametrize("path", [SEND, BULK, NOTIFICATIONS, "/api/updates", "/api/groups"])
def test_json_too_deep_to_parse_is_a_400_on_every_body_route(api, tokens, path, caplog):
    response = post_json(api, path, deep_text(10_000), tokens.service)

    body = assert_json_error(response, 400)
    assert body["code"] in ("bad_request", "validation_failed")
    assert "Traceback" not in response.text
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_bulk_request_with_one_deep_item_names_its_index(api, tokens):
    ok = {"to": "a@example.com", "type": "system"}
    deep = {"to": "b@example.com", "type": "system", "templateData": nested(100)}

    response = api.simulate_post(BULK, json={"emails": [ok, deep]}, headers=tokens.service)

    assert error_fields(assert_json_error(response, 400)) == {"emails[1].templateData"}
    assert json.dumps(every_row()["NotificationJob"]) == "[]"
