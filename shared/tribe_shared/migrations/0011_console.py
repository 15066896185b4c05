"""The operator console (issue #16): bulk actions and their record, and the indexes of the
job list's new filters.

- ``bulk_actions``: a retry or cancel of every job a filter matches, who asked for it and how
  far the worker has got; ``bulk_action_jobs``: each job it acted on.
- ``notification_jobs_request_id_created_at`` and ``notification_jobs_to_email_created_at``:
  the jobs of one originating request (a bulk request) and of one address, newest first, each
  partial (``WHERE … IS NOT NULL``) and built ``CONCURRENTLY`` on PostgreSQL, as in 0010: this
  migration is not atomic.
"""

import uuid

from peewee import *

from tribe_shared.migrate import build_index

atomic = False

#: (name, column) of the filter indexes, each on ``(column, created_at, id)``.
FILTER_INDEXES = (
    ("notification_jobs_request_id_created_at", "request_id"),
    ("notification_jobs_to_email_created_at", "to_email"),
)


def _tables(db):
    class BulkAction(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        action = CharField(max_length=10)
        filters = JSONField(default=dict)
        requested_by = CharField(max_length=200)
        status = CharField(max_length=10, default="running")
        matched = IntegerField(default=0)
        acted = IntegerField(default=0)
        error = TextField(null=True)
        created_at = DateTimeField()
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "bulk_actions"
            indexes = ((("created_at",), False),)

    class BulkActionJob(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        action = ForeignKeyField(BulkAction, on_delete="CASCADE", index=False)
        job_id = UUIDField()
        acted_at = DateTimeField()

        class Meta:
            database = db
            table_name = "bulk_action_jobs"
            indexes = ((("action", "job_id"), True),)

    return BulkAction, BulkActionJob


def up(migrator, db):
    with db.atomic():
        db.create_tables(_tables(db), safe=True)
    for name, column in FILTER_INDEXES:
        on = f'"notification_jobs" ({column}, created_at, id) WHERE {column} IS NOT NULL'
        build_index(db, name, on)


def down(migrator, db):
    concurrently = "CONCURRENTLY " if isinstance(db, PostgresqlDatabase) else ""
    for name, _ in FILTER_INDEXES:
        db.execute_sql(f'DROP INDEX {concurrently}IF EXISTS "{name}"')
    with db.atomic():
        db.drop_tables(list(reversed(_tables(db))))
