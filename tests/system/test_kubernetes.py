"""deploy/kubernetes/, validated offline: every object parses and passes its schema (Kubernetes'
from the kubernetes-validate package, KEDA's ScaledObject and TriggerAuthentication from
tests/support/schemas/), every reference resolves, and ports, probes, commands and queue names
are the code's."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.deploy_files import REPO, procfile, readme_variables
from tests.support.environments import PRODUCTION
from tribe_api.app import create_app
from tribe_shared.contract import Queue
from tribe_shared.settings import DEFAULT_PORT, Settings

KUBERNETES = REPO / "deploy" / "kubernetes"
SCHEMAS = Path(__file__).parents[1] / "support" / "schemas"
#: The Kubernetes release the manifests are checked against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.30.0"
KEDA_SCHEMAS = {
    "ScaledObject": SCHEMAS / "keda-scaledobject.json",
    "TriggerAuthentication": SCHEMAS / "keda-triggerauthentication.json",
}

KUSTOMIZATION = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
OBJECTS = [
    document
    for resource in KUSTOMIZATION["resources"]
    for document in yaml.safe_load_all((KUBERNETES / resource).read_text())
    if document
]
BY_KIND: dict[str, dict[str, dict]] = {}
for _object in OBJECTS:
    BY_KIND.setdefault(_object["kind"], {})[_object["metadata"]["name"]] = _object
DEPLOYMENTS = BY_KIND["Deployment"]
CONFIG = BY_KIND["ConfigMap"]["tribe-config"]["data"]
SECRET = BY_KIND["Secret"]["tribe-secrets"]["stringData"]


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


def pod_labels(obj: dict) -> dict:
    return obj["spec"]["template"]["metadata"]["labels"]


def test_the_kustomization_lists_every_manifest_of_the_folder():
    listed = set(KUSTOMIZATION["resources"])
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}

    assert listed == present


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_passes_its_schema(obj):
    if obj["kind"] in KEDA_SCHEMAS:
        schema = json.loads(KEDA_SCHEMAS[obj["kind"]].read_text())
        jsonschema.validate(obj, schema)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_issue_s_objects_are_all_there():
    assert set(DEPLOYMENTS) == {"tribe-api", "tribe-worker", "tribe-scheduler"}
    assert {"Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job"} <= set(BY_KIND)
    assert {"ScaledObject", "TriggerAuthentication", "ConfigMap", "Secret"} <= set(BY_KIND)


def test_each_process_runs_its_procfile_command():
    processes = procfile()
    commands = {
        "tribe-api": processes["web"][1],
        "tribe-worker": processes["worker"][1],
        "tribe-scheduler": processes["scheduler"][1],
    }
    (job,) = BY_KIND["Job"].values()

    for name, command in commands.items():
        (container,) = containers(DEPLOYMENTS[name])
        assert container["command"] == command, name
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        process = {"tribe-api": "web", "tribe-worker": "worker", "tribe-scheduler": "scheduler"}
        assert env == processes[process[name]][0], name
    assert containers(job)[0]["command"] == processes["release"][1]


def test_every_container_reads_the_config_and_secret_and_requests_resources():
    pods = [*DEPLOYMENTS.values(), *BY_KIND["Job"].values()]
    for pod in pods:
        for container in containers(pod):
            sources = container["envFrom"]
            assert {"configMapRef": {"name": "tribe-config"}} in sources
            assert {"secretRef": {"name": "tribe-secrets"}} in sources
            assert container["resources"]["requests"]["cpu"]
            assert container["resources"]["requests"]["memory"]


def test_the_configuration_is_the_readme_s_and_loads_as_production_settings():
    variables = set(CONFIG) | {k for k in SECRET if k.isupper()}

    assert variables <= readme_variables() | {"dramatiq_prom_port", "dramatiq_prom_db"}
    # With real secrets the settings load; with the shipped placeholders production refuses
    real = {
        **CONFIG,
        **SECRET,
        **{
            name: PRODUCTION[name] for name in ("SENDGRID_WEBHOOK_PUBLIC_KEY", "UNSUBSCRIBE_SECRET")
        },
        "JWT_SECRET": "s" * 48,
    }
    assert Settings.from_env(real).is_production
    with pytest.raises(Exception, match="JWT_SECRET is a placeholder"):
        Settings.from_env({**CONFIG, **SECRET})


def test_the_api_s_port_and_probes_are_the_code_s():
    api = DEPLOYMENTS["tribe-api"]
    (container,) = containers(api)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    app = create_app(Settings(app_env="test", database_url="sqlite:///:memory:"))

    assert ports["http"] == int(CONFIG["PORT"]) == DEFAULT_PORT
    assert container["livenessProbe"]["httpGet"] == {"path": "/api/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/api/health/ready", "port": "http"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert app._router.find(container[probe]["httpGet"]["path"]) is not None
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["http"])
    assert app._router.find(annotations["prometheus.io/path"]) is not None


def test_the_worker_s_metrics_port_is_where_dramatiq_serves_them():
    worker = DEPLOYMENTS["tribe-worker"]
    (container,) = containers(worker)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    annotations = worker["spec"]["template"]["metadata"]["annotations"]

    assert ports["metrics"] == int(CONFIG["dramatiq_prom_port"])
    assert annotations["prometheus.io/port"] == CONFIG["dramatiq_prom_port"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"


def test_the_service_autoscaler_and_budget_find_the_api_s_pods():
    api = DEPLOYMENTS["tribe-api"]
    (service,) = BY_KIND["Service"].values()
    (hpa,) = BY_KIND["HorizontalPodAutoscaler"].values()
    (pdb,) = BY_KIND["PodDisruptionBudget"].values()
    port_names = {p["name"] for p in containers(api)[0]["ports"]}

    assert service["spec"]["selector"].items() <= pod_labels(api).items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "tribe-api",
    }
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(api).items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    assert api["spec"]["selector"]["matchLabels"].items() <= pod_labels(api).items()


def test_keda_scales_the_workers_on_the_broker_s_waiting_lists():
    (scaled,) = BY_KIND["ScaledObject"].values()
    (auth,) = BY_KIND["TriggerAuthentication"].values()
    namespace = CONFIG["REDIS_NAMESPACE"]

    assert scaled["spec"]["scaleTargetRef"]["name"] in DEPLOYMENTS
    lists = {t["metadata"]["listName"] for t in scaled["spec"]["triggers"]}
    assert lists == {f"{namespace}:{Queue.EMAILS}", f"{namespace}:{Queue.URGENT}"}
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "redis"
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in BY_KIND["Secret"][ref["name"]]["stringData"]
    # the connection budget of kustomization.yaml: at most 4 worker pods of 16 connections
    assert scaled["spec"]["maxReplicaCount"] <= 4


def test_there_is_one_scheduler_and_it_runs_in_utc():
    scheduler = DEPLOYMENTS["tribe-scheduler"]

    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    env = {e["name"]: e["value"] for e in containers(scheduler)[0]["env"]}
    assert env["TZ"] == "UTC"
