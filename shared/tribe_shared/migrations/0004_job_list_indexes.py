"""Every sort of the job list reads in index order, for a user and for the service role.

``GET /api/jobs`` filters by owner (a user) or by nothing (the service role), sorts by
``created_at``, ``scheduled_for``, ``processed_at`` or ``status`` (then creation time), and stops
after a page. Each (owner?, sort column, id) pair gets an index so no page sorts a whole match.
The recipient and group indexes carry the owner after the id: it never changes their order, but
a user's filtered page and count are then checked in the index alone. The rare delivery methods
(everything but email) get a partial index, which email jobs, nearly all of them, never touch.
The single-column foreign-key indexes of recipient, group and sender are prefixes of composite
ones, so they go: together these add two indexes to every INSERT of an email job.
"""

#: Name, columns and condition of the partial index; the model declares the same.
OTHER_METHODS = "notification_jobs_delivery_method_not_email"
OTHER_METHODS_COLUMNS = ("delivery_method", "created_at", "id", "owner_id")
OTHER_METHODS_WHERE = "delivery_method <> 'email'"

ADDED = (
    ("recipient_id", "created_at", "id", "owner_id"),
    ("group_id", "created_at", "id", "owner_id"),
    ("owner_id", "scheduled_for", "id"),
    ("owner_id", "processed_at", "id"),
    ("scheduled_for", "id"),
    ("processed_at", "id"),
    ("status", "created_at", "id"),
)
#: (name, columns) of the indexes the composite ones above make redundant.
DROPPED = (
    ("notificationjob_recipient_id", ("recipient_id",)),
    ("notificationjob_group_id", ("group_id",)),
    ("notificationjob_created_by_id", ("created_by_id",)),
    ("notification_jobs_recipient_id_created_at_id", ("recipient_id", "created_at", "id")),
    ("notification_jobs_group_id_created_at_id", ("group_id", "created_at", "id")),
)


def _index_name(columns) -> str:
    return "notification_jobs_" + "_".join(columns)


def up(migrator, db):
    migrator.migrate(
        *(migrator.drop_index("notification_jobs", name) for name, _ in DROPPED),
        *(migrator.add_index("notification_jobs", columns, False) for columns in ADDED),
    )
    db.execute_sql(
        f'CREATE INDEX "{OTHER_METHODS}" ON "notification_jobs" '
        f"({', '.join(OTHER_METHODS_COLUMNS)}) WHERE {OTHER_METHODS_WHERE}"
    )


def down(migrator, db):
    db.execute_sql(f'DROP INDEX "{OTHER_METHODS}"')
    migrator.migrate(
        *(migrator.drop_index("notification_jobs", _index_name(columns)) for columns in ADDED),
        *(migrator.add_index("notification_jobs", columns, False) for _, columns in DROPPED),
    )
