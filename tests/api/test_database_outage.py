"""The API while its database is unreachable: a route that needs it answers a JSON 503 with
``Retry-After``, and the docs still load (what health answers then: test_health.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.http_assertions import assert_json_error


def test_other_routes_answer_a_json_503_while_the_database_is_unreachable(
    api, tokens, database_down
):
    response = api.simulate_get(f"/api/jobs/{uuid.uuid4()}", headers=tokens.alice)

    assert_json_error(response, 503)
    assert response.headers["retry-after"]


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs"])
def test_the_api_docs_are_served_while_the_database_is_unreachable(api, database_down, path):
    response = api.simulate_get(path)

    assert response.status_code == 200, response.text
