"""Signing in to the operator console (``/admin``) from a ``falcon.testing`` client, and the
CSRF token of a page's forms."""

from __future__ import annotations

import re

from tribe_api.auth import mint_service_role_key
from tribe_api.console.session import COOKIE

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def sign_in(api, token: str, name: str = "Ada"):
    return api.simulate_post("/admin/sign-in", body=f"name={name}&token={token}", headers=FORM)


def signed_in(api, tokens) -> dict[str, str]:
    """The Cookie header of an operator's session, signed in with the service-role key."""
    response = sign_in(api, mint_service_role_key(tokens.secret))
    assert response.status_code == 303, response.text
    return {"Cookie": f"{COOKIE}={response.cookies[COOKIE].value}"}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)
