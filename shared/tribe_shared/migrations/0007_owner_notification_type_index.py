"""A user's jobs of one notification type, in creation order: ``GET /api/jobs?notification_type=``.

Without it a user's page and count with that filter read every job of theirs from the table to
check its type (a rare type: ~100 ms at 50,000 jobs per user). The service role's pages need no
index of their own: both types are common enough among all jobs that a page and the capped count
find them in creation order at once.

The table is large and written all the time, so on PostgreSQL the index is built
``CONCURRENTLY`` (writes go on meanwhile), which no transaction may wrap: this migration is not
atomic. A build cut short leaves an invalid index, dropped and built again by the next run.
"""

from peewee import PostgresqlDatabase

atomic = False

NAME = "notification_jobs_owner_id_notification_type_created_at_id"
COLUMNS = ("owner_id", "notification_type", "created_at", "id")


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{NAME}"')
        db.execute_sql(
            f'CREATE INDEX CONCURRENTLY "{NAME}" ON "notification_jobs" ({", ".join(COLUMNS)})'
        )
    else:
        migrator.migrate(migrator.add_index("notification_jobs", COLUMNS, False))


def down(migrator, db):
    concurrently = "CONCURRENTLY " if isinstance(db, PostgresqlDatabase) else ""
    db.execute_sql(f'DROP INDEX {concurrently}"{NAME}"')
