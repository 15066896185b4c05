"""Safe retries (issue #15, item 8): the first answer to each request sent with an
``Idempotency-Key`` header, kept for 24 hours.

- ``idempotency_keys``: one row per (caller, key), unique, so two requests with one key cannot
  both claim it (the second waits for the first's transaction and then reads its answer); the
  request's hash, the answer's status, body and ``Location``; ``expires_at`` indexed, so
  retention deletes the expired rows oldest first without reading the others.

A new, empty table: created in one transaction, no concurrent index build needed.
"""

import uuid

from peewee import *


def _table(db):
    class IdempotencyKey(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        caller = CharField(max_length=100)
        key = CharField(max_length=255)
        request_hash = CharField(max_length=64)
        status_code = SmallIntegerField(null=True)
        response_body = TextField(null=True)
        location = TextField(null=True)
        created_at = DateTimeField()
        expires_at = DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "idempotency_keys"
            indexes = ((("caller", "key"), True),)

    return IdempotencyKey


def up(migrator, db):
    db.create_tables([_table(db)])


def down(migrator, db):
    db.drop_tables([_table(db)])
