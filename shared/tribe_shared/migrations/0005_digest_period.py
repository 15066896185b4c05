"""Digest jobs name the run of their schedule, unique per schedule: one digest per period.

The unique (schedule, run) index also serves the schedule's foreign key, so the schedule's own
single-column index goes.
"""

from playhouse.migrate import DateTimeField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("notification_jobs", "digest_period", DateTimeField(null=True)),
        migrator.add_index("notification_jobs", ("digest_schedule_id", "digest_period"), True),
        migrator.drop_index("notification_jobs", "notificationjob_digest_schedule_id"),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.add_index("notification_jobs", ("digest_schedule_id",), False),
        migrator.drop_index(
            "notification_jobs", "notification_jobs_digest_schedule_id_digest_period"
        ),
        migrator.drop_column("notification_jobs", "digest_period"),
    )
