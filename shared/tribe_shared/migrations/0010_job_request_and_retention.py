"""Jobs remember the request that created them and when their personal content was scrubbed;
an index lets retention find the finished jobs still to scrub, oldest first.

- ``request_id``: the ``X-Request-ID`` of the API request that created the job (generated when
  the client sent none), carried into every worker log line about the job.
- ``scrubbed_at``: when retention blanked the job's address and personal content
  (``CONTENT_RETENTION_DAYS``); None until then.
- ``notification_jobs_processed_at_unscrubbed``: ``processed_at`` of the jobs not yet scrubbed,
  so each scrub batch reads the oldest unscrubbed jobs in index order and never walks the rows
  it scrubbed before. (Deleting after ``JOB_RETENTION_DAYS`` uses the ``processed_at, id``
  index that already exists.)

Adding nullable columns without a default changes no row; the index is built ``CONCURRENTLY``
on PostgreSQL (writes go on meanwhile), which no transaction may wrap: this migration is not
atomic. A build cut short leaves an invalid index, dropped and built again by the next run.
"""

from peewee import CharField, DateTimeField, PostgresqlDatabase

from tribe_shared.migrate import build_index

atomic = False

INDEX = "notification_jobs_processed_at_unscrubbed"
COLUMNS = ("request_id", "scrubbed_at")


def up(migrator, db):
    existing = {column.name for column in db.get_columns("notification_jobs")}
    changes = []
    if "request_id" not in existing:
        changes.append(
            migrator.add_column(
                "notification_jobs", "request_id", CharField(max_length=128, null=True)
            )
        )
    if "scrubbed_at" not in existing:
        changes.append(
            migrator.add_column("notification_jobs", "scrubbed_at", DateTimeField(null=True))
        )
    if changes:
        with db.atomic():
            migrator.migrate(*changes)
    build_index(db, INDEX, '"notification_jobs" (processed_at) WHERE scrubbed_at IS NULL')


def down(migrator, db):
    concurrently = "CONCURRENTLY " if isinstance(db, PostgresqlDatabase) else ""
    db.execute_sql(f'DROP INDEX {concurrently}IF EXISTS "{INDEX}"')
    with db.atomic():
        migrator.migrate(*(migrator.drop_column("notification_jobs", c) for c in COLUMNS))
