"""A job cancelled while its message waits on the broker is never sent, by real workers."""

from __future__ import annotations

import time
import uuid

from tests.faults.figures import figures_for, requests_for
from tests.support.deployment import DELIVERY_TIMEOUT, ids_of
from tests.support.waiting import settle
from tribe_shared import db
from tribe_shared.contract import JobStatus
from tribe_shared.models import NotificationJob


def test_a_cancelled_job_whose_message_is_already_queued_is_never_sent(deploy, sendgrid):
    # Given ten jobs on the broker and no worker yet
    system = deploy(worker=None)
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(10))
    cancelled, neighbours = job_ids[4], job_ids[:4] + job_ids[5:]

    # When one of them is cancelled in the database (DELETE /api/jobs comes with a later issue)
    with db.connection():
        changed = (
            NotificationJob.update(status=JobStatus.CANCELLED)
            .where(
                NotificationJob.id == uuid.UUID(cancelled),
                NotificationJob.status == JobStatus.QUEUED,
            )
            .execute()
        )
    assert changed == 1
    system.start_worker(1, 2)

    # Then its neighbours are sent, every message is consumed, and it never is
    done = settle(
        lambda: system.all_have(neighbours, JobStatus.SENT) and system.drained(),
        timeout=DELIVERY_TIMEOUT,
    )
    figures = figures_for("cancelled while queued", system, neighbours, started)
    assert done, (system.statuses(job_ids), system.queue_depths())
    assert requests_for(sendgrid, cancelled) == []
    assert system.statuses([cancelled]) == {JobStatus.CANCELLED: 1}
    assert (figures.lost, figures.duplicates) == (0, 0)
