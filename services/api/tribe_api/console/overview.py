"""The overview (``/admin``): the broker, the circuits, the jobs' health, the last hour's
chart, the scheduler's ticks and the last bulk actions.
"""

from __future__ import annotations

from tribe_api.console import reads
from tribe_api.console.common import Page, log
from tribe_api.system_state import SCHEDULER_LATE_SECONDS, JobCounts, read_job_health
from tribe_shared.contract import PERIODIC_ACTORS
from tribe_shared.models import BulkAction


class OverviewPage(Page):
    def on_get(self, req, resp):
        session = self.session(req, resp)
        checks = self.console.checks
        now = self.console.clock()
        redis_health = checks.redis()
        state, warnings = checks.broker(redis_health)
        if not redis_health["configured"]:
            warnings = []
        try:
            health = read_job_health(now)
            chart = reads.per_minute(now)
        except Exception as exc:  # whatever the database raised, the jobs are unreadable
            log.warning("console: jobs unreadable: %s: %s", type(exc).__name__, exc)
            health, chart = JobCounts(), reads.MinuteCounts()
            warnings.insert(0, "Jobs unreadable (see the API's log)")
        else:
            warnings = checks.jobs(health) + warnings
        ticks = []
        for task in PERIODIC_ACTORS:
            at = state.last_runs.get(task) if state else None
            age = now.timestamp() - at if at else None
            ticks.append(
                {
                    "task": task.value,
                    "at": at,
                    "age": age,
                    "late": age is None or age > SCHEDULER_LATE_SECONDS,
                }
            )
        oldest = health.oldest_pending_since
        self.render(
            resp,
            "console/overview.html",
            session,
            redis=redis_health,
            state=state,
            ticks=ticks,
            warnings=warnings,
            oldest_pending=oldest,
            oldest_age=health.oldest_pending_age(now) if oldest else None,
            processed=health.processed_recently,
            chart=chart,
            now=now,
            actions=list(BulkAction.select().order_by(BulkAction.created_at.desc()).limit(5)),
        )
