"""Worker middleware: each message runs with its own pooled database connection."""

from __future__ import annotations

import contextlib

import dramatiq

from tribe_shared.db import DATABASE_DOWN_ERRORS, database


class DatabaseConnections(dramatiq.Middleware):
    """Open a connection before each message and hand it back to the pool after."""

    def before_process_message(self, broker, message):
        # An unreachable database is not the message's fault: raised here, it would use up one
        # of its retries. The actor meets the outage at its first statement (peewee connects
        # on demand) and decides; a delivery waits without counting a retry.
        with contextlib.suppress(DATABASE_DOWN_ERRORS):
            database.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not database.is_closed():
            database.close()

    after_skip_message = after_process_message
