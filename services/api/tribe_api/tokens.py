"""``tribe-token``: mint a bearer token for development and tests, signed with ``JWT_SECRET``.

tribe-token                       # a new user, role "authenticated", 12 hours
tribe-token --sub <uuid> --role service_role --hours 1
tribe-token --service-role-key    # the project's service_role key as Supabase shapes it
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Mapping
from datetime import timedelta

from tribe_api.auth import ROLES, mint_service_role_key, mint_token, user_token_issuer
from tribe_shared.settings import load_or_exit


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Print a token; ``environ`` (default: the process's) gives ``JWT_SECRET`` and the rest."""
    parser = argparse.ArgumentParser(prog="tribe-token", description=__doc__.splitlines()[0])
    parser.add_argument("--sub", type=uuid.UUID, default=None, help="user id (default: new)")
    parser.add_argument("--role", choices=ROLES, default="authenticated")
    parser.add_argument("--hours", type=float, default=None, help="lifetime (default: 12)")
    parser.add_argument(
        "--service-role-key",
        action="store_true",
        help="a service_role key with no sub and no aud, iss 'supabase', valid for ten years "
        "(or --hours): it acts for no user",
    )
    args = parser.parse_args(argv)
    settings = load_or_exit(environ)
    if settings.is_production:
        parser.error("refusing to mint tokens with APP_ENV=production")
    if args.service_role_key:
        if args.sub is not None or args.role != "authenticated":
            parser.error("--service-role-key takes neither --sub nor --role")
        ttl = timedelta(days=3650) if args.hours is None else timedelta(hours=args.hours)
        print(mint_service_role_key(settings.jwt_secret, ttl=ttl))
        return
    hours = 12.0 if args.hours is None else args.hours
    if hours * 3600 > settings.jwt_max_lifetime_seconds:
        parser.error(
            f"the API refuses user tokens that live longer than JWT_MAX_LIFETIME_SECONDS "
            f"({settings.jwt_max_lifetime_seconds} s)"
        )
    print(
        mint_token(
            settings.jwt_secret,
            user_id=args.sub,
            role=args.role,
            ttl=timedelta(hours=hours),
            issuer=user_token_issuer(settings.jwt_issuers),
        )
    )


if __name__ == "__main__":
    main()
