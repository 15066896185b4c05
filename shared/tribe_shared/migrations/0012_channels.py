"""Every channel a family uses (issue #18, items 1, 3, 4): SMS and WhatsApp through Twilio.

- ``group_memberships.channels``: the channels (``email``, ``sms``, ``whatsapp``) a recipient
  hears from the group on; NULL: email alone, as before.
- ``notification_jobs.segments``: how many SMS segments a text message took (GSM-7 or UCS-2).
- The digest's unique run key gains the channel: one digest job per schedule, run *and*
  channel (``digest_schedule_id, digest_period, delivery_method``), still partial.
- ``email_events`` (what providers report) also keeps Twilio's callbacks and inbound messages;
  an index finds a number's latest inbound WhatsApp message (the 24-hour session window).
  ``email_suppressions`` keeps phone numbers (``+1555…``, ``whatsapp:+1555…``) beside
  addresses: its key is the address as the provider sees it.

Nullable columns without a default change no row. The indexes are built ``CONCURRENTLY`` on
PostgreSQL, which no transaction may wrap: this migration is not atomic.
"""

from peewee import JSONField, PostgresqlDatabase, SmallIntegerField

from tribe_shared.migrate import build_index

atomic = False

OLD_DIGEST_KEY = "notification_jobs_digest_schedule_id_digest_period"
DIGEST_KEY = "notification_jobs_digest_run_channel"
INBOUND_INDEX = "email_events_inbound_email_occurred_at"


def up(migrator, db):
    changes = []
    if "channels" not in {c.name for c in db.get_columns("group_memberships")}:
        changes.append(migrator.add_column("group_memberships", "channels", JSONField(null=True)))
    if "segments" not in {c.name for c in db.get_columns("notification_jobs")}:
        changes.append(
            migrator.add_column("notification_jobs", "segments", SmallIntegerField(null=True))
        )
    if changes:
        with db.atomic():
            migrator.migrate(*changes)
    concurrently = "CONCURRENTLY " if isinstance(db, PostgresqlDatabase) else ""
    db.execute_sql(f'DROP INDEX {concurrently}IF EXISTS "{DIGEST_KEY}"')
    db.execute_sql(
        f'CREATE UNIQUE INDEX {concurrently}"{DIGEST_KEY}" ON "notification_jobs" '
        "(digest_schedule_id, digest_period, delivery_method) "
        "WHERE digest_schedule_id IS NOT NULL"
    )
    db.execute_sql(f'DROP INDEX {concurrently}IF EXISTS "{OLD_DIGEST_KEY}"')
    build_index(db, INBOUND_INDEX, "\"email_events\" (email, occurred_at) WHERE event = 'inbound'")


def down(migrator, db):
    concurrently = "CONCURRENTLY " if isinstance(db, PostgresqlDatabase) else ""
    db.execute_sql(f'DROP INDEX {concurrently}IF EXISTS "{INBOUND_INDEX}"')
    db.execute_sql(
        f'CREATE UNIQUE INDEX {concurrently}"{OLD_DIGEST_KEY}" ON "notification_jobs" '
        "(digest_schedule_id, digest_period) WHERE digest_schedule_id IS NOT NULL"
    )
    db.execute_sql(f'DROP INDEX {concurrently}IF EXISTS "{DIGEST_KEY}"')
    with db.atomic():
        migrator.migrate(
            migrator.drop_column("notification_jobs", "segments"),
            migrator.drop_column("group_memberships", "channels"),
        )
