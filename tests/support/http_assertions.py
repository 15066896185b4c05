"""Assertions about API responses that several test modules share."""

from __future__ import annotations

import falcon


def assert_json_error(response, status: int) -> dict:
    """The response is a JSON error of ``status`` with a ``title`` and a ``description``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(falcon.MEDIA_JSON)
    body = response.json
    assert isinstance(body.get("title"), str) and body["title"]
    assert isinstance(body.get("description"), str) and body["description"]
    return body


def error_fields(body: dict) -> set[str]:
    """The fields a validation error names."""
    errors = body.get("errors") or []
    for error in errors:
        assert isinstance(error.get("message"), str) and error["message"]
    return {error["field"] for error in errors}
