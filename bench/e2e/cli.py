"""The command line of ``bench/e2e_email.py``: its options, the phases in order, the results."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from common.options import add_store_options, check_store_options
from common.paths import relative
from common.results import (
    STACK_PACKAGES,
    ResultFiles,
    load_average,
    machine_basics,
    modified_product_files,
    utc_stamp,
)
from common.safety import run_guarded, single_run_lock

import e2e
from e2e import bulk, census, individual, noop, slow, sms
from e2e.api import BULK_MAX
from e2e.census import PG_LOG_GLOB
from e2e.report import render_markdown, verdict
from e2e.rig import Rig
from e2e.store import Store

NAME = "e2e_email"
#: Versions recorded with the figures.
PACKAGES = (*STACK_PACKAGES, "sendgrid", "python-http-client", "twilio", "jinja2", "pydantic")
#: The batch sizes: option -> (default, largest, help).
COUNTS = {
    "--noop-messages": (20_000, 200_000, "baseline messages"),
    "--emails": (3_000, 50_000, "individual emails (phase 2)"),
    "--census-emails": (500, 5_000, "0 skips the census"),
    "--slow-emails": (100, BULK_MAX, "emails per slow round"),
    "--bulk-emails": (10_000, 100_000, "identical emails (phase 5)"),
    "--sms": (3_000, 50_000, "SMS notifications (phase 6)"),
    "--sms-census": (500, 5_000, "SMS of phase 6's statement census; 0 skips it"),
}
#: The phases, in the order they run.
PHASES = ("noop", "individual", "census", "slow", "bulk", "sms")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=e2e.__doc__.splitlines()[0])
    add_store_options(p, "tribe_bench_e2e")
    p.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=8, help="threads per worker process (8)")
    p.add_argument("--api-workers", type=int, default=2, help="WEB_CONCURRENCY of the API")
    p.add_argument("--api-threads", type=int, default=4, help="GUNICORN_THREADS of the API")
    for option, (default, _, help_text) in COUNTS.items():
        p.add_argument(option, type=int, default=default, help=help_text)
    p.add_argument("--slow-delay-ms", type=float, default=50.0, help="fake's answer delay")
    p.add_argument("--slow-rounds", type=int, default=3, help="rounds of the slow phase")
    p.add_argument("--bulk-delay-ms", type=float, default=0.0, help="fake's delay for bulk")
    p.add_argument("--timeout", type=float, default=120.0, help="longest wait of any phase (s)")
    p.add_argument("--pg-log", help=f"PostgreSQL server log for the census ({PG_LOG_GLOB})")
    p.add_argument(
        "--py-spy",
        metavar="PATH",
        help="py-spy binary: profile the workers of phase 2 (only threads holding the GIL)",
    )
    p.add_argument("--quick", action="store_true", help="smaller batches, one slow round")
    p.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"the phases to run, comma-separated, e.g. sms (default {','.join(PHASES)})",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.noop_messages, args.emails, args.census_emails = 5_000, 1_000, 200
        args.slow_rounds, args.bulk_emails = 1, 3_000
        args.sms, args.sms_census = 1_000, 200
    args.phases = [name.strip() for name in args.phases.split(",") if name.strip()]
    unknown = sorted(set(args.phases) - set(PHASES))
    if unknown or not args.phases:
        p.error(f"--phases takes some of {', '.join(PHASES)}, not {', '.join(unknown) or 'none'}")
    args.phases = [name for name in PHASES if name in args.phases]
    check_store_options(p, args)
    _check_sizes(p, args)
    return args


def _check_sizes(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.processes <= 8 or not 1 <= args.threads <= 64:
        p.error("--processes must be 1..8 and --threads 1..64")
    for option, (_, most, _) in COUNTS.items():
        if not 0 <= getattr(args, option[2:].replace("-", "_")) <= most:
            p.error(f"{option} must be 0..{most}")
    if min(args.emails, args.slow_emails, args.bulk_emails, args.noop_messages, args.sms) < 1:
        p.error("every batch needs at least one message")
    if not 1 <= args.slow_rounds <= 10 or not 5 <= args.timeout <= 600:
        p.error("--slow-rounds must be 1..10 and --timeout 5..600")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lock = single_run_lock(args.database)  # noqa: F841 - held until the process exits
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="tribe-bench-e2e-"))
    store = Store(args.postgres_url, args.database, args.redis_url, args.namespace)
    rig = Rig(args, store, workdir)
    files = ResultFiles(args.results, NAME, utc_stamp(started))

    def run() -> None:
        rig.setup()
        info = {
            **machine_basics(PACKAGES),
            **store.server_versions(),
            "modified_code": modified_product_files(),
        }
        print(
            f"{info['nproc']} CPUs, Python {info['python']}, load {info['loadavg_at_start']}, "
            f"fake SendGrid on {rig.fake.url}, fake Twilio on {rig.twilio.url}"
        )
        report = build_report(rig, argv, started, files, info, run_phases(rig))
        files.publish(report, render_markdown(report))

    def cleanup() -> None:
        rig.stop_all()
        if rig.log_statement_set:
            with contextlib.suppress(Exception):
                store.set_log_statement(None)
        store.close(drop=not args.keep_db)

    return run_guarded(run, cleanup, workdir)


def run_phases(rig: Rig) -> dict:
    """The phases chosen (``--phases``, all by default) in order, each printing its headline."""
    args = rig.args
    chosen = set(args.phases)
    phases = {}
    if "noop" in chosen:
        phases["noop"] = noop.measure(rig)
        print(f"  1. no-op baseline: {phases['noop']['rate_per_s']:,.0f} messages/s")
    if "individual" in chosen:
        ind = phases["individual"] = individual.measure(rig)
        print(
            f"  2. individual: {ind['rate_per_s']:,.0f} emails/s "
            f"({ind['emails']} in {ind['window_s']:.2f} s; from worker start "
            f"{ind['from_start_s']:.2f} s); {ind['pg_per_email']['xact_commit']} commits/email"
        )
    if "census" in chosen:
        phases["census"] = census.measure(rig) if args.census_emails else {"skipped": "disabled"}
        if "skipped" not in phases["census"]:
            print(f"  3. census: {phases['census']['statements_per_email']} statements/email")
    if chosen & {"slow", "bulk"}:
        with rig.running(args.slow_delay_ms) as running:
            if "slow" in chosen:
                phases["slow"] = slow.measure(rig, running)
                print(f"  4. slow: median {phases['slow']['delivered_s_median']:.3f} s")
            if "bulk" in chosen:
                phases["bulk"] = bulk.measure(rig, running)
                print(f"  5. bulk: {phases['bulk']['delivered_s']:.2f} s")
    if "sms" in chosen:
        text = phases["sms"] = sms.measure(rig)
        statements = text["census"].get("per_job", "-")
        print(
            f"  6. sms: {text['rate_per_s']:,.0f} texts/s ({text['texts']} in "
            f"{text['window_s']:.2f} s); {text['pg_per_text']['xact_commit']} commits/text, "
            f"{statements} statements/text"
        )
    return phases


def build_report(
    rig: Rig, argv, started: datetime, files: ResultFiles, info: dict, phases: dict
) -> dict:
    """Everything the JSON file holds; the py-spy output is copied beside it."""
    args = rig.args
    report = {
        **files.run_fields(started, "bench/e2e_email.py", argv),
        "machine": {**info, "loadavg_at_end": load_average()},
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "dramatiq_env": {k: v for k, v in os.environ.items() if k.startswith("dramatiq_")},
            "worker_command": rig.worker_command(),
        },
        "phases": phases,
        "verdict": verdict(phases),
    }
    profile = phases.get("individual", {}).get("profile")
    if rig.profile_raw is not None and profile:
        files.directory.mkdir(parents=True, exist_ok=True)
        raw_path = files.with_suffix(".pyspy.txt")
        shutil.copyfile(rig.profile_raw, raw_path)
        profile["raw_file"] = relative(raw_path)
    return report
