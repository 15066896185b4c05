"""What the phases read from the bench database: the jobs' outcome and PostgreSQL's counters."""

from __future__ import annotations

import contextlib

from common.store import BenchStore

#: ``pg_stat_user_tables`` columns kept for the job tables.
TABLE_COUNTERS = (
    "seq_scan",
    "seq_tup_read",
    "idx_scan",
    "idx_tup_fetch",
    "n_tup_ins",
    "n_tup_upd",
    "n_tup_hot_upd",
)


class Store(BenchStore):
    """The bench database and namespace, plus what the phases read from them."""

    def jobs_by_status(self) -> dict[str, int]:
        with self.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM notification_jobs GROUP BY status")
            return dict(cur.fetchall())

    def outcome(self, job_ids: list[str] | None = None) -> dict:
        """Statuses, log rows and timings (epoch seconds) of the jobs (all when None)."""
        where, params = ("WHERE j.id = ANY(%s::uuid[])", (job_ids,)) if job_ids else ("", ())
        with self.cursor() as cur:
            cur.execute(
                f"""
                SELECT count(*),
                       count(*) FILTER (WHERE j.status = 'sent'),
                       count(*) FILTER (WHERE j.status = 'sent' AND EXISTS (
                           SELECT 1 FROM notification_delivery_logs l
                           WHERE l.job_id = j.id AND l.status = 'sent')),
                       extract(epoch FROM min(j.claimed_at)),
                       extract(epoch FROM max(j.processed_at)),
                       max(j.attempts),
                       sum(j.retry_count)
                FROM notification_jobs j {where}
                """,
                params,
            )
            total, sent, recorded, first_claim, last_done, attempts, retries = cur.fetchone()
            cur.execute(
                f"""
                SELECT count(*), count(DISTINCT l.job_id), count(DISTINCT l.provider_message_id)
                FROM notification_delivery_logs l
                {"WHERE l.job_id = ANY(%s::uuid[])" if job_ids else ""}
                """,
                params,
            )
            log_rows, logged_jobs, provider_calls = cur.fetchone()
            cur.execute(
                f"SELECT j.status, count(*) FROM notification_jobs j {where} GROUP BY j.status",
                params,
            )
            by_status = dict(cur.fetchall())
        return {
            "jobs": total,
            "sent": sent,
            "sent_and_logged": recorded,
            "by_status": by_status,
            "log_rows": log_rows,
            "logged_jobs": logged_jobs,
            "provider_message_ids": provider_calls,
            "max_attempts": attempts,
            "retries": int(retries or 0),
            "first_claimed_at": float(first_claim) if first_claim is not None else None,
            "last_processed_at": float(last_done) if last_done is not None else None,
        }

    def sent_and_logged(self) -> int:
        """Jobs ``sent`` with a ``sent`` delivery-log row."""
        with self.cursor() as cur:
            cur.execute(
                """
                SELECT count(*) FROM notification_jobs j
                WHERE j.status = 'sent' AND EXISTS (
                    SELECT 1 FROM notification_delivery_logs l
                    WHERE l.job_id = j.id AND l.status = 'sent')
                """
            )
            return cur.fetchone()[0]

    def pg_stats(self) -> dict:
        """``pg_stat_database`` of the bench database and ``pg_stat_user_tables`` of the two job
        tables, after flushing this connection's own pending counts (PostgreSQL 15+)."""
        with self.cursor() as cur:
            with contextlib.suppress(Exception):
                cur.execute("SELECT pg_stat_force_next_flush()")
            cur.execute(
                """
                SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,
                       tup_updated, tup_deleted, blks_hit, blks_read
                FROM pg_stat_database WHERE datname = %s
                """,
                (self.database,),
            )
            names = [d[0] for d in cur.description]
            database = dict(zip(names, map(int, cur.fetchone()), strict=True))
            cur.execute(
                """
                SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0),
                       coalesce(idx_tup_fetch, 0), n_tup_ins, n_tup_upd, n_tup_hot_upd
                FROM pg_stat_user_tables
                WHERE relname IN ('notification_jobs', 'notification_delivery_logs')
                """
            )
            tables = {
                row[0]: dict(zip(TABLE_COUNTERS, map(int, row[1:]), strict=True))
                for row in cur.fetchall()
            }
        return {"database": database, "tables": tables}

    def set_log_statement(self, value: str | None) -> None:
        """``log_statement`` for new sessions of the bench database only (None: the default)."""
        admin = self.admin()
        try:
            with admin.cursor() as cur:
                if value is None:
                    cur.execute(f'ALTER DATABASE "{self.database}" RESET log_statement')
                else:
                    cur.execute(
                        f'ALTER DATABASE "{self.database}" SET log_statement = %s', (value,)
                    )
        finally:
            admin.close()
