"""The broker's dead letters, and replaying one."""

from __future__ import annotations

from uuid import UUID

import falcon
import redis

from tribe_api import jobs as job_service
from tribe_api.console.common import NOTICES, Page, log
from tribe_shared.contract import JobStatus
from tribe_shared.models import NotificationJob
from tribe_shared.redis_broker import forget_dead_letter, read_dead_letters


class DeadLettersPage(Page):
    """The newest dead-lettered messages of each queue, with the jobs they carried; replaying
    one retries its failed jobs (the job row is the truth: the message itself is never
    re-sent), and drops it."""

    def on_get(self, req, resp):
        session = self.session(req, resp)
        client = self.console.checks.redis_client
        letters, error = [], None
        if client is None:
            error = "No Redis (development, in-memory broker): no dead letters are kept."
        else:
            try:
                letters = read_dead_letters(client, self.console.settings.redis_namespace)
            except redis.RedisError as exc:
                log.warning("console: dead letters unreadable: %s", exc)
                error = "Redis is unreachable: the dead letters cannot be read now."
        self.render(
            resp,
            "console/dead_letters.html",
            session,
            letters=letters,
            error=error,
            page_notice=NOTICES.get(req.get_param("notice") or ""),
        )

    def on_post(self, req, resp):
        posted = self.form(req, resp)
        if posted is None:
            return
        session, form = posted
        location = form.get("location") or ""
        ids = [UUID(i) for i in (form.get("job_ids") or "").split(",") if i]
        now = self.console.clock()
        retried = 0
        for job in NotificationJob.select().where(
            NotificationJob.id.in_(ids), NotificationJob.status == JobStatus.FAILED
        ):
            try:
                job_service.retry_job(job, self.console.outbox, now)
                retried += 1
            except falcon.HTTPConflict:
                continue
        forget_dead_letter(self.console.outbox.broker, location or None)
        log.info(
            "console: %s replayed dead letter %s: %d job(s) retried",
            session.operator,
            location,
            retried,
            extra={"operator": session.operator, "action": "replay", "jobs": retried},
        )
        raise falcon.HTTPSeeOther("/admin/dead-letters?notice=replayed")
