"""What a platform needs beside the code: ``.python-version`` (buildpacks read it beside
``uv.lock``), ``.env.example`` naming every variable of the README's configuration table with a
comment each, and the mail sink docker-compose sends emails to, which speaks SendGrid's v3 API
and lists what it received on a page (checked in a real browser, Debian's chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path

import requests

from tests.conftest import skip_unless_ci
from tests.support.deploy_files import REPO, dockerfile
from tribe_worker.emails.providers import Addressee, RenderedEmail, Sender
from tribe_worker.emails.sendgrid import SendGridProvider

ENV_EXAMPLE = REPO / ".env.example"
SCREENSHOTS = REPO / "var" / "test-output" / "screenshots"


def readme_table_names() -> set[str]:
    """Every variable of the README's configuration table, lower-case ones included."""
    section = (REPO / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ")[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Za-z][A-Za-z0-9_]+)`", line.split("|")[1]))
    return names


def env_example() -> dict[str, str]:
    """``{variable: its comment}``: each assignment (``NAME=`` or ``# NAME=``) and the comment
    line just above it."""
    entries, comment = {}, ""
    for line in ENV_EXAMPLE.read_text().splitlines():
        assignment = re.fullmatch(r"#?\s*([A-Za-z][A-Za-z0-9_]*)=.*", line)
        if assignment:
            entries[assignment.group(1)] = comment
            comment = ""
        elif line.startswith("# ") and not line.startswith("# ---"):
            comment = line[2:].strip()
        else:
            comment = ""
    return entries


def test_env_example_names_exactly_the_variables_of_the_readme_table():
    assert set(env_example()) == readme_table_names()


def test_every_variable_of_env_example_has_a_comment_of_its_own():
    uncommented = [name for name, comment in env_example().items() if not comment]

    assert uncommented == []


def test_the_python_version_file_agrees_with_the_images_and_the_packages():
    version = (REPO / ".python-version").read_text().strip()
    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]

    assert re.fullmatch(r"3\.\d+", version)
    assert required == ">=3.11" and tuple(map(int, version.split("."))) >= (3, 11)
    for image in ("api", "worker"):
        (base,) = [
            i for i in dockerfile(REPO / f"deploy/{image}.Dockerfile") if i.keyword == "FROM"
        ]
        assert base.arguments.startswith(f"python:{version}-"), image


# --- the mail sink ---------------------------------------------------------------------------


def test_the_worker_s_sendgrid_provider_sends_to_the_mail_sink_which_lists_it(mail_sink):
    # Given the worker's SendGrid provider pointed at the sink, as compose configures it
    provider = SendGridProvider("local-mail-sink", mail_sink, timeout=5)
    job_id = uuid.uuid4()
    email = RenderedEmail("Welcome to Tribe, Nana!", "<p>Hello Nana</p>", "Hello Nana")

    # When it sends
    message_id = provider.send(
        email, Sender("no-reply@tribe.local"), [Addressee("nana@example.com", job_id)]
    )

    # Then the sink answered as SendGrid does, and lists the email
    assert message_id
    (received,) = requests.get(f"{mail_sink}/messages.json", timeout=5).json()["emails"]
    assert received["to"] == ["nana@example.com"]
    assert received["subject"] == "Welcome to Tribe, Nana!"
    assert received["job_id"] == str(job_id)
    assert received["message_id"] == message_id


def test_the_mail_sink_refuses_a_request_sendgrid_would_refuse(mail_sink):
    unauthorized = requests.post(f"{mail_sink}/v3/mail/send", json={}, timeout=5)
    malformed = requests.post(
        f"{mail_sink}/v3/mail/send", json={"from": {}}, headers={"Authorization": "Bearer k"}
    )

    assert unauthorized.status_code == 401
    assert malformed.status_code == 400 and malformed.json()["errors"][0]["message"]


def test_the_mail_sink_s_page_shows_emails_and_alerts_in_a_browser(mail_sink):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        skip_unless_ci("chromium is not installed (Debian: apt-get install chromium)")
    # Given an email with markup in its subject, and an alert from Alertmanager's webhook
    provider = SendGridProvider("local-mail-sink", mail_sink, timeout=5)
    email = RenderedEmail("<b>Emma</b> walked!", "<p>x</p>", "First steps")
    provider.send(
        email, Sender("no-reply@tribe.local"), [Addressee("nana@example.com", uuid.uuid4())]
    )
    alert = {"labels": {"alertname": "TribeSchedulerTaskLate"}, "annotations": {"summary": "late"}}
    requests.post(f"{mail_sink}/alerts", json={"alerts": [{"status": "firing", **alert}]})

    # When a browser opens the page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / "mailsink.png"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ]  # fmt: skip
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", mail_sink], capture_output=True, text=True, timeout=60
    ).stdout
    subprocess.run(
        [chromium, *flags, f"--screenshot={screenshot}", "--window-size=1200,800", mail_sink],
        capture_output=True,
        timeout=60,
    )

    # Then it lists both, the subject as text (escaped, not markup)
    assert "nana@example.com" in dom
    assert "&lt;b&gt;Emma&lt;/b&gt; walked!" in dom
    assert "TribeSchedulerTaskLate" in dom and "firing" in dom
    assert Path(screenshot).stat().st_size > 0
