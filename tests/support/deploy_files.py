"""Readers of the deployment files, for the tests of deploy/ in tests/system/: docker-compose's
services, the alert rules, the agreed metric names, PromQL's metric names, the Procfile,
Dockerfiles, the README's configuration table, the workspace's packages and Markdown anchors."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import skip_unless_ci
from tests.support.processes import REPO

DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "tribe-jobs.json"
RUNBOOK = DEPLOY / "RUNBOOK.md"
#: The API's public edge (nginx), mounted by docker-compose's `proxy`.
EDGE_CONFIG = DEPLOY / "nginx" / "tribe-api.conf"
GUNICORN_CONFIG = REPO / "services" / "api" / "gunicorn.conf.py"
COMPOSE_FILE = REPO / "docker-compose.yml"
#: The metric names the API and worker agreed to export (a copy of the agreement of issue #6).
METRICS_DOC = DEPLOY / "METRICS.md"

#: Dramatiq's Prometheus middleware's histogram (its other metrics are counters and gauges).
DRAMATIQ_HISTOGRAMS = {"dramatiq_message_duration_milliseconds"}
#: Series Prometheus itself writes for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

#: PromQL's aggregations, their modifiers, keywords and functions: never metric names.
_PROMQL_WORDS = """
    sum min max avg count stddev stdvar topk bottomk quantile count_values group
    by without on ignoring group_left group_right bool offset and or unless inf nan
    rate irate increase delta idelta deriv predict_linear changes resets
    histogram_quantile histogram_count histogram_sum histogram_fraction
    absent absent_over_time present_over_time abs ceil floor round sqrt exp ln log2 log10
    clamp clamp_min clamp_max label_replace label_join vector scalar time timestamp sort
    sort_desc sgn avg_over_time min_over_time max_over_time sum_over_time count_over_time
    last_over_time quantile_over_time stddev_over_time stdvar_over_time
"""
PROMQL_WORDS = frozenset(_PROMQL_WORDS.split())


def missing_tool(what: str) -> None:
    """Skip a test that needs a Prometheus tool, or fail it under CI=true."""
    skip_unless_ci(f"{what} is not installed (Debian: apt-get install prometheus; .ci/run does it)")


def compose_services(path: Path = COMPOSE_FILE) -> dict[str, dict]:
    """docker-compose's services by name."""
    return yaml.safe_load(path.read_text())["services"]


def alert_rules(path: Path = PROMETHEUS_DIR / "alerts.yml") -> list[dict]:
    """The alerting rules of every group (recording rules left out)."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@dataclass(frozen=True)
class AgreedMetrics:
    names: frozenset[str]
    histograms: frozenset[str]

    def series_names(self) -> frozenset[str]:
        """Every name a query may use: the metrics, their histogram series and Prometheus's own."""
        suffixed = {f"{h}_{s}" for h in self.histograms for s in ("bucket", "sum", "count")}
        return frozenset(self.names | suffixed | PROMETHEUS_OWN)


def agreed_metrics(path: Path = METRICS_DOC) -> AgreedMetrics:
    """The ``tribe_*`` table rows and the named ``dramatiq_*`` metrics of METRICS.md."""
    text = path.read_text()
    names = set(re.findall(r"`(dramatiq_[a-z_]+)`", text))
    histograms = set(DRAMATIQ_HISTOGRAMS & names)
    for name, kind in re.findall(r"^\| (tribe_[a-z_]+) \| ([^|]+)\|", text, re.MULTILINE):
        names.add(name)
        if kind.strip().startswith("histogram"):
            histograms.add(name)
    return AgreedMetrics(frozenset(names), frozenset(histograms))


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label names, functions, keywords, numbers,
    durations, strings and Grafana variables left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    found = re.findall(r"(?<![\w.])[a-zA-Z_:][\w:]*", expr)
    return {name for name in found if name.lower() not in PROMQL_WORDS}


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every target of every panel, rows' nested panels included."""
    queries = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                queries.append((inner["title"], target["expr"]))
    return queries


def procfile(path: Path = REPO / "Procfile") -> dict[str, tuple[dict[str, str], list[str]]]:
    """``{process: (environment set by a leading env, command)}``."""
    processes = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = line.split(":", 1)
        words = shlex.split(command)
        env = {}
        if words[0] == "env":
            words.pop(0)
            while "=" in words[0]:
                key, value = words.pop(0).split("=", 1)
                env[key] = value
        processes[name.strip()] = (env, words)
    return processes


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def copy_sources(instructions: list[Instruction]) -> list[str]:
    """What the COPY/ADD instructions take from the build context (not from other stages)."""
    sources = []
    for instruction in instructions:
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(instruction.arguments)
        if any(word.startswith("--from") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")]
        sources.extend(path.rstrip("/") for path in paths[:-1])
    return sources


def readme_variables(path: Path = REPO / "README.md") -> set[str]:
    """The variables of the README's Configuration table."""
    text = path.read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


@dataclass(frozen=True)
class Package:
    name: str
    folder: Path
    scripts: frozenset[str]
    dependencies: frozenset[str]


def workspace_packages() -> dict[str, Package]:
    """The uv workspace's member packages by name."""
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {}
    for member in root["tool"]["uv"]["workspace"]["members"]:
        project = tomllib.loads((REPO / member / "pyproject.toml").read_text())["project"]
        dependencies = {
            re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower() for d in project["dependencies"]
        }
        packages[project["name"]] = Package(
            project["name"],
            REPO / member,
            frozenset(project.get("scripts", {})),
            frozenset(dependencies),
        )
    return packages


def with_dependencies(names: set[str], packages: dict[str, Package]) -> set[str]:
    """``names`` and the workspace packages they depend on, transitively."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        todo.extend(d for d in packages[name].dependencies if d in packages)
    return found


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown document."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def resolve(value: str, environ: dict[str, str] | None = None) -> str:
    """A compose value as compose interpolates it: ``${NAME:-default}`` is ``environ[NAME]``
    when set and not empty, else the default."""

    def one(match: re.Match) -> str:
        return (environ or {}).get(match.group(1)) or match.group(2)

    return re.sub(r"\$\{(\w+):-([^}]*)\}", one, value)


def compose_environment(service: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment compose gives ``service``, with ``environ`` set in the shell."""
    return {
        k: resolve(str(v), environ) for k, v in compose_services()[service]["environment"].items()
    }
