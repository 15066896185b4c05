"""docker-compose.yml, checked without Docker (this machine has no engine): it runs exactly the
Procfile's processes from the images that hold them, with the README's variables, healthchecks
and start order, and only the nginx proxy (deploy/nginx/, run for real by test_edge.py) publishes
the API."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from graphlib import TopologicalSorter
from pathlib import Path

import pytest

from tests.support.deploy_files import (
    EDGE_CONFIG,
    REPO,
    compose_environment,
    compose_services,
    procfile,
    readme_variables,
    with_dependencies,
    workspace_packages,
)
from tests.support.environments import PRODUCTION
from tribe_shared.settings import DEV_JWT_SECRET, ConfigError, Settings

SERVICES = compose_services()
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
    production = {**PRODUCTION, "JWT_SECRET": ""}
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
    assert needs["proxy"] == {"api": {"condition": "service_healthy", "restart": True}}
    assert needs["worker"]["mailsink"] == healthy
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


def test_compose_mounts_only_files_that_exist():
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), source
