"""Bearer-token authentication (contract: "Authentication and authorization")."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.support.http_assertions import assert_json_error
from tests.support.waiting import wait_until
from tribe_shared.models import NotificationJob

#: Removes a claim from :func:`claims`.
DROP = object()
EMAIL = {"to": "nana@example.com", "type": "system", "templateData": {"name": "Nana"}}


def claims(**changes) -> dict:
    """Supabase-style claims of a valid user token, with ``changes`` applied."""
    now = datetime.now(UTC)
    base = {
        "sub": str(uuid.uuid4()),
        "role": "authenticated",
        "aud": "authenticated",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not DROP}


def _b64url(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned_token(payload: dict) -> str:
    """An ``alg: none`` token: header and payload, empty signature."""
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(payload)}."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _expired() -> int:
    return int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())


def _in_an_hour() -> int:
    return int((datetime.now(UTC) + timedelta(hours=1)).timestamp())


def tampered(secret: str) -> str:
    """A valid user token whose payload was swapped for a service-role one, signature kept."""
    header, _, signature = jwt.encode(claims(), secret).split(".")
    return f"{header}.{_b64url(claims(role='service_role'))}.{signature}"


#: Authorization headers (built from the right secret) that must each be refused with a 401.
REJECTED = {
    "no header": lambda secret: {},
    "empty header": lambda secret: {"Authorization": ""},
    "basic scheme": lambda secret: {"Authorization": "Basic YWxpY2U6cHc="},
    "valid token under another scheme": lambda secret: {
        "Authorization": "Token " + jwt.encode(claims(), secret)
    },
    "bearer without a token": lambda secret: {"Authorization": "Bearer "},
    "malformed token": lambda secret: bearer("not-a.jwt"),
    "garbage segments": lambda secret: bearer("a.b.c"),
    "expired": lambda secret: bearer(jwt.encode(claims(exp=_expired()), secret)),
    "signed with the wrong secret": lambda secret: bearer(jwt.encode(claims(), secret + "x")),
    "alg none": lambda secret: bearer(unsigned_token(claims())),
    "not yet valid (nbf in an hour)": lambda secret: bearer(
        jwt.encode(claims(nbf=_in_an_hour()), secret)
    ),
    "payload tampered with": lambda secret: bearer(tampered(secret)),
    "HS384 instead of HS256": lambda secret: bearer(
        jwt.encode(claims(), secret, algorithm="HS384")
    ),
    "wrong audience": lambda secret: bearer(jwt.encode(claims(aud="anon"), secret)),
    "no audience": lambda secret: bearer(jwt.encode(claims(aud=DROP), secret)),
    "no sub": lambda secret: bearer(jwt.encode(claims(sub=DROP), secret)),
    "sub not a uuid": lambda secret: bearer(jwt.encode(claims(sub="alice"), secret)),
    "no exp": lambda secret: bearer(jwt.encode(claims(exp=DROP), secret)),
    "unknown role": lambda secret: bearer(jwt.encode(claims(role="admin"), secret)),
}

PUBLIC_ROUTES = ["/api/health", "/api/health/redis", "/api/openapi.json", "/api/docs"]


@pytest.mark.parametrize("role", ["authenticated", "service_role"])
def test_a_valid_hs256_token_is_accepted_with_either_known_role(api, settings, role):
    token = jwt.encode(claims(role=role), settings.jwt_secret, algorithm="HS256")  # as REJECTED

    response = api.simulate_post("/api/notifications/send-email", json=EMAIL, headers=bearer(token))

    assert response.status_code == 202, response.text


@pytest.mark.parametrize("make_headers", REJECTED.values(), ids=REJECTED.keys())
def test_a_request_without_a_valid_token_is_401_json_with_a_bearer_challenge(
    api, settings, make_headers
):
    headers = make_headers(settings.jwt_secret)

    response = api.simulate_post("/api/notifications/send-email", json=EMAIL, headers=headers)

    assert_json_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert NotificationJob.select().count() == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/notifications/send-email"),
        ("POST", "/api/notifications/send-bulk-email"),
        ("GET", f"/api/jobs/{uuid.uuid4()}"),
    ],
)
def test_every_protected_route_refuses_a_forged_token(api, settings, method, path):
    headers = REJECTED["alg none"](settings.jwt_secret)

    response = api.simulate_request(method, path, json={"emails": [EMAIL]}, headers=headers)

    assert_json_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
def test_public_routes_need_no_token(api, path):
    response = api.simulate_get(path)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
def test_public_routes_ignore_an_invalid_token(api, path):
    response = api.simulate_get(path, headers=bearer("not-a.jwt"))

    assert response.status_code == 200, response.text


def test_a_token_accepted_before_is_refused_once_it_expires(api, settings):
    # Given a token that is valid for one more second, and was accepted (and remembered)
    token = jwt.encode(
        {
            "sub": str(uuid.uuid4()),
            "aud": "authenticated",
            "role": "authenticated",
            "exp": datetime.now(UTC) + timedelta(seconds=1),
        },
        settings.jwt_secret,
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert api.simulate_get(f"/api/jobs/{uuid.uuid4()}", headers=headers).status_code == 404

    # Then, once it has expired, the same token is refused
    wait_until(
        lambda: api.simulate_get(f"/api/jobs/{uuid.uuid4()}", headers=headers).status_code == 401,
        timeout=5,
        interval=0.1,
        what="the remembered token to expire",
    )
