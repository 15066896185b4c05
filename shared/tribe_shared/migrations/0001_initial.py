"""The initial schema: users, groups, recipients, updates, digest schedules, jobs, delivery logs.

A frozen copy of the models as they were; timestamps are naive UTC.
"""

import uuid

from peewee import *


def up(migrator, db):
    class User(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        email = CharField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "users"

    db.create_tables([User])

    class Recipient(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        owner = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(max_length=200)
        email = CharField(null=True, max_length=320)
        phone = CharField(null=True, max_length=32)
        relationship = CharField(null=True, max_length=100)
        muted_until = DateTimeField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "recipients"

    db.create_tables([Recipient])

    class Group(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        owner = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(max_length=200)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "groups"

    db.create_tables([Group])

    class Update(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        owner = ForeignKeyField(User, on_delete="CASCADE")
        group = ForeignKeyField(Group, on_delete="CASCADE")
        content_type = CharField(max_length=20)
        title = CharField(null=True, max_length=300)
        body = TextField(default="")
        media_urls = JSONField(default=list)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "updates"
            indexes = ((("group", "created_at"), False),)

    db.create_tables([Update])

    class DigestSchedule(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        owner = ForeignKeyField(User, on_delete="CASCADE")
        recipient = ForeignKeyField(Recipient, on_delete="CASCADE")
        group = ForeignKeyField(Group, on_delete="CASCADE")
        frequency = CharField(max_length=10)
        delivery_time = CharField(max_length=8)
        delivery_day = SmallIntegerField(null=True)
        timezone = CharField(max_length=64)
        is_active = BooleanField(default=True)
        max_updates_per_digest = SmallIntegerField(default=10)
        include_content_types = JSONField(default=list)
        last_digest_sent = DateTimeField(null=True)
        next_digest_scheduled = DateTimeField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = "digest_schedules"
            indexes = (
                (("recipient", "group"), True),
                (("is_active", "next_digest_scheduled"), False),
            )

    db.create_tables([DigestSchedule])

    class NotificationJob(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        kind = CharField(max_length=20, default="email")
        status = CharField(max_length=20, default="pending")
        created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
        recipient = ForeignKeyField(Recipient, null=True, on_delete="SET NULL")
        group = ForeignKeyField(Group, null=True, on_delete="SET NULL")
        family_update = ForeignKeyField(
            Update, null=True, column_name="update_id", on_delete="SET NULL"
        )
        digest_schedule = ForeignKeyField(DigestSchedule, null=True, on_delete="SET NULL")
        to_email = CharField(null=True, max_length=320)
        notification_type = CharField(max_length=20, default="immediate")
        urgency = CharField(max_length=10, default="normal")
        delivery_method = CharField(max_length=10, default="email")
        content = JSONField(default=dict)
        batch_key = CharField(null=True, max_length=64)
        scheduled_for = DateTimeField()
        created_at = DateTimeField()
        queued_at = DateTimeField(null=True)
        claimed_at = DateTimeField(null=True)
        processed_at = DateTimeField(null=True)
        attempts = IntegerField(default=0)
        retry_count = IntegerField(default=0)
        message_id = CharField(null=True, max_length=200)
        failure_reason = TextField(null=True)

        class Meta:
            database = db
            table_name = "notification_jobs"
            indexes = (
                (("status", "scheduled_for"), False),
                (("recipient", "created_at"), False),
                (("group", "created_at"), False),
                (("created_by", "created_at"), False),
            )

    db.create_tables([NotificationJob])

    class DeliveryLog(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        job = ForeignKeyField(NotificationJob, on_delete="CASCADE")
        attempt = IntegerField()
        provider = CharField(max_length=32)
        provider_message_id = CharField(null=True, max_length=200)
        status = CharField(max_length=20)
        error = TextField(null=True)
        duration_ms = IntegerField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "notification_delivery_logs"
            indexes = ((("job", "attempt"), False),)

    db.create_tables([DeliveryLog])

    class GroupMembership(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        group = ForeignKeyField(Group, on_delete="CASCADE")
        recipient = ForeignKeyField(Recipient, on_delete="CASCADE")
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "group_memberships"
            indexes = ((("group", "recipient"), True),)

    db.create_tables([GroupMembership])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("group_memberships"))
    migrator.migrate(migrator.drop_table("notification_delivery_logs"))
    migrator.migrate(migrator.drop_table("notification_jobs"))
    migrator.migrate(migrator.drop_table("digest_schedules"))
    migrator.migrate(migrator.drop_table("updates"))
    migrator.migrate(migrator.drop_table("groups"))
    migrator.migrate(migrator.drop_table("recipients"))
    migrator.migrate(migrator.drop_table("users"))
