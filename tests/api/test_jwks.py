"""User tokens signed by the project's asymmetric keys (ES256, RS256), verified against its JWKS
URL: a local JWKS server with real keys, key rotation, an endpoint that hangs or fails, and the
attacks an allow-list of algorithms must stop (contract: "Authentication and authorization")."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from falcon import testing

from tests.api.test_auth import DROP, bearer, unsigned_token
from tests.support.clocks import ManualClock
from tests.support.fakes.jwks import FakeJwks, SigningKey
from tests.support.http_assertions import assert_json_error
from tribe_api.app import create_app
from tribe_api.auth import InvalidToken, TokenVerifier
from tribe_api.jwks import JwksKeys
from tribe_shared.settings import Settings

SECRET = "tribe-jobs-jwks-test-secret-" + "0" * 16
JOBS = "/api/jobs"
#: How long these tests let one JWKS connect or read take.
TIMEOUT = 0.5


def supabase_claims(project_url: str = "https://abcdefgh.supabase.co", **changes) -> dict:
    """The claims of a Supabase user access token, with ``changes`` applied."""
    now = datetime.now(UTC)
    base = {
        "iss": f"{project_url}/auth/v1",
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "iat": int(now.timestamp()),
        "email": "parent@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": int(now.timestamp())}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not DROP}


@pytest.fixture(scope="module")
def es256() -> SigningKey:
    return SigningKey("ES256")


@pytest.fixture(scope="module")
def rs256() -> SigningKey:
    return SigningKey("RS256")


@pytest.fixture
def jwks(es256, rs256) -> Iterator[FakeJwks]:
    fake = FakeJwks(es256, rs256).start()
    yield fake
    fake.stop()


def verifier(jwks: FakeJwks, **options) -> TokenVerifier:
    """A verifier of HS256 tokens and of the fake's keys; ``options`` go to :class:`JwksKeys`."""
    return TokenVerifier(SECRET, jwks=JwksKeys(jwks.url, **{"timeout": TIMEOUT, **options}))


def client(sqlite_url: str, token_verifier: TokenVerifier | None = None, **settings):
    app_settings = Settings(app_env="test", database_url=sqlite_url, jwt_secret=SECRET, **settings)
    return testing.TestClient(create_app(app_settings, token_verifier=token_verifier))


def accepted(verify: TokenVerifier, token: str) -> bool:
    try:
        verify.verify(token)
    except InvalidToken:
        return False
    return True


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_user_token_signed_by_a_published_key_is_accepted(
    sqlite_url, jwks, es256, rs256, algorithm
):
    # Given the API reads the project's keys from its JWKS URL
    api = client(sqlite_url, jwt_jwks_url=jwks.url)
    key = es256 if algorithm == "ES256" else rs256

    # When a user calls with a token signed by one of them
    response = api.simulate_get(JOBS, headers=bearer(key.sign(supabase_claims())))

    # Then they are let in
    assert response.status_code == 200, response.text


def test_a_supabase_project_url_is_enough_to_accept_its_user_tokens(sqlite_url, jwks, es256):
    # Given only SUPABASE_URL (the fake serves the JWKS where Supabase does, below it)
    settings = Settings.from_env(
        {
            "APP_ENV": "test",
            "DATABASE_URL": sqlite_url,
            "JWT_SECRET": SECRET,
            "SUPABASE_URL": jwks.base_url,
        }
    )
    api = testing.TestClient(create_app(settings))

    # When a user calls with a token the project issued, and someone with another issuer's
    ours = es256.sign(supabase_claims(project_url=jwks.base_url))
    theirs = es256.sign(supabase_claims(project_url="https://other.supabase.co"))

    # Then the first is let in and the second refused for its issuer
    assert api.simulate_get(JOBS, headers=bearer(ours)).status_code == 200
    assert (
        "issuer"
        in assert_json_error(api.simulate_get(JOBS, headers=bearer(theirs)), 401)["description"]
    )


def test_the_key_set_is_fetched_once_for_many_tokens(jwks, es256, rs256):
    verify = verifier(jwks)

    for _ in range(5):
        assert accepted(verify, es256.sign(supabase_claims()))
        assert accepted(verify, rs256.sign(supabase_claims()))

    assert jwks.fetches == 1


def test_hs256_tokens_signed_with_the_secret_still_work_beside_the_keys(sqlite_url, jwks):
    api = client(sqlite_url, jwt_jwks_url=jwks.url)
    token = jwt.encode(supabase_claims(), SECRET, algorithm="HS256")

    assert api.simulate_get(JOBS, headers=bearer(token)).status_code == 200
    assert jwks.fetches == 0


# --- rotation --------------------------------------------------------------------------------


def test_a_token_of_a_key_rotated_in_after_the_fetch_is_accepted_after_one_more_fetch(jwks, es256):
    # Given the keys were fetched for a token of the current key
    clock = ManualClock()
    verify = verifier(jwks, refetch_cooldown=10, clock=clock)
    assert accepted(verify, es256.sign(supabase_claims()))

    # When the project rotates to a new key and a token signed by it arrives
    new_key = SigningKey("ES256")
    jwks.publish(es256, new_key)
    token = new_key.sign(supabase_claims())

    # Then its unknown kid fetches the set again, once the cooldown since the last fetch is
    # over, and it is accepted
    assert not accepted(verify, token)
    assert jwks.fetches == 1
    clock.advance(10)
    assert accepted(verify, token)
    assert jwks.fetches == 2


def test_a_key_withdrawn_from_the_set_is_refused_once_the_set_is_fetched_again(jwks, es256):
    # Given a key set fetched for a token of a key
    clock = ManualClock()
    verify = verifier(jwks, max_age=300, clock=clock)
    assert accepted(verify, es256.sign(supabase_claims()))

    # When the project withdraws the key
    jwks.publish(SigningKey("ES256"))

    # Then its tokens are accepted while the set is fresh, and refused once it is fetched again
    assert accepted(verify, es256.sign(supabase_claims()))
    clock.advance(300)
    assert not accepted(verify, es256.sign(supabase_claims()))
    assert jwks.fetches == 2


def test_tokens_with_made_up_kids_cost_one_fetch_per_cooldown(jwks, es256):
    # Given the keys were just fetched
    verify = verifier(jwks, refetch_cooldown=60)
    assert accepted(verify, es256.sign(supabase_claims()))

    # When twenty tokens name keys that do not exist
    for _ in range(20):
        with pytest.raises(InvalidToken, match="unknown key"):
            verify.verify(es256.sign(supabase_claims(), kid=f"made-up-{uuid.uuid4()}"))

    # Then at most one more fetch was made for all of them
    assert jwks.fetches <= 2


# --- the endpoint hangs or fails -------------------------------------------------------------


def test_a_hanging_jwks_endpoint_gives_a_prompt_401_saying_the_token_cannot_be_verified_now(
    sqlite_url, jwks, es256
):
    # Given the JWKS endpoint accepts connections and never answers
    jwks.hang = True
    api = client(sqlite_url, jwt_jwks_url=jwks.url, jwt_jwks_timeout_seconds=TIMEOUT)
    token = es256.sign(supabase_claims())

    # When a user calls with a token of a key we have not fetched
    started = time.monotonic()
    first = api.simulate_get(JOBS, headers=bearer(token))
    elapsed = time.monotonic() - started
    second = api.simulate_get(JOBS, headers=bearer(token))

    # Then it is a 401 within about the timeout, saying why, and the next request does not
    # wait on the endpoint again (one attempt per cooldown). The bound is of a real socket's
    # timeout, not of speed: 2 s over the 0.5 s timeout is room for a loaded machine, and still
    # far below a client left waiting on the hang (the endpoint never answers)
    body = assert_json_error(first, 401)
    assert "cannot be verified now" in body["description"]
    assert "timed out" in body["description"]
    assert elapsed < TIMEOUT + 2
    assert_json_error(second, 401)
    assert jwks.fetches == 1


def test_concurrent_requests_wait_for_one_fetch_of_a_hanging_endpoint_not_one_each(jwks, es256):
    # Given a hanging endpoint and four requests at once, each with a token of an unfetched key
    jwks.hang = True
    verify = verifier(jwks)
    results: list[bool] = []

    def call():
        results.append(accepted(verify, es256.sign(supabase_claims())))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    # Then all are refused, and the endpoint was asked once: the others waited on that one
    # fetch (one timeout), not on fetches of their own
    assert results == [False] * 4
    assert jwks.fetches == 1


def test_keys_already_fetched_keep_working_while_the_endpoint_hangs(jwks, es256):
    # Given the keys were fetched, and the set is now old enough to be fetched again
    clock = ManualClock()
    verify = verifier(jwks, max_age=300, clock=clock)
    assert accepted(verify, es256.sign(supabase_claims()))
    clock.advance(300)

    # When the endpoint hangs
    jwks.hang = True

    # Then tokens of the known key are still accepted (after one timed-out refresh)
    assert accepted(verify, es256.sign(supabase_claims()))
    assert accepted(verify, es256.sign(supabase_claims()))
    assert jwks.fetches == 2


@pytest.mark.parametrize("status", [500, 404])
def test_a_failing_jwks_endpoint_is_a_401_saying_the_keys_could_not_be_fetched(
    sqlite_url, jwks, es256, status
):
    jwks.fail_status = status
    api = client(sqlite_url, jwt_jwks_url=jwks.url)

    response = api.simulate_get(JOBS, headers=bearer(es256.sign(supabase_claims())))

    assert "could not be fetched" in assert_json_error(response, 401)["description"]


# --- refused ---------------------------------------------------------------------------------


def _hs256_signed_with(secret: bytes, claims: dict, **header) -> str:
    """An HS256 token with ``secret`` as the HMAC key, built by hand: PyJWT refuses to use a
    public key as an HMAC secret, and this is the token an attacker would build."""
    signing_input = ".".join(
        jwt.utils.base64url_encode(jwt.api_jws.json.dumps(part).encode()).decode()
        for part in ({"alg": "HS256", "typ": "JWT", **header}, claims)
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{jwt.utils.base64url_encode(signature).decode()}"


def test_an_hs256_token_signed_with_the_rsa_public_key_as_secret_is_refused(
    sqlite_url, jwks, rs256
):
    # Given an attacker who read the project's public RSA key from the JWKS
    api = client(sqlite_url, jwt_jwks_url=jwks.url)
    forged = [
        _hs256_signed_with(rs256.public_pem, supabase_claims(), kid=rs256.kid),
        _hs256_signed_with(rs256.public_pem, supabase_claims()),
        _hs256_signed_with(jwt.api_jws.json.dumps(rs256.jwk).encode(), supabase_claims()),
    ]

    # When they sign HS256 tokens with it as the shared secret
    for token in forged:
        response = api.simulate_get(JOBS, headers=bearer(token))

        # Then each is refused: HS256 is only ever checked against JWT_SECRET
        assert "signature" in assert_json_error(response, 401)["description"].lower()


def test_a_token_whose_header_names_another_algorithm_than_its_key_is_refused(jwks, es256, rs256):
    verify = verifier(jwks)
    # An RS256 signature presented under the EC key's kid, and the other way round
    tokens = [
        rs256.sign(supabase_claims(), kid=es256.kid),
        es256.sign(supabase_claims(), kid=rs256.kid),
    ]

    for token in tokens:
        with pytest.raises(InvalidToken):
            verify.verify(token)


def test_alg_none_naming_a_published_key_is_refused(sqlite_url, jwks, es256):
    api = client(sqlite_url, jwt_jwks_url=jwks.url)
    header_and_payload = unsigned_token(supabase_claims())

    response = api.simulate_get(JOBS, headers=bearer(header_and_payload))

    assert "not accepted" in assert_json_error(response, 401)["description"]
    assert jwks.fetches == 0


@pytest.mark.parametrize(
    ("claims_changes", "kid", "message"),
    [
        ({}, "", "no kid"),
        ({"exp": int(time.time()) - 60}, None, "expired"),
        ({"aud": "anon"}, None, "audience"),
        ({"sub": DROP}, None, "no sub"),
        ({"exp": str(int(time.time()) + 600)}, None, "exp claim must be"),
        ({"iat": int(time.time()) - 3 * 86_400}, None, "lives too long"),
    ],
    ids=["no kid", "expired", "wrong audience", "no sub", "exp a string", "too long-lived"],
)
def test_asymmetric_tokens_follow_the_same_rules_as_hs256_ones(
    jwks, es256, claims_changes, kid, message
):
    verify = verifier(jwks)
    token = es256.sign(supabase_claims(**claims_changes), kid=kid)

    with pytest.raises(InvalidToken, match=message):
        verify.verify(token)


def test_asymmetric_tokens_are_refused_when_no_jwks_url_is_configured(sqlite_url, es256):
    api = client(sqlite_url)

    response = api.simulate_get(JOBS, headers=bearer(es256.sign(supabase_claims())))

    assert "no JWKS URL is configured" in assert_json_error(response, 401)["description"]


@pytest.mark.parametrize(
    ("iss", "accepted_"),
    [
        ("https://abcdefgh.supabase.co/auth/v1", True),
        ("https://attacker.supabase.co/auth/v1", False),
        (DROP, False),
    ],
    ids=["the project's", "another project's", "none"],
)
def test_iss_is_checked_when_issuers_are_configured(jwks, es256, iss, accepted_):
    verify = TokenVerifier(
        SECRET,
        jwks=JwksKeys(jwks.url, timeout=TIMEOUT),
        issuers=["https://abcdefgh.supabase.co/auth/v1", "supabase"],
    )

    assert accepted(verify, es256.sign(supabase_claims(iss=iss))) is accepted_
