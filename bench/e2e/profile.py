"""``--py-spy``: a profile of the workers, from py-spy's collapsed stacks."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path

from common.processes import Process


class PySpy:
    """``py-spy record`` on the worker master and its children, GIL holders only, collapsed
    stacks; :meth:`finish` stops it (SIGINT: it writes its file) and summarises."""

    def __init__(self, binary: str, workers: Process, workdir: Path):
        self.output = workdir / "workers.pyspy.txt"
        cmd = [binary, "record", "--pid", str(workers.proc.pid), "--subprocesses", "--gil"]
        cmd += ["--nonblocking", "--nolineno", "--rate", "250", "--format", "raw"]
        cmd += ["--output", str(self.output)]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def finish(self) -> dict | None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return None
        with contextlib.suppress(OSError):
            return summarize_profile(self.output.read_text(errors="replace"))
        return None


def summarize_profile(raw: str, top: int = 80) -> dict:
    """Inclusive and self share of samples per function from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        if frames:
            leaf[frames[-1]] = leaf.get(frames[-1], 0) + n

    def share(counts: dict[str, int]) -> list[list]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [[frame, round(100 * n / max(1, total), 1)] for frame, n in best]

    return {"samples": total, "inclusive_pct": share(inclusive), "self_pct": share(leaf)}
