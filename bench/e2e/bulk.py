"""Phase 5: emails with identical content, workers warm.

The API batches them (one message, then one SendGrid request of at most 1,000
personalizations); timed from the first of the requests of 1,000 to the last job ``sent`` and
recorded.
"""

from __future__ import annotations

from e2e.api import identical_emails, requests_for
from e2e.measure import deliver
from e2e.rig import Rig, Running


def measure(rig: Rig, running: Running) -> dict:
    args = rig.args
    rig.fake.configure(args.bulk_delay_ms)
    rig.store.truncate_jobs()
    done = deliver(rig, running, identical_emails(args.bulk_emails, "bulk"), "the bulk emails")
    return {
        "emails": len(done.ids),
        "requests_to_api": requests_for(len(done.ids)),
        "delay_ms": args.bulk_delay_ms,
        "accept_s": round(done.accept_s, 3),
        "delivered_s": done.delivered_s,
        "claim_to_done_s": done.claim_to_done_s,
        "cpu": done.cpu,
        "outcome": done.outcome,
        "fake": done.fake,
    }
