"""``tribe-token``: mint a bearer token for development and tests.

tribe-token                       # a new user, role "authenticated", 12 hours
tribe-token --sub <uuid> --role service_role --hours 1
"""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta

from tribe_api.auth import ROLES, mint_token
from tribe_shared.settings import load_or_exit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tribe-token", description=__doc__.splitlines()[0])
    parser.add_argument("--sub", type=uuid.UUID, default=None, help="user id (default: new)")
    parser.add_argument("--role", choices=ROLES, default="authenticated")
    parser.add_argument("--hours", type=float, default=12.0)
    args = parser.parse_args(argv)
    settings = load_or_exit()
    if settings.is_production:
        parser.error("refusing to mint tokens with APP_ENV=production")
    print(
        mint_token(
            settings.jwt_secret,
            user_id=args.sub,
            role=args.role,
            ttl=timedelta(hours=args.hours),
        )
    )


if __name__ == "__main__":
    main()
