"""What a fault scenario measured: counted from the fake SendGrid's record and the job rows,
printed so a run shows it, collected in ``var/faults/figures.json`` and, with
``FAULTS_RECORD=1``, in ``tests/faults/results/figures.json``, which ``docs/RELIABILITY.md`` cites
(``python -m tests.faults.table`` prints them as its tables).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.support.deployment import Deployment
from tests.support.fakes.sendgrid import FakeSendGrid
from tests.support.processes import REPO
from tribe_shared.contract import JobStatus

#: Where every run collects its figures, and where ``FAULTS_RECORD=1`` also writes them.
FIGURES_FILE = REPO / "var" / "faults" / "figures.json"
RECORDED_FIGURES_FILE = REPO / "tests" / "faults" / "results" / "figures.json"


@dataclass
class Figures:
    """What a reliability scenario measured, printed so a run shows it."""

    scenario: str
    accepted: int = 0
    sent: int = 0
    lost: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def report(self) -> Figures:
        more = "".join(f" {key}={value}" for key, value in self.extra.items())
        print(
            f"\n[reliability {self.scenario}] accepted={self.accepted} sent={self.sent} "
            f"lost={self.lost} duplicates={self.duplicates} seconds={self.seconds:.2f}{more}"
        )
        files = [FIGURES_FILE]
        if os.environ.get("FAULTS_RECORD") == "1":
            files.append(RECORDED_FIGURES_FILE)
        for path in files:
            record_figures(path, self)
        return self


def record_figures(path: Path, figures: Figures) -> None:
    """Set ``figures.scenario``'s entry of the JSON file at ``path`` (other entries stay)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        everything = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        everything = {}
    everything[figures.scenario] = {
        "accepted": figures.accepted,
        "sent": figures.sent,
        "lost": figures.lost,
        "duplicates": figures.duplicates,
        "seconds": round(figures.seconds, 2),
        **{key: _plain(value) for key, value in figures.extra.items()},
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path.write_text(json.dumps(dict(sorted(everything.items())), indent=2) + "\n")


def _plain(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def delivered(fake: FakeSendGrid, job_ids: Iterable[str]) -> Counter:
    """How many times the fake accepted (202) each of ``job_ids``."""
    wanted = {str(job_id) for job_id in job_ids}
    return Counter(job_id for job_id in fake.job_ids if job_id in wanted)


def requests_for(sendgrid: FakeSendGrid, job_id: str) -> list:
    """Every request the fake received that carried ``job_id``, in order."""
    return [r for r in sendgrid.requests if job_id in r.job_ids]


def figures_for(
    scenario: str,
    deployment: Deployment,
    job_ids: Sequence[str],
    started: float,
    **extra,
) -> Figures:
    """accepted / sent (rows) / lost (accepted, never accepted by the fake) / duplicates."""
    counts = delivered(deployment.sendgrid, job_ids)
    return Figures(
        scenario,
        accepted=len(job_ids),
        sent=deployment.statuses(job_ids)[JobStatus.SENT],
        lost=sum(1 for job_id in job_ids if counts[str(job_id)] == 0),
        duplicates=sum(count - 1 for count in counts.values() if count > 1),
        seconds=time.monotonic() - started,
        extra=extra,
    ).report()
