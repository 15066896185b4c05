"""/api/openapi.json is a valid OpenAPI 3 document of every route (the docs page that shows it:
test_docs.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from falcon import testing
from jsonschema_rs import Draft202012Validator

from tribe_api.app import create_app
from tribe_shared import db as shared_db
from tribe_shared.settings import Settings

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
#: Every route of the API and the methods it serves.
ROUTES = {
    "/api/health": {"get"},
    "/api/health/redis": {"get"},
    "/api/health/live": {"get"},
    "/api/health/ready": {"get"},
    "/api/notifications": {"post"},
    "/api/notifications/send-email": {"post"},
    "/api/notifications/send-bulk-email": {"post"},
    "/api/jobs": {"get"},
    "/api/jobs/{job_id}": {"get", "delete"},
    "/api/jobs/{job_id}/retry": {"post"},
    "/api/groups": {"get", "post"},
    "/api/groups/{group_id}": {"get", "patch"},
    "/api/recipients": {"get", "post"},
    "/api/recipients/{recipient_id}": {"get", "patch", "delete"},
    "/api/updates": {"post"},
    "/api/digest-schedules": {"get", "post"},
    "/api/digest-schedules/{schedule_id}": {"get", "patch", "delete"},
    "/metrics": {"get"},
    "/api/webhooks/sendgrid": {"post"},
    "/api/suppressions": {"get"},
    "/api/suppressions/{email}": {"delete"},
    "/api/unsubscribe/{token}": {"get", "post"},
    "/api/unsubscribe/{token}/undo": {"post"},
    "/api/templates/{email_type}/preview": {"post"},
    "/api/digest-schedules/{schedule_id}/preview": {"get"},
}
#: No bearer token: health and metrics; the webhook (SendGrid's signature) and the unsubscribe
#: links (their signed token).
PUBLIC_ROUTES = {
    "/api/health",
    "/api/health/redis",
    "/api/health/live",
    "/api/health/ready",
    "/metrics",
    "/api/webhooks/sendgrid",
    "/api/webhooks/twilio",
    "/api/unsubscribe/{token}",
    "/api/unsubscribe/{token}/undo",
}


@pytest.fixture
def document(sqlite_url) -> dict:
    api = testing.TestClient(create_app(Settings(app_env="test", database_url=sqlite_url)))
    response = api.simulate_get("/api/openapi.json")
    assert response.status_code == 200, response.text
    return response.json


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def references(node) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def resolve(document: dict, ref: str):
    assert ref.startswith("#/"), f"{ref} does not point into the document"
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def effective_security(document: dict, operation: dict) -> list[dict]:
    return operation.get("security", document.get("security", []))


def test_the_document_is_openapi_3_with_every_reference_resolving(document):
    assert re.fullmatch(r"3\.\d+\.\d+", document["openapi"])
    assert document["info"]["title"]
    assert document["info"]["version"]
    operation_ids = []
    for path, method, operation in operations(document):
        assert path.startswith("/")
        assert operation["responses"], f"{method} {path} documents no response"
        for code, response in operation["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d|default", code), f"{method} {path}: {code}"
            assert "description" in response
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), f"{method} {path} path parameters"
        operation_ids.append(operation.get("operationId"))
    assert len(set(operation_ids)) == len(operation_ids)
    for ref in references(document):
        resolve(document, ref)
    schemes = document["components"]["securitySchemes"]
    for _, _, operation in operations(document):
        for requirement in effective_security(document, operation):
            assert set(requirement) <= set(schemes)


@pytest.mark.parametrize(("path", "methods"), ROUTES.items(), ids=ROUTES.keys())
def test_every_route_is_documented_with_its_methods(document, path, methods):
    # (a route that answers GET answers HEAD too)
    methods = methods | ({"head"} if "get" in methods else set())
    assert path in document["paths"]
    assert set(document["paths"][path]) & HTTP_METHODS == methods


def test_request_bodies_are_documented_as_json(document):
    for path in ("/api/notifications/send-email", "/api/notifications/send-bulk-email"):
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        assert set(body["content"]) == {"application/json"}


def test_protected_routes_need_a_bearer_token_and_health_does_not(document):
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, method, operation in operations(document):
        names = {name for r in effective_security(document, operation) for name in r}
        expected = set() if path in PUBLIC_ROUTES else {"bearerAuth"}
        assert names == expected, f"{method} {path}"


WRITE_METHODS = {"post", "put", "patch", "delete"}


def test_every_operation_documents_the_errors_the_middleware_and_body_parsing_give(document):
    # What a request can get before its resource runs is in the document, on every route
    for path, method, operation in operations(document):
        codes = set(operation["responses"])
        assert "413" in codes, f"{method} {path}: a body over 1 MiB"
        if path in PUBLIC_ROUTES:
            continue
        assert {"401", "503"} <= codes, f"{method} {path}: no token, no database"
        if "requestBody" in operation:
            assert "415" in codes, f"{method} {path}: a body that is not JSON, or none"
        if method in WRITE_METHODS:
            assert "429" in codes, f"{method} {path}: the per-user write limit"


def test_digest_schedule_bodies_say_what_the_api_accepts(document):
    # What the validation refuses is in the document, so a client (or a fuzzer) can know it
    for path, method in (
        ("/api/digest-schedules", "post"),
        ("/api/digest-schedules/{schedule_id}", "patch"),
    ):
        operation = document["paths"][path][method]
        assert "415" in operation["responses"], f"{method} {path}: a body that is not JSON"
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        properties = resolve(document, schema["$ref"])["properties"]
        zones = _first_with(properties["timezone"], "enum")
        assert "America/New_York" in zones and "" not in zones
        assert _first_with(properties["include_content_types"], "uniqueItems") is True
        assert _first_with(properties["delivery_time"], "pattern")


def body_validator(document: dict, path: str, method: str):
    """A JSON Schema validator of ``method path``'s documented request body."""
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**ref, "components": document["components"]})


GROUP = "00000000-0000-4000-8000-0000000000a1"
RECIPIENT = "00000000-0000-4000-8000-0000000000b1"
SCHEDULE = {
    "recipient_id": RECIPIENT,
    "group_id": GROUP,
    "delivery_time": "09:00",
    "timezone": "Europe/London",
}
NOTIFICATION = {"recipient_id": RECIPIENT, "group_id": GROUP}


@pytest.mark.parametrize(
    ("path", "method", "body", "valid"),
    [
        # a new recipient needs an email address or a phone number
        ("/api/recipients", "post", {"name": "Nana"}, False),
        ("/api/recipients", "post", {"name": "Nana", "email": None, "phone": None}, False),
        ("/api/recipients", "post", {"name": "Nana", "phone": "+447700900123"}, True),
        ("/api/recipients", "post", {"name": "Nana", "email": "a@family.test"}, False),
        ("/api/recipients", "post", {"name": "Nana\n", "email": "a@example.com"}, False),
        # delivery_day: none for daily, 1-7 weekly, 1-31 monthly
        ("/api/digest-schedules", "post", {**SCHEDULE, "frequency": "daily"}, True),
        (
            "/api/digest-schedules",
            "post",
            {**SCHEDULE, "frequency": "daily", "delivery_day": 1},
            False,
        ),
        ("/api/digest-schedules", "post", {**SCHEDULE, "frequency": "weekly"}, False),
        (
            "/api/digest-schedules",
            "post",
            {**SCHEDULE, "frequency": "weekly", "delivery_day": 8},
            False,
        ),
        (
            "/api/digest-schedules",
            "post",
            {**SCHEDULE, "frequency": "monthly", "delivery_day": 31},
            True,
        ),
        # scheduled_for or delay_minutes, not both; content holds known fields, no NUL
        ("/api/notifications", "post", {**NOTIFICATION, "delay_minutes": 5}, True),
        (
            "/api/notifications",
            "post",
            {**NOTIFICATION, "delay_minutes": 5, "scheduled_for": "2030-01-01T00:00:00Z"},
            False,
        ),
        ("/api/notifications", "post", {**NOTIFICATION, "content": {"body": "a\0"}}, False),
        ("/api/notifications", "post", {**NOTIFICATION, "content": {"a": 1}}, False),
        ("/api/notifications", "post", {**NOTIFICATION, "content": {"subject": 5}}, False),
        ("/api/notifications", "post", {**NOTIFICATION, "content": {"title": None}}, True),
    ],
)
def test_request_bodies_state_the_rules_across_fields(document, path, method, body, valid):
    # What the API refuses across fields, the document refuses too (fuzzers trust it)
    assert body_validator(document, path, method).is_valid(body) is valid


def _first_with(schema: dict, key: str):
    """``key`` of a property schema, looking through ``anyOf`` (nullable PATCH fields)."""
    if key in schema:
        return schema[key]
    return next(option[key] for option in schema.get("anyOf", []) if key in option)


#: Pages for people, whose refusals (a forged or expired link) are pages too, not JSON.
HTML_PAGES = {"/api/unsubscribe/{token}", "/api/unsubscribe/{token}/undo"}


def test_every_documented_client_error_has_a_title_and_a_description(document):
    for path, method, operation in operations(document):
        for code, response in operation["responses"].items():
            if not code.startswith("4") or path in HTML_PAGES:
                continue
            schema = response["content"]["application/json"]["schema"]
            if "$ref" in schema:
                schema = resolve(document, schema["$ref"])
            assert {"title", "description"} <= set(schema["required"]), f"{method} {path} {code}"


def test_the_document_is_served_before_any_database_is_bound():
    # Given an app whose database handle was never bound (a tool that only wants the document)
    bound = shared_db.database.obj
    shared_db.database.initialize(None)
    try:
        api = testing.TestClient(create_app(Settings(app_env="test")))

        # When it is asked for its document
        response = api.simulate_get("/api/openapi.json")
    finally:
        shared_db.database.initialize(bound)

    # Then it serves it
    assert response.status_code == 200, response.text
    assert response.json["paths"]
