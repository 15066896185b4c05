"""A body says what it is: one without ``Content-Type`` is refused, not parsed as JSON."""

from __future__ import annotations

import json

from tests.support.family_api import every_row
from tests.support.http_assertions import assert_json_error

SEND = "/api/notifications/send-email"
EMAIL = {"to": "nana@example.com", "type": "system", "templateData": {}}


def test_a_json_body_without_a_content_type_is_a_415_and_writes_nothing(api, tokens):
    # Given valid JSON sent with no Content-Type at all

    response = api.simulate_post(SEND, body=json.dumps(EMAIL), headers=tokens.service)

    body = assert_json_error(response, 415)
    assert body["code"] == "unsupported_media_type"
    assert every_row()["NotificationJob"] == []


def test_a_request_without_a_body_needs_no_content_type(api, tokens):
    response = api.simulate_get("/api/jobs", headers=tokens.alice)

    assert response.status_code == 200, response.text
