"""After the send (issue #14): the provider's events, delivery outcomes, suppressed addresses,
group unsubscribes, and a group's family name.

- ``email_events``: every event SendGrid's webhook reports, keyed by its ``sg_event_id`` (a
  batch posted again stores nothing twice); the job as a plain column, so events of jobs that no
  longer exist are kept.
- ``notification_jobs`` gains ``delivery_outcome`` (+ when, + the provider's reason), with two
  partial indexes for the list's ``delivery_outcome`` filter (a user's and the service role's,
  built ``CONCURRENTLY`` on PostgreSQL as in 0007: this migration is not atomic).
- ``email_suppressions``: addresses that get no more email, and the blocks counted per address.
- ``group_unsubscribes``: recipients who unsubscribed from a group's emails.
- ``groups.family_name``: "The Smiths", shown as "The Smiths on Tribe".
"""

import uuid

from peewee import *
from playhouse.migrate import CharField as MigrateCharField
from playhouse.migrate import DateTimeField as MigrateDateTimeField
from playhouse.migrate import TextField as MigrateTextField

atomic = False

#: (name, columns) of the jobs' outcome indexes, each ``WHERE delivery_outcome IS NOT NULL``.
OUTCOME_INDEXES = (
    (
        "notification_jobs_owner_id_delivery_outcome_created_at",
        ("owner_id", "delivery_outcome", "created_at", "id"),
    ),
    (
        "notification_jobs_delivery_outcome_created_at",
        ("delivery_outcome", "created_at", "id"),
    ),
)


def _tables(db):
    class EmailEvent(Model):
        sg_event_id = CharField(max_length=100, primary_key=True)
        job_id = UUIDField(null=True)
        event = CharField(max_length=32)
        email = CharField(max_length=320)
        occurred_at = DateTimeField()
        received_at = DateTimeField()
        sg_message_id = CharField(max_length=200, null=True)
        detail = JSONField(default=dict)

        class Meta:
            database = db
            table_name = "email_events"

    class Suppression(Model):
        email = CharField(max_length=320, primary_key=True)
        reason = CharField(max_length=20, null=True)
        detail = TextField(null=True)
        source = CharField(max_length=40, null=True)
        soft_bounces = IntegerField(default=0)
        suppressed_at = DateTimeField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "email_suppressions"
            indexes = ((("suppressed_at",), False),)

    class Recipient(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "recipients"

    class Group(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "groups"

    class DigestSchedule(Model):
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "digest_schedules"

    class GroupUnsubscribe(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        recipient = ForeignKeyField(Recipient, on_delete="CASCADE", index=False)
        group = ForeignKeyField(Group, on_delete="CASCADE")
        paused_schedule = ForeignKeyField(
            DigestSchedule, null=True, on_delete="SET NULL", index=False
        )
        source = CharField(max_length=20)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "group_unsubscribes"
            indexes = ((("recipient", "group"), True),)

    return EmailEvent, Suppression, GroupUnsubscribe


def up(migrator, db):
    with db.atomic():
        event, suppression, unsubscribe = _tables(db)
        db.create_tables([event, suppression, unsubscribe])
        db.execute_sql(
            'CREATE INDEX "email_events_job_id_occurred_at" ON "email_events" '
            "(job_id, occurred_at) WHERE job_id IS NOT NULL"
        )
        migrator.migrate(
            migrator.add_column(
                "notification_jobs", "delivery_outcome", MigrateCharField(max_length=12, null=True)
            ),
            migrator.add_column(
                "notification_jobs", "delivery_outcome_at", MigrateDateTimeField(null=True)
            ),
            migrator.add_column(
                "notification_jobs", "delivery_reason", MigrateTextField(null=True)
            ),
            migrator.add_column(
                "groups", "family_name", MigrateCharField(max_length=100, null=True)
            ),
        )
    for name, columns in OUTCOME_INDEXES:
        on = f'"notification_jobs" ({", ".join(columns)}) WHERE delivery_outcome IS NOT NULL'
        if isinstance(db, PostgresqlDatabase):
            db.execute_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
            db.execute_sql(f'CREATE INDEX CONCURRENTLY "{name}" ON {on}')
        else:
            db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON {on}')


def down(migrator, db):
    concurrently = "CONCURRENTLY " if isinstance(db, PostgresqlDatabase) else ""
    for name, _ in OUTCOME_INDEXES:
        db.execute_sql(f'DROP INDEX {concurrently}IF EXISTS "{name}"')
    with db.atomic():
        migrator.migrate(
            migrator.drop_column("groups", "family_name"),
            migrator.drop_column("notification_jobs", "delivery_reason"),
            migrator.drop_column("notification_jobs", "delivery_outcome_at"),
            migrator.drop_column("notification_jobs", "delivery_outcome"),
        )
        for table in ("group_unsubscribes", "email_suppressions", "email_events"):
            db.execute_sql(f'DROP TABLE "{table}"')
