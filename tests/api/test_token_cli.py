"""``tribe-token``, the development CLI that mints bearer tokens: a service-role key shaped as
Supabase's that the API accepts, no user token longer than the API accepts, and the project's
issuer on user tokens."""

from __future__ import annotations

import jwt
import pytest

from tribe_api.tokens import main as tribe_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tribe_token_mints_a_service_role_key_shaped_as_supabases(api, settings, capsys):
    # When the development CLI mints a service-role key with the API's secret
    tribe_token(["--service-role-key"], {"JWT_SECRET": settings.jwt_secret})
    key = capsys.readouterr().out.strip()

    # Then the key has the shape of Supabase's, and the API accepts it
    minted = jwt.decode(key, settings.jwt_secret, algorithms=["HS256"])
    assert set(minted) == {"iss", "ref", "role", "iat", "exp"}
    assert (minted["iss"], minted["role"]) == ("supabase", "service_role")
    assert minted["exp"] - minted["iat"] >= 9 * 365 * 86_400
    assert api.simulate_get("/api/jobs", headers=bearer(key)).status_code == 200


def test_tribe_token_refuses_a_user_token_longer_than_the_api_accepts(capsys):
    with pytest.raises(SystemExit):
        tribe_token(["--hours", "48"], {})

    assert "JWT_MAX_LIFETIME_SECONDS" in capsys.readouterr().err


def test_tribe_token_gives_user_tokens_the_projects_issuer(capsys):
    tribe_token([], {"SUPABASE_URL": "https://abcdefgh.supabase.co"})

    minted = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert minted["iss"] == "https://abcdefgh.supabase.co/auth/v1"
