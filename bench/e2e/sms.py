"""Phase 6: SMS notification jobs through the real workers and a fake Twilio.

One family (a user, a group) with a recipient per text, each with a phone (E.164,
``+14155550100 + n``) and a membership of the group on channels ``["sms"]``, written straight
into the bench database (fixtures, not timed). The notifications are accepted through
``POST /api/notifications`` (``delivery_method: sms``, one request and one job each, each text
different) with the workers stopped; then the API is stopped and the workers started, and the
rate is timed from the jobs' own timestamps, first claim -> last job ``sent`` with its
delivery-log row, as phase 2. The worker's real Twilio provider (the official ``twilio``
client) posts each text to ``bench/fake_twilio.py`` (``TWILIO_API_BASE_URL``);
``SMS_RATE_LIMIT_PER_SECOND`` is lifted as the email one is. PostgreSQL's work per text comes
from ``pg_stat`` deltas (workers only), and a second, smaller batch (``--sms-census``) counts
every statement from the server log, as phase 3.
"""

from __future__ import annotations

from common.safety import BenchError

from e2e.api import sms_notifications
from e2e.census import find_pg_log, logged_run
from e2e.individual import stats_delta
from e2e.measure import EMAILS_QUEUE, accept_with_workers_stopped, check, drain, rate_figures
from e2e.rig import Rig
from e2e.store import Store

#: The first recipient's phone; recipient n has this + n.
FIRST_PHONE = 14155550100


def measure(rig: Rig) -> dict:
    args, store = rig.args, rig.store
    recipients = seed_family(store, max(args.sms, args.sms_census))
    ids, accept_s = _accept(rig, recipients[: args.sms], "sms")
    before = store.pg_stats()
    workers = rig.workers("workers_sms")
    drained = drain(rig, workers, EMAILS_QUEUE, len(ids))
    workers.stop()
    store.wait_no_backends()
    delta = stats_delta(before, store.pg_stats())
    outcome = check(rig, ids, "sms")
    twilio = _checked_fakes(rig, len(ids))
    n = len(ids)
    return {
        "texts": n,
        **rate_figures(n, accept_s, outcome, workers.started_at, drained),
        "segments": _segments(store, ids),
        "fake": twilio,
        "pg_delta": delta,
        "pg_per_text": {k: round(v / n, 2) for k, v in delta["database"].items()},
        "pg_tables_per_text": {
            table: {k: round(v / n, 2) for k, v in values.items()}
            for table, values in delta["tables"].items()
        },
        "census": _census(rig, recipients[: args.sms_census]),
    }


def _accept(rig: Rig, recipients: list[tuple[str, str]], tag: str) -> tuple[list[str], float]:
    rig.store.reset()
    rig.fake.configure(0)
    rig.twilio.configure(0)
    return accept_with_workers_stopped(rig, sms_notifications(recipients, tag), notifications=True)


def _checked_fakes(rig: Rig, texts: int) -> dict:
    """The fake Twilio's counters: one accepted request per text, no duplicates, no email."""
    twilio, sendgrid = rig.twilio.stats(), rig.fake.stats()
    if twilio["accepted"] != texts or twilio["duplicates"] or sendgrid["requests"]:
        raise BenchError(f"sms: expected {texts} texts to Twilio alone: {twilio}, {sendgrid}")
    return twilio


def _census(rig: Rig, recipients: list[tuple[str, str]]) -> dict:
    if not recipients:
        return {"skipped": "disabled (--sms-census 0)"}
    log_path = find_pg_log(rig.args.pg_log, rig.store)
    if log_path is None:
        return {"skipped": "the PostgreSQL server log is not readable here (--pg-log)"}
    ids, _ = _accept(rig, recipients, "sms-census")
    census = logged_run(rig, ids, log_path, "sms_census")
    _checked_fakes(rig, len(ids))
    return census


def seed_family(store: Store, count: int) -> list[tuple[str, str]]:
    """A user with a group and ``count`` recipients in it on channels ``["sms"]``, each with a
    phone of its own (once: later calls find them); their (recipient id, group id)."""
    with store.cursor() as cur:
        cur.execute(
            f"""
            INSERT INTO users (id, created_at) VALUES (md5('sms-user')::uuid, now())
            ON CONFLICT DO NOTHING;
            INSERT INTO groups (id, owner_id, name, family_name, created_at)
            VALUES (md5('sms-group')::uuid, md5('sms-user')::uuid, 'Grandparents', 'The Smiths',
                    now())
            ON CONFLICT DO NOTHING;
            INSERT INTO recipients (id, owner_id, name, phone, created_at)
            SELECT md5('sms-recipient' || n)::uuid, md5('sms-user')::uuid, 'Reader ' || n,
                   '+' || ({FIRST_PHONE} + n)::text, now()
            FROM generate_series(0, {count - 1}) n
            ON CONFLICT DO NOTHING;
            INSERT INTO group_memberships (id, group_id, recipient_id, created_at, channels)
            SELECT md5('sms-membership' || n)::uuid, md5('sms-group')::uuid,
                   md5('sms-recipient' || n)::uuid, now(), '["sms"]'
            FROM generate_series(0, {count - 1}) n
            ON CONFLICT DO NOTHING;
            """
        )
        cur.execute(
            """
            SELECT m.recipient_id::text, m.group_id::text FROM group_memberships m
            JOIN recipients r ON r.id = m.recipient_id
            WHERE m.group_id = md5('sms-group')::uuid ORDER BY r.phone
            """
        )
        return cur.fetchall()[:count]


def _segments(store: Store, ids: list[str]) -> dict[str, int]:
    """How many texts took how many segments (the worker records it with the job ``sent``)."""
    with store.cursor() as cur:
        cur.execute(
            "SELECT coalesce(segments::text, 'none'), count(*) FROM notification_jobs "
            "WHERE id = ANY(%s::uuid[]) GROUP BY 1",
            (ids,),
        )
        return dict(cur.fetchall())
