"""deploy/ and docker-compose.yml, checked without Docker (this machine has no engine).

promtool (Debian's ``prometheus`` package, installed by .ci/run) checks the Prometheus config and
alert rules and runs the rules' unit tests; the Grafana dashboard's PromQL and the alerts name only
the metrics agreed in deploy/METRICS.md; the compose file runs exactly the Procfile's processes
from the images that hold them, with the README's variables, healthchecks and start order, and
only the nginx proxy (deploy/nginx/, run for real by test_edge.py) publishes the API; each
Dockerfile takes only ``shared/`` and its own service from the workspace.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from graphlib import TopologicalSorter
from pathlib import Path

import pytest
import yaml

from tests.conftest import skip_unless_ci
from tests.support.deploy_files import (
    DASHBOARD,
    EDGE_CONFIG,
    GUNICORN_CONFIG,
    PROMETHEUS_DIR,
    REPO,
    RUNBOOK,
    agreed_metrics,
    copy_sources,
    dashboard_queries,
    dockerfile,
    github_anchors,
    metric_names,
    missing_tool,
    procfile,
    readme_variables,
    with_dependencies,
    workspace_packages,
)
from tribe_shared.settings import DEV_JWT_SECRET, ConfigError, Settings

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ALERTS = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
ALERT_RULES = [rule for group in ALERTS["groups"] for rule in group["rules"] if "alert" in rule]
PACKAGES = workspace_packages()

#: Procfile process → compose service.
PROCESSES = {"release": "release", "web": "api", "worker": "worker", "scheduler": "scheduler"}
#: Image of each service: (Dockerfile, the service package it installs besides tribe-shared).
IMAGES = {
    "release": ("deploy/api.Dockerfile", "tribe-api"),
    "api": ("deploy/api.Dockerfile", "tribe-api"),
    "worker": ("deploy/worker.Dockerfile", "tribe-worker"),
    "scheduler": ("deploy/worker.Dockerfile", "tribe-worker"),
}
#: Variables a process reads besides the application's configuration (README's table).
PROCESS_VARIABLES = {
    "TZ",
    "PROMETHEUS_MULTIPROC_DIR",
    "dramatiq_worker_timeout",
    "dramatiq_prom_port",
    "dramatiq_prom_db",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing_tool("promtool")
    return path


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


# --- Prometheus: config, rules, unit tests --------------------------------------------------


def test_the_prometheus_config_and_its_rule_files_pass_promtool(promtool):
    result = run(promtool, "check", "config", "deploy/prometheus/prometheus.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_the_alert_rules_pass_promtool(promtool):
    result = run(promtool, "check", "rules", "deploy/prometheus/alerts.yml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_the_rules_unit_tests(promtool):
    result = run(promtool, "test", "rules", "deploy/prometheus/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr

    unit_tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    checks = [check for test in unit_tests for check in test["alert_rule_test"]]
    fired = {check["alertname"] for check in checks if check["exp_alerts"]}
    quiet = {check["alertname"] for check in checks if not check["exp_alerts"]}
    assert fired == {rule["alert"] for rule in ALERT_RULES}
    assert {"TribeFailedJobsHigh", "TribeQueueBacklog", "TribeApiErrorRate"} <= quiet


def test_prometheus_scrapes_every_replica_of_the_api_and_the_worker_where_compose_serves_them():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker_port = SERVICES["worker"]["environment"]["dramatiq_prom_port"]
    api_port = SERVICES["api"]["environment"]["PORT"]

    # Compose's DNS answers a service's name with every replica's address: one target each
    # (`--scale worker=3`), where a static target would reach one replica at random
    for job, service, port in (("api", "api", api_port), ("worker", "worker", worker_port)):
        assert "static_configs" not in jobs[job]
        (discovery,) = jobs[job]["dns_sd_configs"]
        assert discovery["names"] == [service] and discovery["type"] == "A"
        assert str(discovery["port"]) == port
    assert jobs["api"]["metrics_path"] == jobs["worker"]["metrics_path"] == "/metrics"
    assert config["rule_files"] == ["alerts.yml"]


def test_prometheus_sends_its_alerts_to_compose_s_alertmanager():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (manager,) = config["alerting"]["alertmanagers"]
    alertmanager = SERVICES["alertmanager"]

    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "9093:9093" in alertmanager["ports"]
    assert alertmanager["environment"]["ALERT_WEBHOOK_URL"].startswith("${ALERT_WEBHOOK_URL:-")
    assert (
        resolve(alertmanager["environment"]["ALERT_WEBHOOK_URL"]) == "http://mailsink:8025/alerts"
    )


@pytest.mark.parametrize("rule", ALERT_RULES, ids=lambda rule: rule["alert"])
def test_each_alert_has_a_summary_and_a_runbook_section(rule):
    annotations = rule["annotations"]
    path, _, anchor = annotations["runbook_url"].partition("#")

    assert annotations["summary"].strip()
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert path == "deploy/RUNBOOK.md"
    assert anchor in github_anchors(RUNBOOK.read_text())


def test_the_issue_s_alerts_are_all_there():
    expressions = {rule["alert"]: rule["expr"] for rule in ALERT_RULES}
    fors = {rule["alert"]: rule.get("for") for rule in ALERT_RULES}

    assert 'tribe_circuit_state{state="open"}' in expressions["TribeCircuitOpen"]
    assert fors["TribeCircuitOpen"] == "1m"
    assert "[1h]" in expressions["TribeFailedJobsHigh"]
    assert "> 100" in expressions["TribeFailedJobsHigh"]
    assert "> 1000" in expressions["TribeQueueBacklog"] and fors["TribeQueueBacklog"] == "5m"
    assert "tribe_workers_alive" in expressions["TribeNoWorkerHeartbeat"]
    assert 'up{job="worker"}' in expressions["TribeWorkerDown"]
    assert "> 600" in expressions["TribeOldestPendingJob"]
    assert 'status=~"5.."' in expressions["TribeApiErrorRate"]
    assert "tribe_database_up == 0" in expressions["TribeDatabaseDown"]
    assert "tribe_redis_up == 0" in expressions["TribeRedisDown"]


# --- Metric names: dashboard, alerts, runbook -------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le, route) (rate(a_bucket{status=~"5.."}[5m]))', {"a_bucket"}),
        ("histogram_quantile(0.95, sum by (le) (rate(b_bucket[$__rate_interval])))", {"b_bucket"}),
        ('absent(up{job="worker"} == 1) or c > 1e3 offset 5m', {"up", "c"}),
        ('max(x) * 2 + max(y{state="half_open"})', {"x", "y"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr, names):
    assert metric_names(expr) == names


def test_every_dashboard_query_names_only_agreed_metrics():
    allowed = agreed_metrics().series_names()
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))

    unknown = {(title, name) for title, expr in queries for name in metric_names(expr) - allowed}
    assert queries
    assert not unknown, f"(panel, metric) not in deploy/METRICS.md: {sorted(unknown)}"


def test_every_alert_names_only_agreed_metrics():
    allowed = agreed_metrics().series_names()

    unknown = {
        (rule["alert"], name)
        for rule in ALERT_RULES
        for name in metric_names(rule["expr"]) - allowed
    }
    assert not unknown, f"(alert, metric) not in deploy/METRICS.md: {sorted(unknown)}"


def test_the_runbook_answers_every_figure_of_the_old_metrics_endpoint_with_agreed_metrics():
    allowed = agreed_metrics().series_names()
    section = RUNBOOK.read_text().split("## The original metrics endpoint", 1)[1]
    rows = {
        line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")
    }
    figures = {"job counts by status", "success rate", "average processing time"}
    figures |= {"overdue jobs", "recent failures", "queue health"}

    assert figures <= set(rows)
    for figure in figures:
        queries = re.findall(r"`([^`]*\([^`]*)`", rows[figure])
        assert queries, figure
        for query in queries:
            assert metric_names(query) <= allowed, (figure, query)


def test_the_dashboard_shows_what_the_issue_asks_for():
    used = set().union(
        *(metric_names(e) for _, e in dashboard_queries(json.loads(DASHBOARD.read_text())))
    )

    assert {
        "tribe_provider_calls_total",  # sends/s by outcome, transient errors
        "tribe_http_requests_total",  # API requests/s, 5xx
        "tribe_http_request_duration_seconds_bucket",  # API p50/p95/p99 by route
        "tribe_provider_call_duration_seconds_bucket",  # provider call p95
        "tribe_queue_messages",  # waiting/delayed/dead per queue
        "tribe_jobs_finished_total",  # failures, success rate
        "tribe_circuit_state",
        "tribe_digest_delivery_lag_seconds_bucket",
        "tribe_oldest_pending_job_age_seconds",
        "tribe_jobs",  # jobs by status
        "tribe_jobs_overdue",
        "tribe_workers_alive",
        "dramatiq_message_duration_milliseconds_sum",  # average processing time
    } <= used


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    # promtool has no query linter; recording rules are parsed exactly as queries are.
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, (_, expr) in enumerate(queries)
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run(promtool, "check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard():
    grafana = REPO / "deploy" / "grafana"
    datasources = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    providers = yaml.safe_load((grafana / "provisioning/dashboards/tribe.yml").read_text())
    dashboard = json.loads(DASHBOARD.read_text())
    (datasource,) = datasources["datasources"]
    (provider,) = providers["providers"]
    mounts = dict(volume.split(":")[:2] for volume in SERVICES["grafana"]["volumes"])

    assert datasource["url"] == "http://prometheus:9090"
    assert "9090:9090" in SERVICES["prometheus"]["ports"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource_uids = {
        target["datasource"]["uid"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }
    assert datasource_uids == {datasource["uid"]}


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_runs_the_procfile_processes_with_the_databases_the_proxy_and_monitoring():
    assert set(SERVICES) == {
        *PROCESSES.values(),
        *("postgres", "redis", "proxy", "prometheus", "alertmanager", "grafana", "mailsink"),
    }


@pytest.mark.parametrize(("process", "service"), PROCESSES.items())
def test_each_process_runs_the_procfile_s_command_with_its_environment(process, service):
    env, command = procfile()[process]
    compose = SERVICES[service]

    assert compose["command"] == command
    for key, value in env.items():
        assert compose["environment"][key] == value


@pytest.mark.parametrize(("service", "image"), IMAGES.items())
def test_each_process_s_command_is_installed_in_its_image(service, image):
    path, package = image
    packages = with_dependencies({package}, PACKAGES)
    executable, *args = SERVICES[service]["command"]
    scripts = set().union(*(PACKAGES[p].scripts for p in packages))
    requirements = set().union(*(PACKAGES[p].dependencies for p in packages))
    folders = [PACKAGES[p].folder for p in packages]

    assert SERVICES[service]["build"]["dockerfile"] == path
    assert executable in scripts | requirements, f"{executable} comes from no package of {path}"
    for module in modules_named(args):
        spec = importlib.util.find_spec(module.split(":")[0])
        assert spec and spec.origin, module
        assert any(Path(spec.origin).is_relative_to(folder) for folder in folders), module
        assert re.search(rf"^{module.split(':')[1]} = ", Path(spec.origin).read_text(), re.M)


def modules_named(args: list[str]) -> Iterator[str]:
    """``module:attribute`` arguments, and the wsgi_app of a gunicorn config file."""
    for i, arg in enumerate(args):
        if re.fullmatch(r"[a-z_.]+:[a-z_]+", arg):
            yield arg
        if arg == "-c":
            config = (REPO / args[i + 1]).read_text()
            yield re.search(r'^wsgi_app = "([^"]+)"', config, re.M).group(1)


def resolve(value: str, environ: dict[str, str] | None = None) -> str:
    """A compose value as compose interpolates it: ``${NAME:-default}`` is ``environ[NAME]``
    when set and not empty, else the default."""

    def one(match: re.Match) -> str:
        return (environ or {}).get(match.group(1)) or match.group(2)

    return re.sub(r"\$\{(\w+):-([^}]*)\}", one, value)


def compose_environment(service: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    return {k: resolve(str(v), environ) for k, v in SERVICES[service]["environment"].items()}


@pytest.mark.parametrize("service", PROCESSES.values())
def test_each_process_starts_as_it_is_with_the_mail_sink_and_no_placeholder_secret(service):
    # Given the compose file with nothing set in the environment
    env = compose_environment(service)
    known = readme_variables()

    # Then its settings load, emails go to the mail sink, and no secret is made up
    settings = Settings.from_env(env)
    assert settings.app_env == "development"
    assert settings.jwt_secret == DEV_JWT_SECRET  # JWT_SECRET empty: never a production secret
    assert settings.sendgrid_api_host == "http://mailsink:8025"
    assert "8025:8025" in SERVICES["mailsink"]["ports"]
    assert (
        env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
    )
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert set(env) - known <= PROCESS_VARIABLES, "variables neither in README nor process-level"


@pytest.mark.parametrize("service", PROCESSES.values())
def test_in_production_each_process_refuses_to_start_until_given_a_real_secret(service):
    production = {"APP_ENV": "production", "SENDGRID_API_KEY": "SG.real"}
    with pytest.raises(ConfigError, match="JWT_SECRET must be configured"):
        Settings.from_env(compose_environment(service, production))

    env = compose_environment(service, {**production, "JWT_SECRET": "x" * 48})
    assert Settings.from_env(env).is_production


def test_the_api_and_the_worker_serve_metrics_on_their_documented_ports():
    api, worker = SERVICES["api"], SERVICES["worker"]

    assert api["environment"]["PORT"] == "8000"
    assert api["expose"] == ["8000"]
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert worker["environment"]["dramatiq_prom_port"] == "9191"
    assert worker["environment"]["dramatiq_prom_db"]
    assert "9191" in worker["expose"]


def test_services_start_in_order_once_what_they_need_is_healthy_or_done():
    needs = {name: service.get("depends_on", {}) for name, service in SERVICES.items()}
    list(TopologicalSorter({name: set(deps) for name, deps in needs.items()}).static_order())

    for name, deps in needs.items():
        for dependency, condition in deps.items():
            assert dependency in SERVICES
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], (name, dependency)
    healthy = {"condition": "service_healthy"}
    assert needs["release"] == {"postgres": healthy, "redis": healthy}
    for service in ("api", "worker", "scheduler"):
        assert needs[service]["release"] == {"condition": "service_completed_successfully"}
        assert needs[service]["postgres"] == needs[service]["redis"] == healthy
    assert needs["worker"]["mailsink"] == healthy
    assert needs["proxy"] == {"api": {"condition": "service_healthy", "restart": True}}
    assert set(needs["prometheus"]) == {"api", "worker", "alertmanager"}
    assert set(needs["grafana"]) == {"prometheus"}


def test_the_databases_and_the_api_have_healthchecks():
    def probe(service):
        return " ".join(SERVICES[service]["healthcheck"]["test"])

    assert "pg_isready" in probe("postgres")
    assert "redis-cli ping" in probe("redis")
    assert "http://127.0.0.1:8000/api/health/ready" in probe("api")


def test_only_the_proxy_is_published_and_it_proxies_to_the_api_s_port():
    proxy, api = SERVICES["proxy"], SERVICES["api"]
    mounts = dict(volume.split(":")[:2] for volume in proxy["volumes"])
    site = EDGE_CONFIG.read_text()

    # gunicorn reads requests with no deadline: nothing reaches it but through nginx
    assert "ports" not in api
    assert proxy["image"].startswith("nginx:")
    assert proxy["ports"] == ["8000:8000"]
    publishing_the_api = [
        name
        for name, service in SERVICES.items()
        if any(port.startswith("8000:") for port in service.get("ports", []))
    ]
    assert publishing_the_api == ["proxy"]
    # The official image includes conf.d/*.conf inside its http block
    assert mounts["./deploy/nginx/tribe-api.conf"] == "/etc/nginx/conf.d/default.conf"
    assert re.search(r"^\s*listen 8000;$", site, re.M)
    assert re.search(rf"^\s*server api:{api['environment']['PORT']};$", site, re.M)


def test_the_proxy_buffers_whole_requests_under_read_deadlines():
    site = EDGE_CONFIG.read_text()
    settings = dict(re.findall(r"^\s*([a-z_]+) ([^;{]+);", site, re.M))

    assert settings["proxy_request_buffering"] == "on"
    assert settings["proxy_buffering"] == "on"
    for deadline in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert re.fullmatch(r"\d+s", settings[deadline]), deadline
        assert int(settings[deadline][:-1]) <= 30, deadline
    # The API's own body limit, refused before it is read
    assert settings["client_max_body_size"] == "1m"
    # gunicorn restarts a worker silent for `timeout` seconds: nginx waits a little longer
    gunicorn_timeout = re.search(r"^timeout = (\d+)$", GUNICORN_CONFIG.read_text(), re.M)
    assert int(settings["proxy_read_timeout"][:-1]) > int(gunicorn_timeout.group(1))


def test_compose_mounts_only_files_that_exist():
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), source


# --- Dockerfiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["api", "worker"])
def test_each_image_copies_only_shared_and_its_own_service(service):
    instructions = dockerfile(REPO / f"deploy/{service}.Dockerfile")
    own = f"services/{service}"
    allowed = {"pyproject.toml", "uv.lock", "shared", "shared/pyproject.toml"}
    allowed |= {own, f"{own}/pyproject.toml"}

    copied = copy_sources(instructions)

    assert set(copied) <= allowed
    assert {"shared", own} <= set(copied)


@pytest.mark.parametrize(("service", "process"), [("api", "web"), ("worker", "worker")])
def test_each_image_installs_its_own_package_and_runs_its_process(service, process):
    instructions = dockerfile(REPO / f"deploy/{service}.Dockerfile")
    runs = " ".join(i.arguments for i in instructions if i.keyword == "RUN")
    package = f"tribe-{service}"
    env, command = procfile()[process]
    image_env = " ".join(i.arguments for i in instructions if i.keyword == "ENV")

    assert package in PACKAGES
    assert f"--package {package} " in runs and "--frozen" in runs and "--no-dev" in runs
    assert f"./shared ./services/{service}" in runs
    assert json.loads(instructions[-1].arguments) == command
    for key, value in env.items():
        assert f"{key}={value}" in image_env


def test_every_dockerfile_in_deploy_is_used_by_compose():
    used = {service["build"]["dockerfile"] for service in SERVICES.values() if "build" in service}

    assert used == {str(p.relative_to(REPO)) for p in (REPO / "deploy").glob("*Dockerfile")}


@pytest.fixture(scope="module")
def uv() -> str:
    path = shutil.which("uv") or str(REPO / ".tools/bin/uv")
    if not os.access(path, os.X_OK):
        skip_unless_ci("uv is not installed (./tribe installs it into .tools/)")
    return path


@pytest.mark.parametrize(
    ("service", "wanted", "unwanted"),
    [
        # (jinja2 comes into the API's image too, required by swagger-ui-bundle-v2; unused)
        (
            "api",
            {"falcon", "gunicorn", "peewee", "swagger-ui-bundle-v2"},
            {"sendgrid", "python-http-client", "periodiq"},
        ),
        ("worker", {"sendgrid", "periodiq", "peewee"}, {"falcon", "gunicorn", "spectree"}),
    ],
)
def test_each_image_s_requirements_come_from_the_lock_with_only_its_service(
    uv, tmp_path, service, wanted, unwanted
):
    # Given only the files the Dockerfile copies before it exports the requirements
    instructions = dockerfile(REPO / f"deploy/{service}.Dockerfile")
    for source in copy_sources(instructions):
        if source.endswith("pyproject.toml") or source == "uv.lock":
            (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / source, tmp_path / source)
    export = next(i.arguments for i in instructions if "uv export" in i.arguments)
    words = shlex.split(export.split("&&")[0])
    output = words.index("-o")
    del words[output : output + 2]

    # When uv exports them as the image build does
    result = run(uv, *words[1:], "--quiet", cwd=tmp_path)

    # Then they are the service's third-party requirements only, pinned
    assert result.returncode == 0, result.stderr
    names = set(re.findall(r"^([a-z0-9_.-]+)==", result.stdout, re.M))
    assert wanted <= names
    assert not unwanted & names
    assert not re.search(r"^(-e|\.|tribe)", result.stdout, re.M)
