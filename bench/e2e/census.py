"""Phase 3: every SQL statement the workers send for an email, counted from the server's log.

The same as phase 2 on a smaller batch, with ``log_statement = 'all'`` set for new sessions of
the bench database only (reset afterwards, also on error). ``pg_stat_statements`` would need
``shared_preload_libraries``, which the local server does not load; reading the log needs no
server change. Skipped when the log is not readable here (``--pg-log`` names it).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from e2e.api import individual_emails
from e2e.measure import EMAILS_QUEUE, accept_with_workers_stopped, check, drain
from e2e.rig import Rig
from e2e.store import Store

#: Where Debian's PostgreSQL writes its log.
PG_LOG_GLOB = "/var/log/postgresql/postgresql-*-main.log"

_STATEMENT = re.compile(r"\[(\d+)\] [^@\s]*@(\S+) LOG:  statement: (.*)")
_TABLE = re.compile(r'(?:FROM|INTO|UPDATE|JOIN)\s+"?(\w+)"?', re.IGNORECASE)


def measure(rig: Rig) -> dict:
    args, store = rig.args, rig.store
    log_path = find_pg_log(args.pg_log, store)
    if log_path is None:
        return {"skipped": "the PostgreSQL server log is not readable here (--pg-log)"}
    store.reset()
    rig.fake.configure(0)
    ids, _ = accept_with_workers_stopped(rig, individual_emails(args.census_emails, "cen"))
    census = logged_run(rig, ids, log_path, "census")
    return {"emails": census["jobs"], **census, "statements_per_email": census["per_job"]}


def logged_run(rig: Rig, ids: list[str], log_path: Path, phase: str) -> dict:
    """Start the workers on the ``ids`` waiting on the queue with every statement logged, until
    each is done; the statements they sent, counted (per job, by kind)."""
    store = rig.store
    offset = log_path.stat().st_size
    with statements_logged(rig):
        workers = rig.workers(f"workers_{phase}")
        drain(rig, workers, EMAILS_QUEUE, len(ids))
        workers.stop()
        store.wait_no_backends()
    check(rig, ids, phase)
    with log_path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    counts, backends = count_statements(text, store.database)
    n = len(ids)
    by_count = sorted(counts.items(), key=lambda kv: -kv[1])
    return {
        "jobs": n,
        "log": str(log_path),
        "backends": backends,
        "statements": sum(counts.values()),
        "per_job": round(sum(counts.values()) / n, 2),
        "by_kind": dict(by_count),
        "by_kind_per_email": {k: round(v / n, 3) for k, v in by_count},
    }


@contextlib.contextmanager
def statements_logged(rig: Rig) -> Iterator[None]:
    """``log_statement = 'all'`` for the bench database's new sessions, for the block; the
    rig's flag tells the final cleanup to reset it should this reset be cut short."""
    rig.store.set_log_statement("all")
    rig.log_statement_set = True
    try:
        yield
    finally:
        rig.store.set_log_statement(None)
        rig.log_statement_set = False


def find_pg_log(explicit: str | None, store: Store) -> Path | None:
    """``explicit``, else the server's current log file, else Debian's; None if unreadable."""
    candidates = [Path(explicit)] if explicit else []
    if not candidates:
        with store.cursor() as cur:
            cur.execute("SHOW server_version_num")
            major = int(cur.fetchone()[0]) // 10000
            with contextlib.suppress(Exception):
                cur.execute("SELECT pg_current_logfile()")
                current = cur.fetchone()[0]
                if current:
                    cur.execute("SHOW data_directory")
                    candidates.append(Path(cur.fetchone()[0]) / current)
        candidates.append(Path(f"/var/log/postgresql/postgresql-{major}-main.log"))
    for path in candidates:
        with contextlib.suppress(OSError), path.open("rb"):
            return path
    return None


def count_statements(log_text: str, database: str) -> tuple[dict[str, int], int]:
    """Statements logged for ``database``: counts by kind ("UPDATE notification_jobs", "BEGIN",
    ...) and the number of backends (connections) that sent them."""
    counts: dict[str, int] = {}
    pids = set()
    for line in log_text.splitlines():
        match = _STATEMENT.search(line)
        if not match or match.group(2) != database:
            continue
        pids.add(match.group(1))
        kind = statement_kind(match.group(3).strip())
        counts[kind] = counts.get(kind, 0) + 1
    return counts, len(pids)


def statement_kind(sql: str) -> str:
    """What a census row groups a statement under: its verb and table, or itself if short."""
    verb = sql.split(None, 1)[0].upper() if sql else "?"
    table = _TABLE.search(sql)
    if table and verb != "SET":
        kind = f"{verb} {table.group(1)}"
    else:
        kind = sql if len(sql) <= 40 else verb
    if verb == "UPDATE" and "RETURNING" in sql.upper():
        kind += " ... RETURNING"
    return kind
