"""Inserting many rows at once: a request's jobs, an update's fan-out, a digest scan's jobs."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from uuid import UUID

from tribe_shared.db import database
from tribe_shared.models import (
    NotificationJob,
)
from tribe_shared.sql.run import (
    column,
    db_value,
    sql_type,
    table,
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
    head = f"INSERT INTO {table(model)} ({', '.join(column(f) for f in fields)}) VALUES "
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
        columns.append(column(field))
        if field.name in varying:
            values.append(f"CAST(runs.{column(field)} AS {sql_type(field)})")
        else:
            values.append(database.param)  # typed by its column, as INSERT ... SELECT does
            shared.append(db_value(field, template.__data__.get(field.name)))
    row = "(" + ", ".join([database.param] * len(per_row)) + ")"
    names = ", ".join(column(field) for field in per_row)
    tail = ' ON CONFLICT DO NOTHING RETURNING "id"' if skip_conflicts else ""
    written: set[UUID] = set()
    with database.atomic() if len(rows) > INSERT_BATCH else nullcontext():
        for start in range(0, len(rows), INSERT_BATCH):
            chunk = rows[start : start + INSERT_BATCH]
            cursor = database.execute_sql(
                f"WITH runs({names}) AS (VALUES {', '.join([row] * len(chunk))}) "
                f"INSERT INTO {table(NotificationJob)} ({', '.join(columns)}) "
                f"SELECT {', '.join(values)} FROM runs WHERE true{tail}",
                [value for values in chunk for value in values] + shared,
            )
            if skip_conflicts:
                written.update(NotificationJob.id.python_value(i) for (i,) in cursor.fetchall())
    return written
