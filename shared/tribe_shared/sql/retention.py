"""Retention's write that the query builder cannot make: many jobs scrubbed, each with its own
content, in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from tribe_shared.db import database, is_postgres
from tribe_shared.models import NotificationJob
from tribe_shared.sql.run import column, db_value, sql_type, table

_J = NotificationJob


def scrub_jobs(rows: Sequence[tuple[UUID, dict]], now: datetime, *, finished: list[str]) -> int:
    """Give each job of ``rows`` (id, scrubbed content) that content, no address and
    ``scrubbed_at = now``, in one statement (an UPDATE joined to a VALUES list); jobs whose
    status is no longer one of ``finished`` are left alone. Returns the rows changed."""
    param = database.param
    values = ", ".join([f"({param}, {param})"] * len(rows))
    params = []
    for job_id, content in rows:
        params += [_J.id.db_value(job_id), db_value(_J.content, content)]
    content_type = "JSONB" if is_postgres() else "TEXT"
    statuses = ", ".join([param] * len(finished))
    jobs = table(_J)
    # The VALUES list as a subquery (its columns are column1, column2 in both databases), not a
    # WITH: SQLite's driver counts the rows of a statement only when it starts with UPDATE.
    cursor = database.execute_sql(
        f"UPDATE {jobs} SET {column(_J.content)} = CAST(runs.column2 AS {content_type}), "
        f"{column(_J.to_email)} = NULL, {column(_J.scrubbed_at)} = {param} "
        f"FROM (VALUES {values}) AS runs "
        f"WHERE {jobs}.{column(_J.id)} = CAST(runs.column1 AS {sql_type(_J.id)}) "
        f"AND {jobs}.{column(_J.status)} IN ({statuses})",
        [_J.scrubbed_at.db_value(now), *params, *finished],
    )
    return cursor.rowcount
