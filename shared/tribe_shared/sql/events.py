"""The statements of SendGrid's event webhook: a batch of up to thousands of events stored in a
few multi-row statements, and what they tell applied to jobs and addresses set by set.

- :func:`store_events`: one multi-row ``INSERT … ON CONFLICT DO NOTHING`` per
  :data:`~tribe_shared.sql.insert.INSERT_BATCH` events, keyed by ``sg_event_id``: a batch posted
  again stores nothing, and says which events were new (only those are applied).
- :func:`apply_outcome`: one ``UPDATE … FROM (VALUES …)`` per outcome, which moves a job only
  from an outcome of a lower rank (:func:`tribe_shared.contract.outcomes_below`), so events
  applied in any order, or twice, end in the same state.
- :func:`suppress`, :func:`count_blocks`, :func:`clear_blocks`: the addresses' standing, one
  upsert or update each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from tribe_shared.contract import SuppressionReason, outcomes_below
from tribe_shared.db import database
from tribe_shared.models import EmailEvent, NotificationJob, Suppression
from tribe_shared.sql.insert import INSERT_BATCH
from tribe_shared.sql.run import column, db_value, sql_type, table

#: Blocks (soft bounces) in a row, with no delivery between them, that suppress an address.
BLOCKS_TO_SUPPRESS = 3


class EventRow(NamedTuple):
    """One event as stored (``email_events``)."""

    sg_event_id: str
    job_id: UUID | None
    event: str
    email: str
    occurred_at: datetime
    received_at: datetime
    sg_message_id: str | None
    detail: dict


_E = EmailEvent
_EVENT_FIELDS = (
    _E.sg_event_id,
    _E.job_id,
    _E.event,
    _E.email,
    _E.occurred_at,
    _E.received_at,
    _E.sg_message_id,
    _E.detail,
)


def store_events(rows: Sequence[EventRow]) -> set[str]:
    """Store the events not stored before; return their ``sg_event_id``s."""
    param = database.param
    row = "(" + ", ".join([param] * len(_EVENT_FIELDS)) + ")"
    head = f"INSERT INTO {table(_E)} ({', '.join(column(f) for f in _EVENT_FIELDS)}) VALUES "
    tail = f" ON CONFLICT ({column(_E.sg_event_id)}) DO NOTHING RETURNING {column(_E.sg_event_id)}"
    stored: set[str] = set()
    for start in range(0, len(rows), INSERT_BATCH):
        chunk = rows[start : start + INSERT_BATCH]
        params = [db_value(f, v) for r in chunk for f, v in zip(_EVENT_FIELDS, r, strict=True)]
        cursor = database.execute_sql(head + ", ".join([row] * len(chunk)) + tail, params)
        stored.update(event_id for (event_id,) in cursor.fetchall())
    return stored


class OutcomeRow(NamedTuple):
    job_id: UUID
    at: datetime
    reason: str | None


_J = NotificationJob


def apply_outcome(outcome: str, rows: Sequence[OutcomeRow]) -> int:
    """Give each job its ``outcome`` (with the event's time and reason) unless it already has
    one of the same or a higher rank; return how many jobs moved."""
    if not rows:
        return 0
    param = database.param
    values = ", ".join([f"({param}, {param}, {param})"] * len(rows))
    params = []
    for job_id, at, reason in rows:
        params += [_J.id.db_value(job_id), _J.delivery_outcome_at.db_value(at), reason]
    lower = outcomes_below(outcome)
    jobs = table(_J)
    current = f"{jobs}.{column(_J.delivery_outcome)}"
    replaceable = f"{current} IS NULL"
    if lower:
        replaceable += f" OR {current} IN ({', '.join([param] * len(lower))})"
    cursor = database.execute_sql(
        f"WITH v(id, at, reason) AS (VALUES {values}) "
        f"UPDATE {jobs} SET {column(_J.delivery_outcome)} = {param}, "
        f"{column(_J.delivery_outcome_at)} = CAST(v.at AS {sql_type(_J.delivery_outcome_at)}), "
        f"{column(_J.delivery_reason)} = v.reason "
        f"FROM v WHERE {jobs}.{column(_J.id)} = CAST(v.id AS {sql_type(_J.id)}) "
        f"AND ({replaceable}) RETURNING {jobs}.{column(_J.id)}",
        [*params, outcome, *lower],
    )
    return len(cursor.fetchall())


class SuppressRow(NamedTuple):
    email: str
    reason: str
    detail: str | None
    source: str


_S = Suppression
_SUPPRESS_FIELDS = (
    _S.email,
    _S.reason,
    _S.detail,
    _S.source,
    _S.soft_bounces,
    _S.suppressed_at,
    _S.created_at,
    _S.updated_at,
)


def suppress(rows: Sequence[SuppressRow], now: datetime) -> None:
    """Suppress each address (one row per address), keeping the first reason of an address
    already suppressed."""
    if not rows:
        return
    values = [(r.email, r.reason, r.detail, r.source, 0, now, now, now) for r in rows]
    current = table(_S)
    _upsert(
        values,
        f"{column(_S.reason)} = excluded.{column(_S.reason)}, "
        f"{column(_S.detail)} = excluded.{column(_S.detail)}, "
        f"{column(_S.source)} = excluded.{column(_S.source)}, "
        f"{column(_S.suppressed_at)} = excluded.{column(_S.suppressed_at)}, "
        f"{column(_S.updated_at)} = excluded.{column(_S.updated_at)} "
        f"WHERE {current}.{column(_S.suppressed_at)} IS NULL",
    )


class BlockRow(NamedTuple):
    email: str
    blocks: int
    detail: str | None


def count_blocks(rows: Sequence[BlockRow], now: datetime) -> None:
    """Add each address's blocks to its count; at :data:`BLOCKS_TO_SUPPRESS` it is suppressed
    (``blocked``)."""
    if not rows:
        return
    blocked = SuppressionReason.BLOCKED.value
    values = []
    for r in rows:
        over = r.blocks >= BLOCKS_TO_SUPPRESS
        reason, at = (blocked, now) if over else (None, None)
        values.append((r.email, reason, r.detail, "sendgrid:bounce", r.blocks, at, now, now))
    current = table(_S)
    count = f"{current}.{column(_S.soft_bounces)} + excluded.{column(_S.soft_bounces)}"
    unsuppressed = f"{current}.{column(_S.suppressed_at)} IS NULL"
    reaches = f"{unsuppressed} AND {count} >= {BLOCKS_TO_SUPPRESS}"
    _upsert(
        values,
        f"{column(_S.soft_bounces)} = {count}, "
        f"{column(_S.detail)} = excluded.{column(_S.detail)}, "
        f"{column(_S.reason)} = CASE WHEN {reaches} THEN '{blocked}' "
        f"ELSE {current}.{column(_S.reason)} END, "
        f"{column(_S.source)} = CASE WHEN {reaches} THEN excluded.{column(_S.source)} "
        f"ELSE {current}.{column(_S.source)} END, "
        f"{column(_S.suppressed_at)} = CASE WHEN {reaches} THEN excluded.{column(_S.updated_at)} "
        f"ELSE {current}.{column(_S.suppressed_at)} END, "
        f"{column(_S.updated_at)} = excluded.{column(_S.updated_at)}",
    )


def clear_blocks(emails: Sequence[str], now: datetime) -> None:
    """A delivery to each address: its blocks so far no longer count (unless suppressed)."""
    if not emails:
        return
    param = database.param
    database.execute_sql(
        f"UPDATE {table(_S)} SET {column(_S.soft_bounces)} = 0, {column(_S.updated_at)} = {param} "
        f"WHERE {column(_S.email)} IN ({', '.join([param] * len(emails))}) "
        f"AND {column(_S.soft_bounces)} > 0 AND {column(_S.suppressed_at)} IS NULL",
        [_S.updated_at.db_value(now), *emails],
    )


def _upsert(values: Sequence[tuple], on_conflict: str) -> None:
    param = database.param
    row = "(" + ", ".join([param] * len(_SUPPRESS_FIELDS)) + ")"
    for start in range(0, len(values), INSERT_BATCH):
        chunk = values[start : start + INSERT_BATCH]
        params = [db_value(f, v) for r in chunk for f, v in zip(_SUPPRESS_FIELDS, r, strict=True)]
        database.execute_sql(
            f"INSERT INTO {table(_S)} ({', '.join(column(f) for f in _SUPPRESS_FIELDS)}) "
            f"VALUES {', '.join([row] * len(chunk))} "
            f"ON CONFLICT ({column(_S.email)}) DO UPDATE SET {on_conflict}",
            params,
        )
