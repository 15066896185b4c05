"""Worker middleware: each message runs with its own pooled database connection."""

from __future__ import annotations

import dramatiq

from tribe_shared.db import database


class DatabaseConnections(dramatiq.Middleware):
    """Open a connection before each message and hand it back to the pool after."""

    def before_process_message(self, broker, message):
        database.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not database.is_closed():
            database.close()

    after_skip_message = after_process_message
