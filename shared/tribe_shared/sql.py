"""Every hand-written SQL statement: the paths that run per email or per thousand rows.

Elsewhere peewee's query builder writes the SQL. Here it is written once, for the statements
where building it cost more than running it: the claim and the record of every email, the job
rows of a request, an update's fan-out and the digest scan. Table and column names come from the
models' metadata, values pass through each field's own ``db_value``/``python_value``, and rows
come back as named tuples; ``tests/shared/test_sql.py`` checks that each writes exactly the row
the model would.

On PostgreSQL the per-email statements are prepared (:class:`Prepared`), parsed and planned once
per connection for any number of jobs (the ids travel as one array); on SQLite, whose driver
keeps compiled statements itself, their text is cached per number of jobs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple
from uuid import UUID
from weakref import WeakKeyDictionary

from peewee import JOIN, Field, JSONField

from tribe_shared.contract import CLAIMABLE_STATUSES, DeliveryStatus, JobStatus
from tribe_shared.db import database, is_postgres
from tribe_shared.models import (
    DeliveryLog,
    DigestSchedule,
    GroupMembership,
    NotificationJob,
    Recipient,
    new_ids,
)

# --- running hand-written statements --------------------------------------------------------


class Statement(NamedTuple):
    """Prebuilt SQL and its parameters, for :func:`execute_together` as a peewee query would be."""

    text: str
    params: list

    def sql(self) -> tuple[str, list]:
        return self.text, self.params


class Prepared:
    """A PostgreSQL statement parsed and planned once per connection, then only executed.

    ``text`` uses ``$1``, ``$2``... whose ``types`` are given; :meth:`bind` makes sure the
    connection of this thread has prepared it and returns the ``EXECUTE`` (a :class:`Statement`,
    so it can run with others in :func:`execute_together`). After a migration changes the
    columns a prepared statement returns, connections opened before it fail on it: workers
    restart with every deploy.
    """

    def __init__(self, name: str, types: Sequence[str], text: str):
        self.name = name
        self._prepare = f"PREPARE {name} ({', '.join(types)}) AS {text}"
        casts = ", ".join(f"%s::{kind}" for kind in types)  # psycopg2's placeholder
        self._execute = f"EXECUTE {name} ({casts})"

    def bind(self, params: Sequence) -> Statement:
        connection = database.connection()
        prepared = _prepared_on.setdefault(connection, set())
        if self.name not in prepared:
            database.execute_sql(self._prepare)
            prepared.add(self.name)
        return Statement(self._execute, list(params))


#: The statements each open connection has prepared (forgotten with the connection).
_prepared_on: WeakKeyDictionary = WeakKeyDictionary()


def execute_together(*queries) -> None:
    """Run write queries (peewee queries or :class:`Statement`) all or none, in one round trip
    on PostgreSQL.

    PostgreSQL runs the statements of one simple query as one implicit transaction; SQLite takes
    one statement at a time, so there they run in a transaction of their own.
    """
    if is_postgres() and not database.in_transaction():
        parts = [query.sql() for query in queries]
        sql = ";\n".join(text for text, _ in parts)
        database.execute_sql(sql, [param for _, params in parts for param in params])
        return
    with database.atomic():
        for query in queries:
            # Read any RETURNING rows to the end: SQLite cannot commit a statement in progress.
            database.execute_sql(*query.sql()).fetchall()


def db_value(field: Field, value):
    """What ``value`` of ``field`` is in the database, as a parameter of hand-written SQL."""
    # JSON as plain text: both databases cast a text parameter into their JSON column.
    if isinstance(field, JSONField):
        return None if value is None else json.dumps(value)
    return field.db_value(value)


def _table(model) -> str:
    return f'"{model._meta.table_name}"'


def _column(field: Field) -> str:
    return f'"{field.column_name}"'


def _sql_type(field: Field) -> str:
    """The column's type for a CAST of a parameter: PostgreSQL types VALUES lists by their
    first row and infers nothing from the target; SQLite keeps uuids and times as text."""
    if not is_postgres():
        return "TEXT"
    kind = field.field_type
    return {"UUID": "UUID", "DATETIME": "TIMESTAMP", "INT": "INTEGER", "SMALLINT": "SMALLINT"}.get(
        kind, "TEXT"
    )


# --- inserting rows -------------------------------------------------------------------------

#: Rows per INSERT statement (well under either database's parameter limit).
INSERT_BATCH = 500


def insert_models(model, instances: Sequence) -> None:
    """INSERT new instances of ``model`` (ids already set) in as few statements as possible.

    What ``bulk_create`` does, without the query builder's cost: this runs on every accepted
    request. All or none: more than one statement runs in a transaction.
    """
    fields = model._meta.sorted_fields
    head = f"INSERT INTO {_table(model)} ({', '.join(_column(f) for f in fields)}) VALUES "
    row = "(" + ", ".join([database.param] * len(fields)) + ")"
    with database.atomic() if len(instances) > INSERT_BATCH else nullcontext():
        for start in range(0, len(instances), INSERT_BATCH):
            chunk = instances[start : start + INSERT_BATCH]
            params = [db_value(f, obj.__data__.get(f.name)) for obj in chunk for f in fields]
            database.execute_sql(head + ", ".join([row] * len(chunk)), params)


def insert_jobs_like(
    template: NotificationJob,
    varying: Sequence[str],
    rows: Sequence[Sequence],
    *,
    skip_conflicts: bool = False,
) -> set[UUID]:
    """Write one job per row: each column as in ``template``, except the ``varying`` fields,
    whose database values each row gives in that order (``id`` first).

    One statement per :data:`INSERT_BATCH` rows, the shared values sent once. With
    ``skip_conflicts`` a row that breaks a unique key is left out; returns the ids written.
    """
    fields = NotificationJob._meta.sorted_fields
    by_name = {field.name: field for field in fields}
    per_row = [by_name[name] for name in varying]
    columns, values, shared = [], [], []
    for field in fields:
        columns.append(_column(field))
        if field.name in varying:
            values.append(f"CAST(runs.{_column(field)} AS {_sql_type(field)})")
        else:
            values.append(database.param)  # typed by its column, as INSERT ... SELECT does
            shared.append(db_value(field, template.__data__.get(field.name)))
    row = "(" + ", ".join([database.param] * len(per_row)) + ")"
    names = ", ".join(_column(field) for field in per_row)
    tail = ' ON CONFLICT DO NOTHING RETURNING "id"' if skip_conflicts else ""
    written: set[UUID] = set()
    with database.atomic() if len(rows) > INSERT_BATCH else nullcontext():
        for start in range(0, len(rows), INSERT_BATCH):
            chunk = rows[start : start + INSERT_BATCH]
            cursor = database.execute_sql(
                f"WITH runs({names}) AS (VALUES {', '.join([row] * len(chunk))}) "
                f"INSERT INTO {_table(NotificationJob)} ({', '.join(columns)}) "
                f"SELECT {', '.join(values)} FROM runs WHERE true{tail}",
                [value for values in chunk for value in values] + shared,
            )
            if skip_conflicts:
                written.update(NotificationJob.id.python_value(i) for (i,) in cursor.fetchall())
    return written


# --- claiming and recording a delivery ------------------------------------------------------


class ClaimedJob(NamedTuple):
    """What delivering a claimed job reads of it: the columns the claim returns."""

    id: UUID
    kind: str
    status: str
    recipient_id: UUID | None
    digest_schedule_id: UUID | None
    digest_period: datetime | None
    to_email: str | None
    delivery_method: str
    content: dict
    batch_key: str | None
    attempts: int
    retry_count: int


_J = NotificationJob
#: The claim's RETURNING columns, in the order of :class:`ClaimedJob`.
_CLAIMED = (
    _J.id,
    _J.kind,
    _J.status,
    _J.recipient,
    _J.digest_schedule,
    _J.digest_period,
    _J.to_email,
    _J.delivery_method,
    _J.content,
    _J.batch_key,
    _J.attempts,
    _J.retry_count,
)
_RETURNING = ", ".join(_column(field) for field in _CLAIMED)
_JOBS, _LOGS = _table(NotificationJob), _table(DeliveryLog)
_LOG_COLUMNS = ", ".join(_column(f) for f in DeliveryLog._meta.sorted_fields)
#: Batch sizes whose SQL is kept (SQLite): individual emails are all 1, bulk batches vary.
_CACHED_SIZES = 64

_PG_CLAIM = Prepared(
    "tribe_claim",
    ("text", "timestamp", "uuid[]", "text[]", "timestamp"),
    f'UPDATE {_JOBS} SET "status" = $1, "claimed_at" = $2, "attempts" = "attempts" + 1 '
    f'WHERE "id" = ANY($3) AND "status" = ANY($4) AND "scheduled_for" <= $5 RETURNING {_RETURNING}',
)
_L = DeliveryLog
_LOGGED = (_L.id, _L.job, _L.attempt, _L.provider, _L.provider_message_id, _L.status)
_PG_LOG_SENT = Prepared(
    "tribe_log_sent",
    ("uuid[]", "uuid[]", "integer[]", "text", "text", "text", "integer", "timestamp"),
    f"INSERT INTO {_LOGS} ({', '.join(_column(f) for f in _LOGGED)}, "
    f"{_column(_L.duration_ms)}, {_column(_L.created_at)}) "
    "SELECT id, job_id, attempt, $4, $5, $6, $7, $8 "
    "FROM unnest($1, $2, $3) AS t(id, job_id, attempt)",
)
_PG_MARK_SENT = Prepared(
    "tribe_mark_sent",
    ("text", "text", "timestamp", "uuid[]", "text"),
    f'UPDATE {_JOBS} SET "status" = $1, "message_id" = $2, "processed_at" = $3, '
    '"failure_reason" = NULL WHERE "id" = ANY($4) AND "status" = $5',
)


def claim(job_ids: Sequence[UUID], now: datetime, due_by: datetime) -> list[ClaimedJob]:
    """Atomically move the claimable jobs due by ``due_by`` to ``processing``; return them in
    the order of ``job_ids``."""
    if not job_ids:
        return []
    ids = [_J.id.db_value(job_id) for job_id in job_ids]
    statuses = [status.value for status in CLAIMABLE_STATUSES]
    processing, claimed_at = JobStatus.PROCESSING.value, _J.claimed_at.db_value(now)
    due = _J.scheduled_for.db_value(due_by)
    if is_postgres():
        statement = _PG_CLAIM.bind([processing, claimed_at, ids, statuses, due])
    else:
        params = [processing, claimed_at, *ids, *statuses, due]
        statement = Statement(_claim(len(job_ids), database.param), params)
    rows = database.execute_sql(*statement).fetchall()
    claimed = {
        job.id: job
        for job in (
            ClaimedJob(*(f.python_value(v) for f, v in zip(_CLAIMED, row, strict=True)))
            for row in rows
        )
    }
    return [claimed[job_id] for job_id in job_ids if job_id in claimed]


def record_sent(
    jobs: Sequence[ClaimedJob],
    provider: str,
    message_id: str,
    duration_ms: int,
    now: datetime,
    *,
    also: Sequence = (),
) -> None:
    """One ``sent`` delivery-log row per job and the jobs ``sent``, all or none, with ``also``
    (queries that belong with the send, such as a digest closing its window)."""
    ids = [_J.id.db_value(job.id) for job in jobs]
    sent, processing = JobStatus.SENT.value, JobStatus.PROCESSING.value
    at, message_id = _J.processed_at.db_value(now), message_id or None
    log_ids = [DeliveryLog.id.db_value(log_id) for log_id in new_ids(len(jobs))]
    if is_postgres():
        attempts = [job.attempts for job in jobs]
        log = [log_ids, ids, attempts, provider, message_id, DeliveryStatus.SENT.value]
        execute_together(
            _PG_LOG_SENT.bind([*log, duration_ms, at]),
            _PG_MARK_SENT.bind([sent, message_id, at, ids, processing]),
            *also,
        )
        return
    logs = [
        DeliveryLog(
            id=log_id,
            job=job.id,
            attempt=job.attempts,
            provider=provider,
            provider_message_id=message_id,
            status=DeliveryStatus.SENT.value,
            error=None,
            duration_ms=duration_ms,
            created_at=now,
        )
        for log_id, job in zip(log_ids, jobs, strict=True)
    ]
    fields = DeliveryLog._meta.sorted_fields
    row = "(" + ", ".join([database.param] * len(fields)) + ")"
    log_params = [db_value(f, log.__data__.get(f.name)) for log in logs for f in fields]
    insert_logs = f"INSERT INTO {_LOGS} ({_LOG_COLUMNS}) VALUES " + ", ".join([row] * len(logs))
    mark_sent = _mark_sent(len(jobs), database.param)
    execute_together(
        Statement(insert_logs, log_params),
        Statement(mark_sent, [sent, message_id, at, *ids, processing]),
        *also,
    )


@lru_cache(maxsize=_CACHED_SIZES)
def _claim(count: int, param: str) -> str:
    ids = ", ".join([param] * count)
    statuses = ", ".join([param] * len(CLAIMABLE_STATUSES))
    return (
        f'UPDATE {_JOBS} SET "status" = {param}, "claimed_at" = {param}, '
        f'"attempts" = "attempts" + 1 '
        f'WHERE "id" IN ({ids}) AND "status" IN ({statuses}) AND "scheduled_for" <= {param} '
        f"RETURNING {_RETURNING}"
    )


@lru_cache(maxsize=_CACHED_SIZES)
def _mark_sent(count: int, param: str) -> str:
    ids = ", ".join([param] * count)
    return (
        f'UPDATE {_JOBS} SET "status" = {param}, "message_id" = {param}, '
        f'"processed_at" = {param}, "failure_reason" = NULL '
        f'WHERE "id" IN ({ids}) AND "status" = {param}'
    )


# --- an update's fan-out --------------------------------------------------------------------


class Member(NamedTuple):
    """A recipient of a group, as an update's fan-out reads them. Ids and the address are as
    the database gave them, to be written back unchanged."""

    owner: object
    recipient: object
    email: str | None
    in_digest: bool
    muted: bool


def group_members(group_id: UUID, now: datetime) -> list[Member]:
    """Each recipient of the group, with whether they are on an active digest for it and
    whether they are muted at ``now``: one query."""
    schedule = (
        (DigestSchedule.recipient == GroupMembership.recipient)
        & (DigestSchedule.group == GroupMembership.group)
        & (DigestSchedule.is_active == True)  # noqa: E712
    )
    query = (
        GroupMembership.select(
            Recipient.owner,
            Recipient.id,
            Recipient.email,
            DigestSchedule.id.is_null(False),
            Recipient.muted_until.is_null(False) & (Recipient.muted_until > now),
        )
        .join(Recipient, on=(GroupMembership.recipient == Recipient.id))
        .join(DigestSchedule, JOIN.LEFT_OUTER, on=schedule)
        .where(GroupMembership.group == group_id)
    )
    return [Member(*row) for row in database.execute(query)]


# --- the digest scan ------------------------------------------------------------------------


class DueSchedule(NamedTuple):
    """A schedule whose run is due, as the scan reads it. The references are text (they only
    go back into the writes, and a driver's UUID objects cost more to make and to send back);
    ``period`` is the due run as the database gave it."""

    id: str
    owner: str
    recipient: str
    group: str
    frequency: str
    delivery_time: str
    delivery_day: int | None
    timezone: str
    period: object


_S = DigestSchedule
_DUE = (
    _S.id.cast("TEXT"),
    _S.owner.cast("TEXT"),
    _S.recipient.cast("TEXT"),
    _S.group.cast("TEXT"),
    _S.frequency,
    _S.delivery_time,
    _S.delivery_day,
    _S.timezone,
    _S.next_digest_scheduled,
)


def lock_due_schedules(now: datetime, limit: int) -> list[DueSchedule]:
    """Up to ``limit`` active schedules due at ``now``, earliest first, locked for the caller's
    transaction (PostgreSQL: rows another scan has locked are skipped; SQLite: the transaction
    holds the write lock, see :func:`tribe_shared.db.locking_transaction`)."""
    query = (
        _S.select(*_DUE)
        .where(_S.is_active == True, _S.next_digest_scheduled <= now)  # noqa: E712
        .order_by(_S.next_digest_scheduled)
        .limit(limit)
    )
    if is_postgres():
        query = query.for_update(skip_locked=True)
    return [DueSchedule(*row) for row in database.execute_sql(*query.sql()).fetchall()]


def move_schedules(next_runs: Sequence[tuple[str, datetime]], now: datetime) -> None:
    """Set each schedule's next run, given as (schedule id as read, next run), in one statement
    (an UPDATE joined to a VALUES list)."""
    if not next_runs:
        return
    param = database.param
    rows = ", ".join([f"({param}, {param})"] * len(next_runs))
    params = []
    for schedule_id, next_run in next_runs:
        params += [schedule_id, _S.next_digest_scheduled.db_value(next_run)]
    next_run_type, id_type = _sql_type(_S.next_digest_scheduled), _sql_type(_S.id)
    database.execute_sql(
        f"WITH runs(id, next_run) AS (VALUES {rows}) "
        f"UPDATE {_table(_S)} SET {_column(_S.next_digest_scheduled)} = "
        f"CAST(runs.next_run AS {next_run_type}), {_column(_S.updated_at)} = {param} "
        f"FROM runs WHERE {_table(_S)}.{_column(_S.id)} = CAST(runs.id AS {id_type})",
        [*params, _S.updated_at.db_value(now)],
    )
