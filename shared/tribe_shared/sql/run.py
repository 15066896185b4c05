"""Running hand-written statements: prebuilt or prepared, together in one round trip, with
values and names as the models define them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import NamedTuple
from weakref import WeakKeyDictionary

from peewee import Field, JSONField

from tribe_shared.db import behind_transaction_pooler, database, is_postgres

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

    Behind a transaction-mode pooler (:func:`tribe_shared.db.behind_transaction_pooler`) a
    prepared statement lives on a server connection the next transaction may not get: the same
    text is sent as a plain statement, parsed each time, its parameters cast as the
    ``PREPARE`` types them.
    """

    def __init__(self, name: str, types: Sequence[str], text: str):
        self.name = name
        self._prepare = f"PREPARE {name} ({', '.join(types)}) AS {text}"
        casts = ", ".join(f"%s::{kind}" for kind in types)  # psycopg2's placeholder
        self._execute = f"EXECUTE {name} ({casts})"
        #: The plain statement: each ``$n`` a cast placeholder, in the order they appear.
        self._order = [int(n) - 1 for n in re.findall(r"\$(\d+)", text)]
        self._plain = re.sub(
            r"\$(\d+)", lambda m: f"%s::{types[int(m.group(1)) - 1]}", text.replace("%", "%%")
        )

    def bind(self, params: Sequence) -> Statement:
        if behind_transaction_pooler():
            return Statement(self._plain, [params[i] for i in self._order])
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
    # JSON as plain text: both databases cast a text parameter into their JSON column. Compact,
    # as peewee's ``json()`` wrapping stores it on SQLite (PostgreSQL normalises jsonb itself).
    if isinstance(field, JSONField):
        return None if value is None else json.dumps(value, separators=(",", ":"))
    return field.db_value(value)


def table(model) -> str:
    return f'"{model._meta.table_name}"'


def column(field: Field) -> str:
    return f'"{field.column_name}"'


def sql_type(field: Field) -> str:
    """The column's type for a CAST of a parameter: PostgreSQL types VALUES lists by their
    first row and infers nothing from the target; SQLite keeps uuids and times as text."""
    if not is_postgres():
        return "TEXT"
    kind = field.field_type
    return {"UUID": "UUID", "DATETIME": "TIMESTAMP", "INT": "INTEGER", "SMALLINT": "SMALLINT"}.get(
        kind, "TEXT"
    )
