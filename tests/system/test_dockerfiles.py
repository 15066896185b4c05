"""deploy/*.Dockerfile, read without Docker: each image takes only ``shared/`` and its own service
from the workspace, installs its own package from the lock and runs its Procfile process, and
compose builds every one of them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil

import pytest

from tests.conftest import skip_unless_ci
from tests.support.deploy_files import (
    REPO,
    compose_services,
    copy_sources,
    dockerfile,
    procfile,
    workspace_packages,
)
from tests.support.processes import run

SERVICES = compose_services()
PACKAGES = workspace_packages()


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
