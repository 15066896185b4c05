"""A real nginx (Debian's ``nginx`` package) running deploy/nginx/tribe-api.conf, in tests.

The deployed file holds the contents of an ``http`` block (compose mounts it into the official
image's ``conf.d/``). Here it runs with only its ``listen`` port and its upstream ``server``
changed, inside a small main configuration of the test's own: process-level settings (pid file,
logs, temporary directories) in the test's directory.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
from pathlib import Path

from tests.conftest import skip_unless_ci
from tests.support.deploy_files import EDGE_CONFIG
from tests.support.processes import Processes
from tests.support.waiting import wait_until

#: What the deployed file says, and what a test changes it to.
DEPLOYED_LISTEN = "listen 8000;"
DEPLOYED_UPSTREAM = "server api:8000;"


def nginx_executable() -> str:
    """The nginx binary, or skip (fail under CI=true) when it is not installed."""
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        skip_unless_ci("nginx is not installed (Debian: apt-get install nginx; .ci/run does it)")
    return path


def edge_config(*, port: int, upstream: str) -> str:
    """deploy/nginx/tribe-api.conf listening on loopback ``port``, proxying to ``upstream``."""
    text = EDGE_CONFIG.read_text()
    for deployed, local in (
        (DEPLOYED_LISTEN, f"listen 127.0.0.1:{port};"),
        (DEPLOYED_UPSTREAM, f"server {upstream};"),
    ):
        assert text.count(deployed) == 1, f"{EDGE_CONFIG} should say {deployed!r} once"
        text = text.replace(deployed, local)
    return text


def configured_seconds(directive: str) -> float:
    """A duration the deployed file sets at server level (``client_header_timeout 10s;``)."""
    match = re.search(rf"^\s*{directive}\s+(\d+)s;", EDGE_CONFIG.read_text(), re.MULTILINE)
    assert match, f"{directive} is not set in {EDGE_CONFIG}"
    return float(match.group(1))


def main_config(directory: Path, site: Path) -> str:
    """An nginx.conf around ``site`` whose files all live in ``directory``."""
    # Run as root, nginx drops its workers to `nobody`, which cannot reach a private test folder.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    temporary = "\n".join(
        f"    {kind}_temp_path {directory}/temp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
{user}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {directory}/access.log;
{temporary}
    include {site};
}}
"""


def start_nginx(processes: Processes, directory: Path, name: str, *, port: int, upstream: str):
    """Start nginx with the deployed edge configuration; return once it accepts on ``port``."""
    executable = nginx_executable()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "temp").mkdir(exist_ok=True)
    site = directory / "tribe-api.conf"
    site.write_text(edge_config(port=port, upstream=upstream))
    conf = directory / "nginx.conf"
    conf.write_text(main_config(directory, site))
    process = processes.start(
        name, executable, "-e", str(directory / "error.log"), "-p", str(directory), "-c", str(conf)
    )

    def accepting() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited {process.returncode}:\n{processes.log(name)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_until(accepting, timeout=10, what=f"nginx on port {port}")
