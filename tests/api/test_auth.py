"""Bearer-token authentication (contract: "Authentication and authorization")."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from falcon import testing

from tests.support.http_assertions import assert_json_error
from tests.support.waiting import wait_until
from tribe_api.app import create_app
from tribe_api.auth import TokenVerifier
from tribe_shared.models import NotificationJob, User

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


def _days_from_now(days: float) -> int:
    return int((datetime.now(UTC) + timedelta(days=days)).timestamp())


def service_role_key_claims(**changes) -> dict:
    """The claims of a Supabase project's ``service_role`` API key: no sub, no aud, ten years."""
    issued = datetime.now(UTC) - timedelta(days=400)
    base = {
        "iss": "supabase",
        "ref": "abcdefghijklmnopqrst",
        "role": "service_role",
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(days=3650)).timestamp()),
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not DROP}


def tampered(secret: str) -> str:
    """A valid user token whose payload was swapped for a service-role one, signature kept."""
    header, _, signature = jwt.encode(claims(), secret).split(".")
    return f"{header}.{_b64url(claims(role='service_role'))}.{signature}"


def _with_header(token: str, **header) -> str:
    """``token`` with its header replaced, payload and signature kept."""
    _, payload, signature = token.split(".")
    return f"{_b64url({'typ': 'JWT', **header})}.{payload}.{signature}"


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
    "exp a numeric string": lambda secret: bearer(
        jwt.encode(claims(exp=str(_in_an_hour())), secret)
    ),
    "iat a numeric string": lambda secret: bearer(
        jwt.encode(claims(iat=str(_in_an_hour() - 3600)), secret)
    ),
    "exp a number too large for a date": lambda secret: bearer(
        jwt.encode(service_role_key_claims(exp=10**400), secret)
    ),
    "exp two days after iat": lambda secret: bearer(
        jwt.encode(claims(exp=_days_from_now(2)), secret)
    ),
    "issued three days ago, valid one more hour": lambda secret: bearer(
        jwt.encode(claims(iat=_days_from_now(-3)), secret)
    ),
    "no iat and exp in two days": lambda secret: bearer(
        jwt.encode(claims(iat=DROP, exp=_days_from_now(2)), secret)
    ),
    "a service-role token with a sub, valid for a year": lambda secret: bearer(
        jwt.encode(claims(role="service_role", exp=_days_from_now(365)), secret)
    ),
    "the anon key (role anon, no sub)": lambda secret: bearer(
        jwt.encode(service_role_key_claims(role="anon"), secret)
    ),
    "an authenticated token without sub, shaped as the service key": lambda secret: bearer(
        jwt.encode(service_role_key_claims(role="authenticated"), secret)
    ),
    "the service role key for another audience": lambda secret: bearer(
        jwt.encode(service_role_key_claims(aud="anon"), secret)
    ),
    "the service role key with a sub not a uuid": lambda secret: bearer(
        jwt.encode(service_role_key_claims(sub="admin"), secret)
    ),
    "the service role key signed with another secret": lambda secret: bearer(
        jwt.encode(service_role_key_claims(), secret + "x")
    ),
    "the service role key unsigned (alg none)": lambda secret: bearer(
        unsigned_token(service_role_key_claims())
    ),
    "the service role key expired": lambda secret: bearer(
        jwt.encode(service_role_key_claims(exp=_expired()), secret)
    ),
    "aud an object": lambda secret: bearer(jwt.encode(claims(aud={"x": 1}), secret)),
    "role a list": lambda secret: bearer(jwt.encode(claims(role=["service_role"]), secret)),
    "ES256 header on an HS256 signature": lambda secret: bearer(
        _with_header(jwt.encode(claims(), secret), alg="ES256", kid="k1")
    ),
}

PUBLIC_ROUTES = ["/api/health", "/api/health/redis", "/api/openapi.json", "/api/docs"]


@pytest.mark.parametrize("role", ["authenticated", "service_role"])
def test_a_valid_hs256_token_is_accepted_with_either_known_role(api, settings, role):
    token = jwt.encode(claims(role=role), settings.jwt_secret, algorithm="HS256")  # as REJECTED

    response = api.simulate_get("/api/jobs", headers=bearer(token))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "token_claims",
    [
        claims(exp=_in_an_hour() + 0.5),
        claims(exp=_days_from_now(0.99)),
        claims(iat=DROP, exp=_days_from_now(0.99)),
        claims(aud=["authenticated", "other"]),
    ],
    ids=["exp a float", "a day's lifetime", "no iat, a day left", "aud a list naming us"],
)
def test_user_tokens_within_the_rules_are_accepted(api, settings, token_claims):
    token = jwt.encode(token_claims, settings.jwt_secret, algorithm="HS256")

    response = api.simulate_get("/api/jobs", headers=bearer(token))

    assert response.status_code == 200, response.text


def test_the_projects_service_role_key_is_accepted_and_acts_for_no_user(api, settings):
    # Given the project's service_role key: no sub, no aud, issued a year ago for ten years
    key = jwt.encode(service_role_key_claims(), settings.jwt_secret, algorithm="HS256")

    # When the main app sends an email and lists jobs with it
    sent = api.simulate_post("/api/notifications/send-email", json=EMAIL, headers=bearer(key))
    listed = api.simulate_get("/api/jobs", headers=bearer(key))

    # Then both succeed; the email belongs to no user, and no user row was made for the key
    assert sent.status_code == 202, sent.text
    assert listed.status_code == 200, listed.text
    assert [job["id"] for job in listed.json["jobs"]] == [sent.json["jobId"]]
    assert NotificationJob.get_by_id(sent.json["jobId"]).owner_id is None
    assert User.select().count() == 0


def test_the_maximum_lifetime_is_configurable(api, settings, stub_broker):
    # Given an API that accepts tokens living up to a week
    week = create_app(replace(settings, jwt_max_lifetime_seconds=7 * 86_400), broker=stub_broker)
    token = jwt.encode(claims(exp=_days_from_now(3)), settings.jwt_secret, algorithm="HS256")

    # Then a three-day token is accepted there, and refused with the default of a day
    assert (
        testing.TestClient(week).simulate_get("/api/jobs", headers=bearer(token)).status_code == 200
    )
    refused = assert_json_error(api.simulate_get("/api/jobs", headers=bearer(token)), 401)
    assert "lives too long" in refused["description"]


def test_configured_issuers_apply_to_user_tokens_and_the_service_role_key(settings, stub_broker):
    # Given issuers as SUPABASE_URL implies them: the project's auth URL and "supabase"
    project = "https://abcdefgh.supabase.co"
    app = create_app(
        replace(settings, jwt_issuers=(f"{project}/auth/v1", "supabase")), broker=stub_broker
    )
    api = testing.TestClient(app)

    def status(token_claims: dict) -> int:
        token = jwt.encode(token_claims, settings.jwt_secret, algorithm="HS256")
        return api.simulate_get("/api/jobs", headers=bearer(token)).status_code

    # Then the project's user tokens and its service_role key are accepted, others refused
    assert status(claims(iss=f"{project}/auth/v1")) == 200
    assert status(service_role_key_claims()) == 200
    assert status(claims(iss="https://other.supabase.co/auth/v1")) == 401
    assert status(claims()) == 401  # no iss at all


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

    # Then, once it has expired, the same token is refused (PyJWT judges ``exp`` by the real
    # clock: this test waits the second out)
    wait_until(
        lambda: api.simulate_get(f"/api/jobs/{uuid.uuid4()}", headers=headers).status_code == 401,
        timeout=5,
        interval=0.1,
        what="the remembered token to expire",
    )


class CountingVerifier:
    """The real verifier, counting the tokens it is asked to check."""

    def __init__(self, verifier: TokenVerifier):
        self._verifier = verifier
        self.checked = 0

    def verify(self, token: str):
        self.checked += 1
        return self._verifier.verify(token)


def test_a_remembered_token_is_checked_again_once_its_exp_has_passed_by_the_apis_clock(
    settings, stub_broker
):
    # Given an API whose clock the test moves, and a token valid for an hour that it accepted
    now = datetime.now(UTC)
    moved = timedelta(0)

    def clock() -> datetime:
        return now + moved

    verifier = CountingVerifier(TokenVerifier(settings.jwt_secret))
    api = testing.TestClient(
        create_app(settings, broker=stub_broker, clock=clock, token_verifier=verifier)
    )
    headers = bearer(jwt.encode(claims(), settings.jwt_secret, algorithm="HS256"))
    assert api.simulate_get(f"/api/jobs/{uuid.uuid4()}", headers=headers).status_code == 404

    # When it comes again within the hour, it is remembered, not checked again
    moved = timedelta(minutes=59)
    assert api.simulate_get(f"/api/jobs/{uuid.uuid4()}", headers=headers).status_code == 404
    assert verifier.checked == 1

    # Then, once the API's clock is past its exp, it is checked again
    moved = timedelta(hours=1, seconds=1)
    api.simulate_get(f"/api/jobs/{uuid.uuid4()}", headers=headers)
    assert verifier.checked == 2
