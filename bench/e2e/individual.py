"""Phase 2: emails with different content (never batched), the workers started after them.

The emails are accepted through ``send-bulk-email`` with the workers stopped, then the API is
stopped and the workers started: the rate is timed from the jobs' own timestamps, first claim
-> last job ``sent`` with its delivery-log row (also from the workers' start). PostgreSQL's
work per email comes from ``pg_stat_database`` and ``pg_stat_user_tables`` deltas taken with
only the workers connected (they are stopped before the second snapshot, so every backend has
flushed its counters). ``--py-spy`` profiles the workers from their first acknowledgement.
"""

from __future__ import annotations

from e2e.api import individual_emails
from e2e.measure import EMAILS_QUEUE, accept_with_workers_stopped, check, drain, rate_figures
from e2e.profile import PySpy
from e2e.rig import Rig


def measure(rig: Rig) -> dict:
    args, store = rig.args, rig.store
    store.reset()
    rig.fake.configure(0)
    ids, accept_s = accept_with_workers_stopped(rig, individual_emails(args.emails, "ind"))
    before = store.pg_stats()
    workers = rig.workers("workers_individual")
    profiler = None

    def profile():
        nonlocal profiler
        if args.py_spy:
            profiler = PySpy(args.py_spy, workers, rig.workdir)

    drained = drain(rig, workers, EMAILS_QUEUE, len(ids), on_first=profile)
    profile_summary = profiler.finish() if profiler else None
    if profiler is not None and profiler.output.exists():
        rig.profile_raw = profiler.output
    workers.stop()
    store.wait_no_backends()
    delta = stats_delta(before, store.pg_stats())
    outcome = check(rig, ids, "individual")
    n = len(ids)
    return {
        "emails": n,
        **rate_figures(n, accept_s, outcome, workers.started_at, drained),
        "fake": rig.fake.stats(),
        "pg_delta": delta,
        "pg_per_email": {k: round(v / n, 2) for k, v in delta["database"].items()},
        "pg_tables_per_email": {
            table: {k: round(v / n, 2) for k, v in values.items()}
            for table, values in delta["tables"].items()
        },
        "profile": profile_summary,
    }


def stats_delta(before: dict, after: dict) -> dict:
    """What :meth:`e2e.store.Store.pg_stats` counted between two snapshots."""
    return {
        "database": {k: after["database"][k] - before["database"][k] for k in after["database"]},
        "tables": {
            table: {k: v - before["tables"].get(table, {}).get(k, 0) for k, v in values.items()}
            for table, values in after["tables"].items()
        },
    }
