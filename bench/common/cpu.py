"""CPU time per process group, read from ``/proc``: where a bench's work goes, and how much
the rest of the machine (other sessions: noise) took meanwhile."""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_ticks(pids: Iterable[int]) -> dict[int, int]:
    """utime + stime of each process, in clock ticks."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def machine_busy_ticks() -> int:
    """Ticks all CPUs spent not idle (nor waiting for I/O) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4]


def children_seconds() -> float:
    """CPU seconds of the children this process has reaped (e.g. a load generator)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class CpuSample:
    """CPU ticks of each process of each group, and of the whole machine, at one instant."""

    at: float
    groups: dict[str, dict[int, int]]
    machine: int


def cpu_sample(groups: dict[str, Iterable[int]]) -> CpuSample:
    return CpuSample(
        at=time.monotonic(),
        groups={name: process_ticks(pids) for name, pids in groups.items()},
        machine=machine_busy_ticks(),
    )


def cpu_between(before: CpuSample, after: CpuSample, extra: dict[str, float] | None = None) -> dict:
    """CPU seconds each group used between two samples (a process born in between counts from
    its birth), plus the ``extra`` seconds given by name; ``other`` = the rest of the machine
    (other sessions: noise), and ``machine_busy`` (0..1 of all CPUs)."""
    wall = max(1e-9, after.at - before.at)
    seconds = {}
    for name, now in after.groups.items():
        then = before.groups.get(name, {})
        seconds[name] = sum(ticks - then.get(pid, 0) for pid, ticks in now.items()) / CLK_TCK
    seconds.update(extra or {})
    busy = (after.machine - before.machine) / CLK_TCK
    seconds["other"] = max(0.0, busy - sum(seconds.values()))
    return {
        "wall_s": wall,
        "seconds": seconds,
        "machine_busy": busy / wall / cpu_count(),
        "other_cores": seconds["other"] / wall,
    }


class CpuMeter:
    """CPU seconds used during a block by each process group (``groups()`` names them, read at
    entry and exit), by the children this process reaped meanwhile (``children_label``, e.g.
    the load generator), and by everything else on the machine (``other``: noise)."""

    def __init__(
        self,
        groups: Callable[[], dict[str, list[int]]],
        children_label: str | None = "load_generator",
    ):
        self._groups = groups
        self._children_label = children_label

    def __enter__(self):
        self._before = cpu_sample(self._groups())
        self._children = children_seconds()
        return self

    def __exit__(self, *exc):
        after = cpu_sample(self._groups())
        extra = {}
        if self._children_label:
            extra[self._children_label] = children_seconds() - self._children
        cpu = cpu_between(self._before, after, extra)
        self.wall = cpu["wall_s"]
        self.seconds = cpu["seconds"]
        self.machine_busy = cpu["machine_busy"]
        return False
