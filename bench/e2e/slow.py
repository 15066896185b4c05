"""Phase 4: a batch of individual emails while SendGrid answers slowly, workers warm.

Each round sends one request of ``--slow-emails`` emails to the running API, the fake answering
after ``--slow-delay-ms``, and is timed from the request to the last job ``sent`` and recorded.
With T worker threads the lower bound is ceil(emails / T) x the delay.
"""

from __future__ import annotations

import statistics
import time

from e2e.api import individual_emails
from e2e.measure import deliver
from e2e.rig import Rig, Running

#: A short pause between rounds, so that each starts on a quiet machine.
PAUSE_BETWEEN_ROUNDS_S = 0.3


def measure(rig: Rig, running: Running) -> dict:
    args = rig.args
    rounds = []
    for number in range(1, args.slow_rounds + 1):
        rounds.append(_round(rig, running, number))
        print(
            f"  slow round {number}: {rounds[-1]['emails']} emails delivered and recorded "
            f"{rounds[-1]['delivered_s']:.3f} s after the request"
        )
        time.sleep(PAUSE_BETWEEN_ROUNDS_S)
    threads = args.processes * args.threads
    return {
        "emails": args.slow_emails,
        "delay_ms": args.slow_delay_ms,
        "rounds": rounds,
        "delivered_s_median": round(statistics.median(r["delivered_s"] for r in rounds), 3),
        "delivered_s_max": max(r["delivered_s"] for r in rounds),
        "lower_bound_s": round(-(-args.slow_emails // threads) * args.slow_delay_ms / 1000, 3),
    }


def _round(rig: Rig, running: Running, number: int) -> dict:
    rig.store.truncate_jobs()
    rig.fake.configure(rig.args.slow_delay_ms)
    emails = individual_emails(rig.args.slow_emails, f"slow{number - 1}")
    done = deliver(rig, running, emails, "the slow round")
    return {
        "round": number,
        "emails": len(done.ids),
        "accept_request_s": round(done.accept_s, 3),
        "delivered_s": done.delivered_s,
        "request_to_first_claim_s": round(done.outcome["first_claimed_at"] - done.sent_at, 3),
        "claim_to_done_s": done.claim_to_done_s,
        "fake_requests": done.fake["accepted"],
        "fake_duplicates": done.fake["duplicates"],
        "cpu": done.cpu,
        "outcome": done.outcome,
    }
