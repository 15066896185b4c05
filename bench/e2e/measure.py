"""How the phases wait and measure: draining a queue, delivering a batch, checking it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.cpu import cpu_between, cpu_sample
from common.processes import Process, wait_until
from common.safety import BenchError

from e2e.api import Api

if TYPE_CHECKING:
    from e2e.processes import Workers
    from e2e.rig import Rig, Running

#: The queue the API hands emails of normal urgency to.
EMAILS_QUEUE = "emails"


def cpu_per_unit(cpu: dict, units: int) -> dict:
    """A :func:`common.cpu.cpu_between` window per message or email, in microseconds."""
    units = max(1, units)
    return {
        "wall_s": round(cpu["wall_s"], 3),
        "us_per_unit": {k: round(v * 1e6 / units) for k, v in cpu["seconds"].items()},
        "cores": {k: round(v / cpu["wall_s"], 2) for k, v in cpu["seconds"].items()},
        "machine_busy_pct": round(100 * cpu["machine_busy"], 1),
        "other_cores": round(cpu["other_cores"], 2),
    }


def drain(rig: Rig, workers: Workers, queue: str, total: int, on_first=None) -> dict:
    """Poll until no message of ``queue`` is left: timings, and CPU from the first
    acknowledgement (when ``on_first`` is called) to the last."""
    store = rig.store
    first = first_left = first_sample = None
    while True:
        left = store.pending_messages(queue)
        now = time.monotonic()
        if first is None and left < total:
            first, first_left = now, left
            first_sample = cpu_sample(rig.cpu_groups(workers))
            if on_first is not None:
                on_first()
        if left == 0:
            break
        if not workers.alive():
            raise BenchError(f"{workers.name} exited\n{workers.log_tail()}")
        if time.time() - workers.started_at > rig.args.timeout:
            raise BenchError(
                f"{workers.name}: {left} of {total} messages left after "
                f"{rig.args.timeout:.0f} s\n{workers.log_tail()}"
            )
        time.sleep(0.005)
    done_wall = time.time()
    last_sample = cpu_sample(rig.cpu_groups(workers))
    window = max(1e-6, last_sample.at - first_sample.at)
    # The messages acknowledged after the first sample: those the window timed.
    done_in_window = first_left
    return {
        "from_start_s": round(done_wall - workers.started_at, 3),
        "first_ack_after_start_s": round(first - workers.started_mono, 3),
        "window_s": round(window, 3),
        "window_messages": done_in_window,
        "rate_per_s": round(done_in_window / window, 1),
        "cpu": cpu_per_unit(cpu_between(first_sample, last_sample), done_in_window),
        "done_at": done_wall,
    }


def wait_delivered(rig: Rig, count: int, workers: Process, what: str) -> None:
    """Until no message is left on the queue (cheap: Redis), then until all ``count`` jobs
    of the (freshly emptied) table are ``sent`` and logged."""
    store, timeout = rig.store, rig.args.timeout
    wait_until(
        lambda: store.pending_messages(EMAILS_QUEUE) == 0, timeout, what, 0.005, workers.log_tail
    )
    wait_until(lambda: store.sent_and_logged() >= count, timeout, what, 0.1, workers.log_tail)


def check(rig: Rig, ids: list[str], phase: str) -> dict:
    """The jobs' outcome, every one of them ``sent`` with its delivery-log row."""
    outcome = rig.store.outcome(ids)
    if outcome["sent_and_logged"] != len(ids):
        raise BenchError(f"{phase}: not every job was sent and logged: {outcome}")
    return outcome


def accept_with_workers_stopped(
    rig: Rig, emails: list[dict], notifications: bool = False
) -> tuple[list[str], float]:
    """Accept ``emails`` (send-bulk-email) or, with ``notifications``, those notifications (one
    ``POST /api/notifications`` each) through a fresh API, then stop it (its connections close,
    so their statistics are flushed): (job ids, seconds). Every job must wait ``queued``."""
    store = rig.store
    server = rig.api("api_accept")
    api = Api(server.port, rig.token)
    try:
        submit = api.accept_notifications if notifications else api.accept
        ids, accept_s, statuses = submit(emails)
    finally:
        api.close()
        server.stop()
    if statuses != {"queued"}:
        raise BenchError(f"accepted jobs should all be queued, got {statuses}")
    if not store.wait_no_backends():
        raise BenchError("the API's database connections did not close")
    waiting = store.waiting(EMAILS_QUEUE)
    by_status = store.jobs_by_status()
    if by_status != {"queued": len(ids)} or waiting != len(ids):
        raise BenchError(f"expected {len(ids)} queued jobs/messages: {by_status}, {waiting}")
    return ids, accept_s


@dataclass(frozen=True)
class Delivery:
    """A batch accepted by the running API and delivered by the running workers."""

    ids: list[str]
    #: When the first request was sent (epoch seconds, as the jobs' own timestamps).
    sent_at: float
    accept_s: float
    cpu: dict
    outcome: dict
    fake: dict

    @property
    def delivered_s(self) -> float:
        """First request sent -> last job ``sent`` and recorded."""
        return round(self.outcome["last_processed_at"] - self.sent_at, 3)

    @property
    def claim_to_done_s(self) -> float:
        return round(self.outcome["last_processed_at"] - self.outcome["first_claimed_at"], 3)


def deliver(rig: Rig, running: Running, emails: list[dict], what: str) -> Delivery:
    """Accept ``emails`` and wait until each is ``sent`` and logged, with the CPU it took."""

    def sample():
        return cpu_sample(rig.cpu_groups(running.workers, running.server))

    before = sample()
    sent_at = time.time()
    ids, accept_s, _ = running.api.accept(emails)
    wait_delivered(rig, len(ids), running.workers, what)
    cpu = cpu_between(before, sample())
    return Delivery(
        ids=ids,
        sent_at=sent_at,
        accept_s=accept_s,
        cpu=cpu_per_unit(cpu, len(ids)),
        outcome=check(rig, ids, what),
        fake=rig.fake.stats(),
    )


def rate_figures(n: int, accept_s: float, outcome: dict, started_at: float, drained: dict) -> dict:
    """The figures every delivery phase reports of ``n`` jobs: how fast the API accepted them,
    how fast the workers finished them (first claim to last job recorded), and the CPU."""
    window = outcome["last_processed_at"] - outcome["first_claimed_at"]
    return {
        "accept_s": round(accept_s, 3),
        "accept_per_s": round(n / accept_s, 1),
        "rate_per_s": round(n / window, 1),
        "window_s": round(window, 3),
        "from_start_s": round(outcome["last_processed_at"] - started_at, 3),
        "first_claim_after_start_s": round(outcome["first_claimed_at"] - started_at, 3),
        "polled": {k: drained[k] for k in ("window_s", "window_messages", "rate_per_s")},
        "cpu": drained["cpu"],
        "outcome": outcome,
    }
