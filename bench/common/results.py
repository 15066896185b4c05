"""What a bench records beside its figures (the machine, the packages, the code) and where it
writes them: every figure of a run in ``<name>-<UTC stamp>.json``, the latest run, readable, in
``<name>.md``, both under ``bench/results/`` unless told otherwise."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common.cpu import cpu_count
from common.paths import ROOT, relative

#: The stack every bench that runs the API or the workers records the versions of.
STACK_PACKAGES = ("gunicorn", "falcon", "peewee", "psycopg2-binary", "dramatiq", "redis")


def utc_stamp(at: datetime | None = None) -> str:
    """The stamp in a result file's name, e.g. ``20261129T002252Z``."""
    return (at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class ResultFiles:
    """The files of one run of the bench ``name``."""

    directory: Path
    name: str
    stamp: str

    @property
    def raw(self) -> Path:
        return self.with_suffix(".json")

    @property
    def markdown(self) -> Path:
        return self.directory / f"{self.name}.md"

    def with_suffix(self, suffix: str) -> Path:
        """A file of this run only, e.g. ``.pyspy.txt``."""
        return self.directory / f"{self.name}-{self.stamp}{suffix}"

    def write(self, report: dict, markdown: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.raw.write_text(json.dumps(report, indent=2, default=str) + "\n")
        self.markdown.write_text(markdown)

    def publish(self, report: dict, markdown: str) -> None:
        """Write both files and show the markdown."""
        self.write(report, markdown)
        print()
        print(markdown)

    def run_fields(self, started: datetime, script: str, argv: list[str] | None) -> dict:
        """What a report says about its run: when, by which command, its raw file."""
        return {
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "command": " ".join([script, *(argv or sys.argv[1:])]),
            "json_file": relative(self.raw),
        }


def markdown_header(title: str, report: dict) -> list[str]:
    """The first lines of a run's markdown: the title, the run (see :meth:`ResultFiles.run_fields`)
    and the machine."""
    m = report["machine"]
    return [
        f"# {title} (latest run)",
        "",
        f"Run {report['started_at']} by `{report['command']}`; raw figures in "
        f"`{report['json_file']}`.",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), load average at start "
        f"{' / '.join(map(str, m['loadavg_at_start']))}, {m['platform']}",
    ]


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_basics(packages: Iterable[str]) -> dict:
    """The CPUs, Python, load, git revision and the versions of ``packages`` (distributions)."""
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": load_average(),
        "git": _git("describe", "--always", "--dirty").strip() or None,
        "packages": {d: package_version(d) for d in packages},
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def modified_product_files() -> list[str]:
    """Product files changed from the commit (the figures measure the working tree)."""
    out = _git("status", "--porcelain", "--", "services", "shared")
    return [line[3:] for line in out.splitlines() if line.strip()]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    ).stdout
