"""Index the job table's optional references only where they are set; drop a redundant index.

A job refers to a sender, a recipient, a group, an update or a digest schedule only when its
kind has one: an ad-hoc email has no recipient, group, update or schedule; a digest has no
sender or update. Every lookup by such a reference (a filter, a foreign key's ``SET NULL``, the
digest key) asks for a value, which implies ``IS NOT NULL``, so the indexes keep only the rows
that have one. Each job then enters up to four indexes fewer at its INSERT and at each of the
two non-HOT UPDATEs (claim, record) that follow. A schedule's recipient index is a prefix of the
unique (recipient, group) key, so it goes.
"""

#: (old name, new name, columns, unique); the first column must be set.
PARTIAL = (
    (
        "notificationjob_created_by_id_created_at",
        "notification_jobs_created_by_id_created_at",
        ("created_by_id", "created_at"),
        False,
    ),
    ("notificationjob_update_id", "notification_jobs_update_id", ("update_id",), False),
    (
        "notification_jobs_recipient_id_created_at_id_owner_id",
        "notification_jobs_recipient_id_created_at_id_owner_id",
        ("recipient_id", "created_at", "id", "owner_id"),
        False,
    ),
    (
        "notification_jobs_group_id_created_at_id_owner_id",
        "notification_jobs_group_id_created_at_id_owner_id",
        ("group_id", "created_at", "id", "owner_id"),
        False,
    ),
    (
        "notification_jobs_digest_schedule_id_digest_period",
        "notification_jobs_digest_schedule_id_digest_period",
        ("digest_schedule_id", "digest_period"),
        True,
    ),
)


def _create(db, name: str, columns, unique: bool, where: str | None) -> None:
    kind = "UNIQUE INDEX" if unique else "INDEX"
    condition = f" WHERE {where}" if where else ""
    db.execute_sql(
        f'CREATE {kind} "{name}" ON "notification_jobs" ({", ".join(columns)}){condition}'
    )


def up(migrator, db):
    for old, new, columns, unique in PARTIAL:
        db.execute_sql(f'DROP INDEX "{old}"')
        _create(db, new, columns, unique, f"{columns[0]} IS NOT NULL")
    db.execute_sql('DROP INDEX "digestschedule_recipient_id"')


def down(migrator, db):
    db.execute_sql(
        'CREATE INDEX "digestschedule_recipient_id" ON "digest_schedules" (recipient_id)'
    )
    for old, new, columns, unique in PARTIAL:
        db.execute_sql(f'DROP INDEX "{new}"')
        _create(db, old, columns, unique, None)
