"""The results of a run: the targets met or missed, and the latest run as markdown."""

from __future__ import annotations

from common.results import markdown_header

from e2e.api import BULK_MAX, requests_for

TARGET_INDIVIDUAL_PER_S = 500.0
TARGET_SLOW_S = 1.0
TARGET_BULK_S = 10.0

#: The process groups CPU time is charged to, in the order of the CPU table.
CPU_GROUPS = ("workers", "postgres", "redis", "fake_sendgrid", "api", "bench", "other")


def verdict(phases: dict) -> list[dict]:
    ind, slow, bulk = phases["individual"], phases["slow"], phases["bulk"]
    return [
        {
            "target": "individual emails delivered and recorded "
            f">= {TARGET_INDIVIDUAL_PER_S:.0f}/s",
            "value": ind["rate_per_s"],
            "unit": "emails/s",
            "met": ind["rate_per_s"] >= TARGET_INDIVIDUAL_PER_S,
        },
        {
            "target": f"{slow['emails']} emails, fake answering after {slow['delay_ms']:.0f} ms, "
            f"delivered and recorded < {TARGET_SLOW_S:.0f} s (median of rounds)",
            "value": slow["delivered_s_median"],
            "unit": "s",
            "met": slow["delivered_s_median"] < TARGET_SLOW_S,
        },
        {
            "target": f"{bulk['emails']:,} bulk emails delivered and recorded "
            f"< {TARGET_BULK_S:.0f} s",
            "value": bulk["delivered_s"],
            "unit": "s",
            "met": bulk["delivered_s"] < TARGET_BULK_S,
        },
    ]


def render_markdown(report: dict) -> str:
    lines = [
        *_header(report),
        *_targets(report["verdict"]),
        *_figures(report),
        *_database(report["config"], report["phases"]["individual"]),
        *_census(report["phases"]["census"]),
        *_cpu(report["phases"]),
        *_profile(report["phases"]["individual"].get("profile")),
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
        "threads), `EMAIL_RATE_LIMIT_PER_SECOND=1000000`; API: gunicorn with "
        f"`services/api/gunicorn.conf.py` ({cfg['api_workers']} x {cfg['api_threads']}); "
        "fake SendGrid: `bench/fake_sendgrid.py` (asyncio, own process), reached by the worker's "
        "real SendGrid provider (kept-alive connection per thread)",
        "",
    ]


def _targets(verdicts: list[dict]) -> list[str]:
    ok = {True: "**met**", False: "**missed**"}
    lines = ["## Targets", "", "| target | measured | |", "|---|---:|---|"]
    for v in verdicts:
        lines.append(f"| {v['target']} | {v['value']} {v['unit']} | {ok[v['met']]} |")
    return lines


def _figures(report: dict) -> list[str]:
    m, cfg, ph = report["machine"], report["config"], report["phases"]
    noop, ind, slow, bulk = ph["noop"], ph["individual"], ph["slow"], ph["bulk"]
    ratio = ind["rate_per_s"] / noop["rate_per_s"] if noop["rate_per_s"] else 0
    us = ind["cpu"]["us_per_unit"]
    ind_cpu = sum(us.get(k, 0) for k in ("workers", "postgres", "redis", "fake_sendgrid"))
    return [
        "",
        "## Figures",
        "",
        "| phase | what is timed | figure |",
        "|---|---|---:|",
        f"| 1. bare Dramatiq no-op ({noop['messages']:,} messages) | first ack -> queue empty "
        f"| **{noop['rate_per_s']:,.0f} messages/s** |",
        f"| | worker start -> queue empty (includes start-up) | {noop['from_start_s']:.2f} s |",
        f"| 2. individual emails ({ind['emails']:,}, fake at 0 ms) | first claim -> last job "
        f"`sent` + logged (DB timestamps) | **{ind['rate_per_s']:,.0f} emails/s** |",
        f"| | worker start -> last job recorded (includes start-up "
        f"{ind['first_claim_after_start_s']:.2f} s) | {ind['from_start_s']:.2f} s "
        f"({ind['emails'] / ind['from_start_s']:,.0f}/s) |",
        f"| | emails/s over no-op messages/s (same run) | {ratio:.3f} |",
        f"| | CPU per email of workers + PostgreSQL + Redis + fake -> ceiling on "
        f"{m['nproc']} idle CPUs | {ind_cpu / 1000:.2f} ms -> "
        f"{m['nproc'] * 1e6 / max(1, ind_cpu):,.0f}/s |",
        f"| | API acceptance beforehand ({requests_for(ind['emails'])} send-bulk-email) "
        f"| {ind['accept_per_s']:,.0f} jobs/s |",
        f"| 4. {slow['emails']} individual emails, fake at {slow['delay_ms']:.0f} ms, "
        f"workers warm | request sent -> last job `sent` + logged, median of "
        f"{len(slow['rounds'])} (worst) | **{slow['delivered_s_median']:.3f} s** "
        f"({slow['delivered_s_max']:.3f} s) |",
        f"| | lower bound: ceil({slow['emails']} / {cfg['processes'] * cfg['threads']} threads) "
        f"x {slow['delay_ms']:.0f} ms | {slow['lower_bound_s']:.3f} s |",
        f"| 5. {bulk['emails']:,} identical emails, fake at {bulk['delay_ms']:.0f} ms, workers "
        f"warm | first request sent -> last job `sent` + logged "
        f"| **{bulk['delivered_s']:.2f} s** |",
        f"| | API acceptance ({bulk['requests_to_api']} requests of <= {BULK_MAX:,}) "
        f"| {bulk['accept_s']:.2f} s |",
        f"| | SendGrid requests / personalizations (max per request) "
        f"| {bulk['fake']['accepted']} / {bulk['fake']['personalizations']:,} "
        f"({bulk['fake']['max_personalizations']}) |",
        "",
        "Checks: every job `sent` with a `sent` delivery-log row; SendGrid duplicates "
        f"(a job id in two accepted requests): individual {ind['fake']['duplicates']}, "
        f"bulk {bulk['fake']['duplicates']}; retries: individual {ind['outcome']['retries']}, "
        f"bulk {bulk['outcome']['retries']}.",
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


def _cpu_row(label: str, cpu: dict, unit: str) -> str:
    us = cpu["us_per_unit"]
    total = sum(us[k] for k in CPU_GROUPS if k != "other")
    cells = " | ".join(str(us.get(k, 0)) for k in CPU_GROUPS)
    return f"| {label} ({unit}) | {cells} | {total} | {cpu['machine_busy_pct']:.0f}% |"


def _cpu(phases: dict) -> list[str]:
    slow = phases["slow"]
    lines = [
        "",
        "## CPU time",
        "",
        "Per message/email, in microseconds, by process group, over each timed window "
        "(`other` = the rest of the machine: other sessions, i.e. noise; Redis is the machine's "
        "shared server). With 2 CPUs saturated, a rate is at most 2 s / (sum).",
        "",
        f"| phase | {' | '.join(CPU_GROUPS)} | sum (without other) | machine busy |",
        f"|---|{'---:|' * (len(CPU_GROUPS) + 2)}",
        _cpu_row("1. no-op", phases["noop"]["cpu"], "per message"),
        _cpu_row("2. individual", phases["individual"]["cpu"], "per email"),
    ]
    for r in slow["rounds"]:
        lines.append(_cpu_row(f"4. slow round {r['round']}", r["cpu"], "per email"))
    rounds = "; ".join(
        f"round {r['round']}: {r['delivered_s']:.3f} s (request answered after "
        f"{r['accept_request_s']:.3f} s, first claim after {r['request_to_first_claim_s']:.3f}"
        f" s, first claim -> done {r['claim_to_done_s']:.3f} s)"
        for r in slow["rounds"]
    )
    lines += [
        _cpu_row("5. bulk", phases["bulk"]["cpu"], "per email"),
        "",
        f"Slow rounds: {rounds}.",
        "",
    ]
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
