"""Print the fault suite's recorded figures as the Markdown tables of ``docs/RELIABILITY.md``.

    .venv/bin/python -m tests.faults.table [figures.json]

The criteria are the ones each scenario asserts; the figures are the last recorded run's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.faults.figures import RECORDED_FIGURES_FILE

#: Scenario (as each test reports it) → what it asserts, in the order of the table.
CRITERIA = {
    "worker SIGKILLed 5 times under 1,000 jobs": "0 lost; duplicates ⊆ jobs SendGrid had accepted "
    "but we had not recorded at each kill; 0 left `processing`",
    "worker SIGKILLed mid-batch": "0 lost; every duplicate accepted by SendGrid before the kill",
    "SIGTERM during load (main process)": "exit 0, nothing left `processing`; 0 lost, 0 duplicates",
    "SIGTERM during load (process group)": "same, SIGTERM to every process at once",
    "poison job kills its worker": "`failed` after ≤ 3 deliveries (counted in the row); the other "
    "300 sent",
    "Redis down while accepting and sending": "API 202 `pending`, p99 < 1 s; workers live on; all "
    "sent exactly once after",
    "Redis down while accepting": "200 `pending`, relayed once, sent exactly once",
    "Redis flushed with 500 jobs queued": "0 lost; the reaper re-hands only jobs whose message "
    "is gone, each once (re-hands ≤ jobs queued at the flush)",
    "two relays at once (threads)": "600 jobs on the broker exactly once; sent exactly once",
    "two relay ticks in worker processes": "same, through two tick messages on two processes",
    "PostgreSQL stopped": "API 503 JSON + `Retry-After` < 5 s; 0 failed, 0 retries used, 0 dead "
    "letters (`MAX_RETRIES=0`); 0 lost; 0 duplicates",
    "provider 500s, circuit breaker": "circuit opens across 2 processes; ≤ 1 probe per half-open "
    "interval; retries = calls answered 500; 0 failed; drained after",
    "429 with reset": "no call from any process before `X-RateLimit-Reset`; 0 failed; a 400 fails "
    "its job at once",
    "provider hangs": "each held call ends at the client timeout ≤ 10 s, transient; circuit stops "
    "more calls; 0 failed",
    "provider resets connections": "5 resets → 5 transient failures, retried; sent exactly once",
    "two schedulers for 3 ticks (digests)": "exactly one digest job per schedule per period, each "
    "sent once",
    "priority": "5 urgent jobs among the first 30 sent of 305",
    "global rate limit": "no 0.95 s window above 20 calls across 2 processes",
    "priority at the rate limit 10/s": "2 processes of 8 threads, 160 normal jobs, 5 urgent "
    "arriving with 140 waiting: each urgent one sent before ≤ 10% of them, in every repetition; "
    "no 1 s window of the limiter's log above the limit",
    "priority at the rate limit 50/s": "same at 50/s: 300 normal jobs, 5 urgent arriving with "
    "200 waiting",
    "priority after the circuit closes": "50/s, 150 normal jobs and 5 urgent held at the open "
    "circuit during a SendGrid outage: each urgent one sent before ≤ 15 normal ones after "
    "recovery, in every repetition; the limit as above",
    "cancelled while queued": "the cancelled job never sent; its neighbours sent",
    "defaults: worker-sigkilled": "0 lost; recovery = lease (600 s) + the scheduler's next tick",
    "defaults: redis-down-60s": "0 lost; recovery = the scheduler's next tick; periodiq lives on",
}
#: Figures every scenario reports, shown in their own columns.
COMMON = ("accepted", "sent", "lost", "duplicates", "seconds", "measured_at")


def table(figures: dict) -> str:
    rows = [
        "| scenario | pass criteria | accepted | sent | lost | dup. | seconds | also measured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = [name for name in CRITERIA if name in figures]
    order += sorted(name for name in figures if name not in CRITERIA)
    for name in order:
        f = figures[name]
        extra = "; ".join(f"{k} {_short(v)}" for k, v in f.items() if k not in COMMON)
        rows.append(
            f"| {name} | {CRITERIA.get(name, '')} | {f['accepted']} | {f['sent']} | {f['lost']} "
            f"| {f['duplicates']} | {f['seconds']} | {extra} |"
        )
    return "\n".join(rows)


def _short(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RECORDED_FIGURES_FILE
    print(table(json.loads(path.read_text())))
