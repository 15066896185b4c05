"""Apply the schema migrations (``playhouse.migrations``): the ``release`` process runs this.

Idempotent: applied migrations are recorded in ``schema_migration`` and never run twice.
"""

from __future__ import annotations

import logging
from pathlib import Path

from peewee import Database
from playhouse.migrations import Runner

from tribe_shared import db
from tribe_shared.settings import load_or_exit

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def apply_migrations(database: Database) -> list[str]:
    """Apply every pending migration in order; return the names applied now."""
    applied = Runner(database, str(MIGRATIONS_DIR)).up()
    return applied


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_or_exit()
    database = db.bind(settings.database_url)
    with database.connection_context():
        applied = apply_migrations(database)
    print(f"migrations: {len(applied)} applied ({', '.join(applied) or 'up to date'})")


if __name__ == "__main__":
    main()
