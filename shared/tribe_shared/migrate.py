"""Apply the schema migrations (``playhouse.migrations``): the ``release`` process runs this.

Idempotent: applied migrations are recorded in ``schema_migration`` and never run twice.
"""

from __future__ import annotations

import logging
from pathlib import Path

from peewee import Database, PostgresqlDatabase
from playhouse.migrations import Runner

from tribe_shared import db
from tribe_shared.settings import load_or_exit

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: Where ``playhouse.migrations.Runner`` records the applied migrations (its default).
HISTORY_TABLE = "schema_migration"


def apply_migrations(database: Database) -> list[str]:
    """Apply every pending migration in order; return the names applied now."""
    applied = Runner(database, str(MIGRATIONS_DIR)).up()
    return applied


def build_index(db: Database, name: str, on: str) -> None:
    """``CREATE INDEX name ON on`` for a migration on a large table that is written all the
    time: ``CONCURRENTLY`` on PostgreSQL (writes go on; the migration must set ``atomic =
    False``), after dropping an invalid one a build cut short left; plainly on SQLite."""
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        db.execute_sql(f'CREATE INDEX CONCURRENTLY "{name}" ON {on}')
    else:
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON {on}')


def migration_names() -> list[str]:
    """The migrations this code expects, by name, in order (the files of the directory)."""
    return sorted(path.stem for path in MIGRATIONS_DIR.glob("[0-9]*.py"))


def pending_migrations(database: Database) -> list[str]:
    """The migrations this code expects that the database has not applied (all of them on a
    database never migrated), read with one query of the history table."""
    expected = migration_names()
    if not database.table_exists(HISTORY_TABLE):
        return expected
    cursor = database.execute_sql(f'SELECT "name" FROM "{HISTORY_TABLE}"')
    applied = {name for (name,) in cursor.fetchall()}
    return [name for name in expected if name not in applied]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_or_exit()
    database = db.bind(settings.database_url, pooler=settings.database_pooler)
    with database.connection_context():
        applied = apply_migrations(database)
    print(f"migrations: {len(applied)} applied ({', '.join(applied) or 'up to date'})")


if __name__ == "__main__":
    main()
