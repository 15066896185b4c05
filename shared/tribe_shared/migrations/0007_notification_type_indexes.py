"""Jobs of one notification type, in creation order: ``GET /api/jobs?notification_type=``.

Without them a page and its count with that filter read jobs from the table only to check
their type: a user's digests took ~100 ms at 50,000 jobs per user, and the service role's count
walks all jobs until it has enough digests, slower the rarer they are. A user gets a full index
(owner, type, creation); the service role a partial one of the jobs that are not ``immediate``
(digests), which immediate jobs, most of them, never enter; its immediate ones are found in
creation order at once.

The table is large and written all the time, so on PostgreSQL the indexes are built
``CONCURRENTLY`` (writes go on meanwhile), which no transaction may wrap: this migration is not
atomic. A build cut short leaves an invalid index, dropped and built again by the next run.
"""

from peewee import PostgresqlDatabase

from tribe_shared.migrate import build_index

atomic = False

#: (name, columns, condition)
INDEXES = (
    (
        "notification_jobs_owner_id_notification_type_created_at_id",
        ("owner_id", "notification_type", "created_at", "id"),
        None,
    ),
    (
        "notification_jobs_notification_type_not_immediate",
        ("notification_type", "created_at", "id"),
        "notification_type <> 'immediate'",
    ),
)


def up(migrator, db):
    for name, columns, where in INDEXES:
        condition = f" WHERE {where}" if where else ""
        build_index(db, name, f'"notification_jobs" ({", ".join(columns)}){condition}')


def down(migrator, db):
    concurrently = "CONCURRENTLY " if isinstance(db, PostgresqlDatabase) else ""
    for name, _, _ in INDEXES:
        db.execute_sql(f'DROP INDEX {concurrently}"{name}"')
