"""Jobs carry the user they belong to, so a user's job list is one indexed lookup.

The owner is the owner of the job's recipient, or else whoever sent it; existing rows are
back-filled the same way.
"""

from peewee import ForeignKeyField, Model, UUIDField


def up(migrator, db):
    class User(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "users"

    migrator.migrate(
        migrator.add_column(
            "notification_jobs",
            "owner_id",
            ForeignKeyField(User, null=True, field=User.id, on_delete="CASCADE", index=False),
        ),
    )
    db.execute_sql(
        "UPDATE notification_jobs SET owner_id = COALESCE("
        "(SELECT r.owner_id FROM recipients r WHERE r.id = notification_jobs.recipient_id), "
        "created_by_id)"
    )
    migrator.migrate(
        migrator.add_index("notification_jobs", ("owner_id", "created_at", "id"), False),
        migrator.add_index("notification_jobs", ("owner_id", "status", "created_at", "id"), False),
        migrator.add_index("notification_jobs", ("created_at", "id"), False),
        # The recipient and group lists read in index order too, ties broken by id.
        migrator.drop_index("notification_jobs", "notificationjob_recipient_id_created_at"),
        migrator.drop_index("notification_jobs", "notificationjob_group_id_created_at"),
        migrator.add_index("notification_jobs", ("recipient_id", "created_at", "id"), False),
        migrator.add_index("notification_jobs", ("group_id", "created_at", "id"), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("notification_jobs", "notification_jobs_owner_id_created_at_id"),
        migrator.drop_index("notification_jobs", "notification_jobs_owner_id_status_created_at_id"),
        migrator.drop_index("notification_jobs", "notification_jobs_created_at_id"),
        migrator.drop_column("notification_jobs", "owner_id"),
    )
