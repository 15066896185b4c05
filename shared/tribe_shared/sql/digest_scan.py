"""The due-digest scan's statements: lock the due schedules, move them to their next run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from tribe_shared.db import database, is_postgres
from tribe_shared.models import (
    DigestSchedule,
    GroupMembership,
)
from tribe_shared.sql.run import (
    column,
    sql_type,
    table,
)

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
    #: The channels the recipient chose for the group (None: email alone), as the database
    #: gave them (JSON text on SQLite).
    channels: object = None


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
    # One digest job per chosen channel (issue #18).
    GroupMembership.select(GroupMembership.channels)
    .where((GroupMembership.recipient == _S.recipient) & (GroupMembership.group == _S.group))
    .limit(1),
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
    rows = database.execute_sql(*query.sql()).fetchall()
    return [DueSchedule(*row[:-1], GroupMembership.channels.python_value(row[-1])) for row in rows]


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
    next_run_type, id_type = sql_type(_S.next_digest_scheduled), sql_type(_S.id)
    database.execute_sql(
        f"WITH runs(id, next_run) AS (VALUES {rows}) "
        f"UPDATE {table(_S)} SET {column(_S.next_digest_scheduled)} = "
        f"CAST(runs.next_run AS {next_run_type}), {column(_S.updated_at)} = {param} "
        f"FROM runs WHERE {table(_S)}.{column(_S.id)} = CAST(runs.id AS {id_type})",
        [*params, _S.updated_at.db_value(now)],
    )
