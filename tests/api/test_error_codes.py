"""Errors a program can act on (issue #15, item 10): a stable ``code`` on every error body, a
``kind`` on every field error, no internals in messages; a malformed id is the JSON 404 of any
missing object; HEAD on GET routes; CORS for the configured origins."""

from __future__ import annotations

import re
import uuid

import pytest
from falcon import testing

from tests.conftest import with_settings
from tests.support.email_api import SEND, email
from tests.support.family_api import GROUPS, JOBS, RECIPIENTS
from tests.support.http_assertions import assert_json_error
from tribe_api.app import create_app
from tribe_api.errors import Code, Kind

#: What no message may show: a regular expression, a library's prefix or type name, a model.
INTERNALS = re.compile(
    r"\^|\$\)|\\d|\[a-z|pydantic|peewee|spectree|Value error|"
    r"type=|NotificationJob|DigestSchedule|Traceback|psycopg|sqlite"
)


def codes_and_messages(response) -> tuple[str, list[str]]:
    body = response.json
    messages = [body["title"], body["description"]]
    messages += [error["message"] for error in body.get("errors", [])]
    return body["code"], messages


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        (("GET", JOBS, {}), 401, Code.UNAUTHORIZED),
        (("GET", f"{JOBS}/{uuid.uuid4()}", {"auth": True}), 404, Code.NOT_FOUND),
        (("GET", f"{JOBS}/not-a-uuid", {"auth": True}), 404, Code.NOT_FOUND),
        (("PUT", JOBS, {"auth": True}), 405, Code.METHOD_NOT_ALLOWED),
        (("POST", SEND, {"auth": True, "body": b"{not json"}), 400, Code.BAD_REQUEST),
        (("POST", SEND, {"auth": True, "json": {"to": 5}}), 400, Code.VALIDATION_FAILED),
        (
            ("POST", SEND, {"auth": True, "raw": b"x", "type": "text/plain"}),
            415,
            Code.UNSUPPORTED_MEDIA_TYPE,
        ),
        (("GET", "/api/suppressions", {"auth": True}), 403, Code.SERVICE_ROLE_REQUIRED),
    ],
    ids=[
        "no token",
        "missing",
        "malformed id",
        "method",
        "not json",
        "fields",
        "media type",
        "operator route",
    ],
)
def test_each_error_carries_its_code_and_no_internals(api, tokens, request_args, status, code):
    method, path, options = request_args
    headers = dict(tokens.alice) if options.get("auth") else {}
    kwargs = {}
    if "json" in options:
        kwargs["json"] = options["json"]
    if "body" in options or "raw" in options:
        headers["Content-Type"] = options.get("type", "application/json")
        kwargs["body"] = options.get("body", options.get("raw"))

    response = api.simulate_request(method, path, headers=headers, **kwargs)

    assert_json_error(response, status)
    found, messages = codes_and_messages(response)
    assert found == code
    for message in messages:
        assert not INTERNALS.search(message), message


def test_every_field_error_has_a_kind_from_the_documented_list(api, tokens):
    body = {
        "to": "not an address",
        "type": "no-such-type",
        "priority": 5,
        "templateData": {"name": "x" * 10},
        "subject": "",
        "colour": "blue",
    }

    response = api.simulate_post(SEND, json=body, headers=tokens.service)

    assert_json_error(response, 400)
    kinds = {error["field"]: error["kind"] for error in response.json["errors"]}
    assert kinds["to"] == Kind.FORMAT
    assert kinds["type"] == Kind.CHOICE
    assert kinds["priority"] in {Kind.TYPE, Kind.CHOICE}
    assert kinds["colour"] == Kind.UNKNOWN
    assert set(kinds.values()) <= {kind.value for kind in Kind}
    for error in response.json["errors"]:
        assert not INTERNALS.search(error["message"]), error


def test_a_missing_field_is_named_as_missing(api, tokens):
    response = api.simulate_post(SEND, json={"type": "welcome"}, headers=tokens.service)

    assert {error["field"]: error["kind"] for error in response.json["errors"]} == {"to": "missing"}


@pytest.mark.parametrize("collection", [JOBS, GROUPS, RECIPIENTS, "/api/digest-schedules"])
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "%00", "' OR 1=1 --"])
def test_a_malformed_id_is_the_same_404_as_a_missing_one(api, tokens, collection, bad_id):
    missing = api.simulate_get(f"{collection}/{uuid.uuid4()}", headers=tokens.alice)
    malformed = api.simulate_get(f"{collection}/{bad_id}", headers=tokens.alice)

    assert_json_error(missing, 404)
    assert_json_error(malformed, 404)
    assert malformed.json["code"] == missing.json["code"] == Code.NOT_FOUND
    assert malformed.json["title"] == missing.json["title"]


@pytest.mark.parametrize("path", [JOBS, GROUPS, RECIPIENTS, "/api/digest-schedules"])
def test_head_answers_a_get_route_with_its_headers_and_no_body(api, tokens, path):
    get = api.simulate_get(path, headers=tokens.alice)
    head = api.simulate_head(path, headers=tokens.alice)

    assert get.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_head_without_a_token_is_refused_like_get(api):
    assert api.simulate_head(JOBS).status_code == api.simulate_get(JOBS).status_code == 401


# --- CORS ------------------------------------------------------------------------------------

APP_ORIGIN = "https://app.tribe.example"


@pytest.fixture
def cors_api(settings, stub_broker, worker_app) -> testing.TestClient:
    allowed = with_settings(settings, cors_allow_origins=(APP_ORIGIN,))
    return testing.TestClient(create_app(allowed, broker=stub_broker))


def test_a_configured_origin_may_call_the_api_from_a_browser(cors_api, tokens):
    headers = {**tokens.service, "Origin": APP_ORIGIN}

    response = cors_api.simulate_post(SEND, json=email(), headers=headers)

    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "location" in response.headers["access-control-expose-headers"].lower()


def test_a_preflight_of_a_configured_origin_is_answered_without_a_token(cors_api):
    headers = {
        "Origin": APP_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }

    response = cors_api.simulate_options(SEND, headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed


def test_another_origin_gets_no_cors_headers(cors_api, tokens):
    headers = {**tokens.alice, "Origin": "https://evil.example"}

    response = cors_api.simulate_get(JOBS, headers=headers)

    assert "access-control-allow-origin" not in response.headers


def test_without_configured_origins_no_origin_gets_cors_headers(api, tokens):
    headers = {**tokens.alice, "Origin": APP_ORIGIN}

    response = api.simulate_get(JOBS, headers=headers)

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
