"""The results of a run: the targets met or missed, and the latest run as markdown."""

from __future__ import annotations

from common.results import markdown_header

from e2e.api import BULK_MAX, requests_for

TARGET_INDIVIDUAL_PER_S = 500.0
TARGET_SLOW_S = 1.0
TARGET_BULK_S = 10.0

#: The process groups CPU time is charged to, in the order of the CPU table.
CPU_GROUPS = (
    "workers",
    "postgres",
    "redis",
    "fake_sendgrid",
    "fake_twilio",
    "api",
    "bench",
    "other",
)


def verdict(phases: dict) -> list[dict]:
    """The targets of the phases that ran (the SMS phase has none)."""
    targets = []
    if "individual" in phases:
        ind = phases["individual"]
        targets.append(
            {
                "target": "individual emails delivered and recorded "
                f">= {TARGET_INDIVIDUAL_PER_S:.0f}/s",
                "value": ind["rate_per_s"],
                "unit": "emails/s",
                "met": ind["rate_per_s"] >= TARGET_INDIVIDUAL_PER_S,
            }
        )
    if "slow" in phases:
        slow = phases["slow"]
        targets.append(
            {
                "target": f"{slow['emails']} emails, fake answering after "
                f"{slow['delay_ms']:.0f} ms, delivered and recorded < {TARGET_SLOW_S:.0f} s "
                "(median of rounds)",
                "value": slow["delivered_s_median"],
                "unit": "s",
                "met": slow["delivered_s_median"] < TARGET_SLOW_S,
            }
        )
    if "bulk" in phases:
        bulk = phases["bulk"]
        targets.append(
            {
                "target": f"{bulk['emails']:,} bulk emails delivered and recorded "
                f"< {TARGET_BULK_S:.0f} s",
                "value": bulk["delivered_s"],
                "unit": "s",
                "met": bulk["delivered_s"] < TARGET_BULK_S,
            }
        )
    return targets


def render_markdown(report: dict) -> str:
    phases = report["phases"]
    sms = phases.get("sms")
    lines = [
        *_header(report),
        *_targets(report["verdict"]),
        *_figures(report),
        *(_database(report["config"], phases["individual"]) if "individual" in phases else []),
        *(_census(phases["census"]) if "census" in phases else []),
        *(_sms_database(report["config"], sms) if sms else []),
        *_cpu(phases),
        *_profile(phases.get("individual", {}).get("profile")),
    ]
    return "\n".join(lines)


def _header(report: dict) -> list[str]:
    m, cfg = report["machine"], report["config"]
    modified = f" (modified: {', '.join(m['modified_code'])})" if m.get("modified_code") else ""
    return [
        *markdown_header("End-to-end email benchmark", report),
        f"- Python {m['python']}, dramatiq {m['packages']['dramatiq']}, "
        f"peewee {m['packages']['peewee']}, sendgrid {m['packages']['sendgrid']}, "
        f"gunicorn {m['packages']['gunicorn']}; PostgreSQL {m['postgresql']}, Redis {m['redis']}, "
        f"all on 127.0.0.1; git {m['git']}{modified}",
        f"- workers: `{cfg['worker_command']}` ({cfg['processes']} processes x {cfg['threads']} "
        "threads), `EMAIL_RATE_LIMIT_PER_SECOND=1000000`, `SMS_RATE_LIMIT_PER_SECOND=1000000`; "
        "API: gunicorn with "
        f"`services/api/gunicorn.conf.py` ({cfg['api_workers']} x {cfg['api_threads']}); "
        "fake SendGrid: `bench/fake_sendgrid.py` (asyncio, own process), reached by the worker's "
        "real SendGrid provider (kept-alive connection per thread); fake Twilio: "
        "`bench/fake_twilio.py` (same server, own process), reached by the worker's real Twilio "
        "provider (the official client, `TWILIO_API_BASE_URL`)",
        f"- phases run: {', '.join(cfg.get('phases', []))}",
        "",
    ]


def _targets(verdicts: list[dict]) -> list[str]:
    ok = {True: "**met**", False: "**missed**"}
    lines = ["## Targets", "", "| target | measured | |", "|---|---:|---|"]
    if not verdicts:
        lines.append("| (no phase with a target ran) | | |")
    for v in verdicts:
        lines.append(f"| {v['target']} | {v['value']} {v['unit']} | {ok[v['met']]} |")
    return lines


def _figures(report: dict) -> list[str]:
    ph = report["phases"]
    rows = [
        *(_noop_rows(ph["noop"]) if "noop" in ph else []),
        *(_individual_rows(report, ph["individual"], ph.get("noop")) if "individual" in ph else []),
        *(_slow_rows(report["config"], ph["slow"]) if "slow" in ph else []),
        *(_bulk_rows(ph["bulk"]) if "bulk" in ph else []),
        *(_sms_rows(report, ph["sms"], ph.get("noop")) if "sms" in ph else []),
    ]
    checks = ["every job `sent` with a `sent` delivery-log row"]
    for name, unit in (("individual", "SendGrid"), ("bulk", "SendGrid"), ("sms", "Twilio")):
        if name in ph:
            checks.append(
                f"{name}: {ph[name]['fake']['duplicates']} {unit} duplicates (a job id in two "
                f"accepted requests), {ph[name]['outcome']['retries']} retries"
            )
    return [
        "",
        "## Figures",
        "",
        "| phase | what is timed | figure |",
        "|---|---|---:|",
        *rows,
        "",
        f"Checks: {'; '.join(checks)}.",
    ]


def _noop_rows(noop: dict) -> list[str]:
    return [
        f"| 1. bare Dramatiq no-op ({noop['messages']:,} messages) | first ack -> queue empty "
        f"| **{noop['rate_per_s']:,.0f} messages/s** |",
        f"| | worker start -> queue empty (includes start-up) | {noop['from_start_s']:.2f} s |",
    ]


def _ceiling(report: dict, cpu: dict, provider: str) -> tuple[float, float]:
    """CPU per unit of workers + PostgreSQL + Redis + the fake (ms), and the rate it allows."""
    us = cpu["us_per_unit"]
    total = sum(us.get(k, 0) for k in ("workers", "postgres", "redis", provider))
    return total / 1000, report["machine"]["nproc"] * 1e6 / max(1, total)


def _individual_rows(report: dict, ind: dict, noop: dict | None) -> list[str]:
    ms, ceiling = _ceiling(report, ind["cpu"], "fake_sendgrid")
    rows = [
        f"| 2. individual emails ({ind['emails']:,}, fake at 0 ms) | first claim -> last job "
        f"`sent` + logged (DB timestamps) | **{ind['rate_per_s']:,.0f} emails/s** |",
        f"| | worker start -> last job recorded (includes start-up "
        f"{ind['first_claim_after_start_s']:.2f} s) | {ind['from_start_s']:.2f} s "
        f"({ind['emails'] / ind['from_start_s']:,.0f}/s) |",
    ]
    if noop and noop["rate_per_s"]:
        rows.append(
            f"| | emails/s over no-op messages/s (same run) "
            f"| {ind['rate_per_s'] / noop['rate_per_s']:.3f} |"
        )
    return [
        *rows,
        f"| | CPU per email of workers + PostgreSQL + Redis + fake -> ceiling on "
        f"{report['machine']['nproc']} idle CPUs | {ms:.2f} ms -> {ceiling:,.0f}/s |",
        f"| | API acceptance beforehand ({requests_for(ind['emails'])} send-bulk-email) "
        f"| {ind['accept_per_s']:,.0f} jobs/s |",
    ]


def _slow_rows(cfg: dict, slow: dict) -> list[str]:
    return [
        f"| 4. {slow['emails']} individual emails, fake at {slow['delay_ms']:.0f} ms, "
        f"workers warm | request sent -> last job `sent` + logged, median of "
        f"{len(slow['rounds'])} (worst) | **{slow['delivered_s_median']:.3f} s** "
        f"({slow['delivered_s_max']:.3f} s) |",
        f"| | lower bound: ceil({slow['emails']} / {cfg['processes'] * cfg['threads']} threads) "
        f"x {slow['delay_ms']:.0f} ms | {slow['lower_bound_s']:.3f} s |",
    ]


def _bulk_rows(bulk: dict) -> list[str]:
    return [
        f"| 5. {bulk['emails']:,} identical emails, fake at {bulk['delay_ms']:.0f} ms, workers "
        f"warm | first request sent -> last job `sent` + logged "
        f"| **{bulk['delivered_s']:.2f} s** |",
        f"| | API acceptance ({bulk['requests_to_api']} requests of <= {BULK_MAX:,}) "
        f"| {bulk['accept_s']:.2f} s |",
        f"| | SendGrid requests / personalizations (max per request) "
        f"| {bulk['fake']['accepted']} / {bulk['fake']['personalizations']:,} "
        f"({bulk['fake']['max_personalizations']}) |",
    ]


def _sms_rows(report: dict, sms: dict, noop: dict | None) -> list[str]:
    ms, ceiling = _ceiling(report, sms["cpu"], "fake_twilio")
    census = sms["census"]
    statements = (
        f"**{census['per_job']}**" if "per_job" in census else f"skipped: {census['skipped']}"
    )
    rows = [
        f"| 6. SMS notifications ({sms['texts']:,}, fake Twilio at 0 ms) | first claim -> last "
        f"job `sent` + logged (DB timestamps) | **{sms['rate_per_s']:,.0f} texts/s** |",
        f"| | worker start -> last job recorded (includes start-up "
        f"{sms['first_claim_after_start_s']:.2f} s) | {sms['from_start_s']:.2f} s "
        f"({sms['texts'] / sms['from_start_s']:,.0f}/s) |",
    ]
    if noop and noop["rate_per_s"]:
        rows.append(
            f"| | texts/s over no-op messages/s (same run) "
            f"| {sms['rate_per_s'] / noop['rate_per_s']:.3f} |"
        )
    return [
        *rows,
        f"| | CPU per text of workers + PostgreSQL + Redis + fake -> ceiling on "
        f"{report['machine']['nproc']} idle CPUs | {ms:.2f} ms -> {ceiling:,.0f}/s |",
        f"| | transactions committed per text (`pg_stat_database`) "
        f"| {sms['pg_per_text']['xact_commit']} |",
        f"| | SQL statements per text (server log, {census.get('jobs', 0)} texts) | {statements} |",
        f"| | API acceptance beforehand ({sms['texts']:,} `POST /api/notifications`) "
        f"| {sms['accept_per_s']:,.0f} jobs/s |",
        f"| | Twilio requests accepted / segments per text "
        f"| {sms['fake']['accepted']:,} / {sms['segments']} |",
    ]


def _database(cfg: dict, ind: dict) -> list[str]:
    pe = ind["pg_per_email"]
    lines = [
        "",
        "## Database work per email (phase 2)",
        "",
        f"`pg_stat_database` deltas for `{cfg['database']}` over phase 2 (workers only: the API "
        "was stopped before the first snapshot, the workers before the second), per email:",
        "",
        "| transactions committed | rolled back | rows returned | rows fetched | inserted "
        "| updated | deleted | buffer hits |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {pe['xact_commit']} | {pe['xact_rollback']} | {pe['tup_returned']} "
        f"| {pe['tup_fetched']} | {pe['tup_inserted']} | {pe['tup_updated']} "
        f"| {pe['tup_deleted']} | {pe['blks_hit']} |",
        "",
        "Rows returned/fetched and buffer hits include the catalog look-ups of each new worker "
        f"connection ({cfg['processes'] * cfg['threads']} of them), so they shrink with larger "
        "batches; the table counters below are the jobs' own.",
    ]
    tables = ind["pg_tables_per_email"]
    if tables:
        lines += [
            "",
            "| table (per email) | index scans | seq scans | rows inserted | rows updated "
            "| HOT updates |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for table, t in sorted(tables.items()):
            lines.append(
                f"| {table} | {t['idx_scan']} | {t['seq_scan']} | {t['n_tup_ins']} "
                f"| {t['n_tup_upd']} | {t['n_tup_hot_upd']} |"
            )
    return lines


def _census(census: dict) -> list[str]:
    intro = "Statement census (every statement the workers sent, from the server log "
    if "skipped" in census:
        return ["", intro + f"): skipped - {census['skipped']}."]
    lines = [
        "",
        intro + f"with `log_statement = 'all'` for the bench database only, a separate batch of "
        f"{census['emails']} individual emails, {census['backends']} connections): "
        f"**{census['statements_per_email']} statements per email**",
        "",
        "| statement | per email | total |",
        "|---|---:|---:|",
    ]
    for kind, count in census["by_kind"].items():
        lines.append(f"| `{kind}` | {census['by_kind_per_email'][kind]} | {count} |")
    return lines


def _sms_database(cfg: dict, sms: dict) -> list[str]:
    pe = sms["pg_per_text"]
    lines = [
        "",
        "## Database work per text (phase 6, SMS)",
        "",
        f"`pg_stat_database` deltas for `{cfg['database']}` over phase 6 (workers only), per text:",
        "",
        "| transactions committed | rolled back | rows returned | rows fetched | inserted "
        "| updated | deleted | buffer hits |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {pe['xact_commit']} | {pe['xact_rollback']} | {pe['tup_returned']} "
        f"| {pe['tup_fetched']} | {pe['tup_inserted']} | {pe['tup_updated']} "
        f"| {pe['tup_deleted']} | {pe['blks_hit']} |",
    ]
    tables = sms["pg_tables_per_text"]
    if tables:
        lines += [
            "",
            "| table (per text) | index scans | seq scans | rows inserted | rows updated "
            "| HOT updates |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for table, t in sorted(tables.items()):
            lines.append(
                f"| {table} | {t['idx_scan']} | {t['seq_scan']} | {t['n_tup_ins']} "
                f"| {t['n_tup_upd']} | {t['n_tup_hot_upd']} |"
            )
    census = sms["census"]
    if "skipped" in census:
        return [*lines, "", f"SMS statement census: skipped - {census['skipped']}."]
    lines += [
        "",
        "SMS statement census (as phase 3, a separate batch of "
        f"{census['jobs']} texts, {census['backends']} connections): "
        f"**{census['per_job']} statements per text**",
        "",
        "| statement | per text | total |",
        "|---|---:|---:|",
    ]
    for kind, count in census["by_kind"].items():
        lines.append(f"| `{kind}` | {census['by_kind_per_email'][kind]} | {count} |")
    return lines


def _cpu_row(label: str, cpu: dict, unit: str) -> str:
    us = cpu["us_per_unit"]
    total = sum(us.get(k, 0) for k in CPU_GROUPS if k != "other")
    cells = " | ".join(str(us.get(k, 0)) for k in CPU_GROUPS)
    return f"| {label} ({unit}) | {cells} | {total} | {cpu['machine_busy_pct']:.0f}% |"


def _cpu(phases: dict) -> list[str]:
    lines = [
        "",
        "## CPU time",
        "",
        "Per message/email/text, in microseconds, by process group, over each timed window "
        "(`other` = the rest of the machine: other sessions, i.e. noise; Redis is the machine's "
        "shared server). With 2 CPUs saturated, a rate is at most 2 s / (sum).",
        "",
        f"| phase | {' | '.join(CPU_GROUPS)} | sum (without other) | machine busy |",
        f"|---|{'---:|' * (len(CPU_GROUPS) + 2)}",
    ]
    if "noop" in phases:
        lines.append(_cpu_row("1. no-op", phases["noop"]["cpu"], "per message"))
    if "individual" in phases:
        lines.append(_cpu_row("2. individual", phases["individual"]["cpu"], "per email"))
    slow = phases.get("slow")
    for r in slow["rounds"] if slow else []:
        lines.append(_cpu_row(f"4. slow round {r['round']}", r["cpu"], "per email"))
    if "bulk" in phases:
        lines.append(_cpu_row("5. bulk", phases["bulk"]["cpu"], "per email"))
    if "sms" in phases:
        lines.append(_cpu_row("6. sms", phases["sms"]["cpu"], "per text"))
    lines.append("")
    if slow:
        rounds = "; ".join(
            f"round {r['round']}: {r['delivered_s']:.3f} s (request answered after "
            f"{r['accept_request_s']:.3f} s, first claim after "
            f"{r['request_to_first_claim_s']:.3f} s, first claim -> done "
            f"{r['claim_to_done_s']:.3f} s)"
            for r in slow["rounds"]
        )
        lines += [f"Slow rounds: {rounds}.", ""]
    return lines


def _profile(profile: dict | None) -> list[str]:
    if not profile:
        return []
    lines = [
        "## Profile of the workers in phase 2 (py-spy, threads holding the GIL)",
        "",
        f"{profile['samples']} samples; share of samples in which a function was on the stack "
        "(inclusive) and at its top (self):",
        "",
        "| inclusive % | function | | self % | function |",
        "|---:|---|---|---:|---|",
    ]
    for (inc_f, inc), (self_f, own) in zip(
        profile["inclusive_pct"][:30], profile["self_pct"][:30], strict=False
    ):
        lines.append(f"| {inc} | `{inc_f}` | | {own} | `{self_f}` |")
    lines.append("")
    return lines
