"""The figures of ``bench/api_accept.py``: medians over rounds, the targets, the markdown."""

from __future__ import annotations

import statistics

from common.results import markdown_header

from accept.variants import VARIANTS

TARGET_THROUGHPUT_RATIO = 0.75
TARGET_P99_MS = 15.0
OK = {True: "**met**", False: "**missed**"}


def summarize(runs: list[dict]) -> dict:
    """Per variant and connection count: medians (and extremes) over the rounds."""
    table: dict[str, dict] = {}
    for variant in VARIANTS:
        table[variant.name] = {}
        for conns in sorted({r["connections"] for r in runs}, reverse=True):
            mine = [r for r in runs if r["variant"] == variant.name and r["connections"] == conns]
            if not mine:
                continue
            table[variant.name][f"c{conns}"] = {
                "rps_median": round(statistics.median(r["rps"] for r in mine), 1),
                "rps_min": min(r["rps"] for r in mine),
                "rps_max": max(r["rps"] for r in mine),
                "p50_ms_median": round(statistics.median(r["latency_ms"]["p50"] for r in mine), 2),
                "p90_ms_median": round(statistics.median(r["latency_ms"]["p90"] for r in mine), 2),
                "p99_ms_median": round(statistics.median(r["latency_ms"]["p99"] for r in mine), 2),
                "p99_ms_max": round(max(r["latency_ms"]["p99"] for r in mine), 2),
                "cpu_us_per_request_median": {
                    k: round(statistics.median(r["cpu_us_per_request"][k] for r in mine))
                    for k in mine[0]["cpu_us_per_request"]
                },
                "machine_busy_pct_median": round(
                    statistics.median(r["machine_busy_pct"] for r in mine), 1
                ),
                "other_processes_cores_max": max(r["other_processes_cores"] for r in mine),
                "accepted": sum(r["accepted"] for r in mine),
                "non_2xx": sum(r["non_2xx"] for r in mine),
                "socket_errors": sum(r["socket_errors"] for r in mine),
                "rounds": len(mine),
            }
    return table


def verdict(table: dict, connections: int) -> dict:
    key = f"c{connections}"
    ours = table["ours"][key]
    ratio = ours["rps_median"] / table["bare_insert_send"][key]["rps_median"]
    return {
        "throughput_ratio_ours_over_bare_insert_send": round(ratio, 3),
        "throughput_ratio_target": TARGET_THROUGHPUT_RATIO,
        "throughput_ratio_ok": ratio >= TARGET_THROUGHPUT_RATIO,
        "throughput_ratio_ours_over_bare_ok": round(
            ours["rps_median"] / table["bare_ok"][key]["rps_median"], 3
        ),
        "ours_p99_ms": ours["p99_ms_median"],
        "ours_p99_target_ms": TARGET_P99_MS,
        "ours_p99_ok": ours["p99_ms_median"] < TARGET_P99_MS,
    }


def render_markdown(report: dict) -> str:
    return "\n".join(
        [*_header(report), *_table(report), *_targets(report), *_cpu(report), *_checks(report)]
    )


def _header(report: dict) -> list[str]:
    m, cfg = report["machine"], report["config"]
    c = cfg["connections"]
    return [
        *markdown_header("API accept benchmark", report),
        f"- Python {m['python']}, gunicorn {m['packages']['gunicorn']} "
        f"(`{m['gunicorn']['config']}`: gthread, {m['gunicorn']['workers']} workers x "
        f"{m['gunicorn']['threads']} threads, access log on), falcon {m['packages']['falcon']}, "
        f"peewee {m['packages']['peewee']}, dramatiq {m['packages']['dramatiq']}",
        f"- PostgreSQL {m['postgresql']}, Redis {m['redis']}, all on 127.0.0.1; git {m['git']}",
        f"- load: {m['client']}; warm-up {cfg['warmup_s']} s per variant, then {cfg['rounds']} "
        f"interleaved round(s) of {cfg['duration_s']} s per variant at {c} and at 1 connection; "
        "figures are medians over rounds (p99 max = worst round)",
        "",
    ]


def _per_variant(report: dict, cells) -> list[str]:
    """A table row per variant: its label, then ``cells(at_c, at_1)`` (its figures at
    ``--connections`` and at 1 connection)."""
    table, c = report["table"], report["config"]["connections"]
    return [
        f"| {v.label} | {cells(table[v.name][f'c{c}'], table[v.name].get('c1', {}))} |"
        for v in VARIANTS
    ]


def _speed_cells(hi: dict, lo: dict) -> str:
    return (
        f"{hi['rps_median']:.0f} | {hi['p50_ms_median']:.2f} "
        f"| {hi['p99_ms_median']:.2f} | {hi['p99_ms_max']:.2f} "
        f"| {lo.get('rps_median', 0):.0f} | {lo.get('p50_ms_median', 0):.2f} "
        f"| {lo.get('p99_ms_median', 0):.2f}"
    )


def _cpu_cells(hi: dict, lo: dict) -> str:
    cpu = hi["cpu_us_per_request_median"]
    return (
        f"{cpu['app']} | {cpu['postgres']} | {cpu['redis']} "
        f"| {cpu['app'] + cpu['postgres'] + cpu['redis']} | {cpu['load_generator']} "
        f"| {hi['machine_busy_pct_median']:.0f}% "
        f"| {hi['other_processes_cores_max']:.2f} cores"
    )


def _table(report: dict) -> list[str]:
    c = report["config"]["connections"]
    return [
        f"| variant | req/s @{c} | p50 ms @{c} | p99 ms @{c} | p99 max @{c} "
        "| req/s @1 | p50 ms @1 | p99 ms @1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *_per_variant(report, _speed_cells),
    ]


def _targets(report: dict) -> list[str]:
    v, c = report["verdict"], report["config"]["connections"]
    ratio = v["throughput_ratio_ours_over_bare_insert_send"]
    return [
        "",
        f"- throughput ours / bare INSERT + send @{c}: **{ratio:.2f}** "
        f"(target >= {v['throughput_ratio_target']}: {OK[v['throughput_ratio_ok']]}); "
        f"ours / bare 202 @{c}: {v['throughput_ratio_ours_over_bare_ok']:.2f}",
        f"- our p99 @{c}: **{v['ours_p99_ms']:.2f} ms** "
        f"(target < {v['ours_p99_target_ms']:.0f} ms: {OK[v['ours_p99_ok']]})",
    ]


def _cpu(report: dict) -> list[str]:
    m, c = report["machine"], report["config"]["connections"]
    return [
        "",
        f"CPU time per request @{c} (median over rounds, in microseconds; with {m['nproc']} "
        f"CPUs saturated, req/s is at most {m['nproc']} s / (sum + load generator)):",
        "",
        "| variant | gunicorn (app) | PostgreSQL backends | Redis | sum | load generator "
        "| machine busy | other processes (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *_per_variant(report, _cpu_cells),
    ]


def _checks(report: dict) -> list[str]:
    lines = [
        "",
        "`other processes`: CPU used meanwhile by everything outside the bench (other sessions, "
        "the kernel), i.e. the noise; Redis is the machine's shared server.",
        "",
        "Checks: every accepted request of ours and of the bare INSERT + send app left exactly "
        "one job row and one waiting message (counted per round, then removed):",
        "",
        "| variant | connections | round | accepted | non-2xx | socket errors | rows added "
        "| messages added | rows by status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['variant']} | {r['connections']} | {r['round']} | {r['accepted']} "
            f"| {r['non_2xx']} | {r['socket_errors']} | {r['db_jobs_added']} "
            f"| {r['redis_waiting_added']} | {r['db_jobs_by_status'] or '-'} |"
        )
    lines += [
        "",
        "Rows/messages may exceed `accepted` by up to the connection count: requests in flight "
        "when the client stops are served but not counted.",
        "",
    ]
    return lines
